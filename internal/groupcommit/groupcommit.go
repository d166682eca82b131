// Package groupcommit turns concurrent calls into batches, so that a store
// commits many writes with one transaction (one fsync) instead of one each.
//
// There is no timer. A call queues its job and, if no batch is being
// committed, starts a committer; while a batch commits, new jobs queue, and
// when it is done the queue (up to a size) is the next batch. An idle queue
// adds no latency; a busy one makes batches as large as the commit is slow.
//
// Every caller gets its own result, and only after the commit of the batch
// that holds its job: Do waits for it, Go has it passed to a function. The
// commit function decides what one job's failure means for the others.
package groupcommit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Do, and passed by Go, after Close.
var ErrClosed = errors.New("groupcommit: closed")

// Job is one call's input and, once its batch is committed, its result.
// The commit function reads In and sets Out and Err; nothing else may
// touch a job while it is in a batch.
type Job[In, Out any] struct {
	In  In
	Out Out
	Err error

	done  chan struct{}    // closed after the commit, for Do
	then  func(Out, error) // called after the commit, for Go
	taken bool             // in a batch: too late to withdraw; guarded by Queue.mu
}

// Config sizes the batches. Zero values get the defaults in brackets.
type Config[In any] struct {
	MaxBatch int // jobs per batch [256]
	// MaxWeight caps the sum of Weight over a batch, which always takes
	// at least one job however heavy [no cap].
	MaxWeight int
	Weight    func(In) int
}

// Queue collects jobs into batches for one committer at a time. It is safe
// for concurrent use.
type Queue[In, Out any] struct {
	commit func(batch []*Job[In, Out])
	cfg    Config[In]

	mu      sync.Mutex
	queue   []*Job[In, Out]
	running bool // the committer goroutine exists
	closed  bool
	idle    sync.WaitGroup // the committer, while it runs

	batches, jobs atomic.Uint64
	observe       atomic.Pointer[func(jobs int, took time.Duration)]
}

// New returns a queue whose batches commit calls, from one goroutine at a
// time. commit must set each job's Out or Err.
func New[In, Out any](cfg Config[In], commit func(batch []*Job[In, Out])) *Queue[In, Out] {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	return &Queue[In, Out]{commit: commit, cfg: cfg}
}

// Do queues in and waits for the result of the batch that commits it.
//
// When ctx ends while the job is still queued, Do withdraws it and returns
// ctx.Err(): nothing of it was written. Once the job is in a batch, Do waits
// for that batch, so that its result is never in doubt to the caller
// (the batch does not depend on any caller's context).
func (q *Queue[In, Out]) Do(ctx context.Context, in In) (Out, error) {
	j := &Job[In, Out]{In: in, done: make(chan struct{})}
	if !q.enqueue(j) {
		var zero Out
		return zero, ErrClosed
	}

	select {
	case <-j.done:
		return j.Out, j.Err
	case <-ctx.Done():
	}
	q.mu.Lock()
	if !j.taken {
		q.queue = slices.DeleteFunc(q.queue, func(x *Job[In, Out]) bool { return x == j })
		q.mu.Unlock()
		var zero Out
		return zero, ctx.Err()
	}
	q.mu.Unlock()
	<-j.done
	return j.Out, j.Err
}

// Go queues in and returns at once; then is called with its result once the
// batch that holds it is committed, from the committer's goroutine (so it
// must not block), or at once with ErrClosed after Close. Jobs queued one
// after the other are committed in that order, in one batch or in
// consecutive ones. A job queued by Go cannot be withdrawn.
func (q *Queue[In, Out]) Go(in In, then func(Out, error)) {
	if !q.enqueue(&Job[In, Out]{In: in, then: then}) {
		var zero Out
		then(zero, ErrClosed)
	}
}

// enqueue adds j to the queue and starts a committer if none runs. It
// reports false, queueing nothing, after Close.
func (q *Queue[In, Out]) enqueue(j *Job[In, Out]) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.queue = append(q.queue, j)
	if !q.running {
		q.running = true
		q.idle.Add(1)
		go q.run()
	}
	return true
}

// run commits batches until the queue is empty.
func (q *Queue[In, Out]) run() {
	defer q.idle.Done()
	for {
		q.mu.Lock()
		batch := q.next()
		if batch == nil {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()

		q.batches.Add(1)
		q.jobs.Add(uint64(len(batch)))
		observe := q.observe.Load()
		var start time.Time
		if observe != nil {
			start = time.Now()
		}
		q.commit(batch)
		if observe != nil {
			(*observe)(len(batch), time.Since(start))
		}
		for _, j := range batch {
			if j.then != nil {
				j.then(j.Out, j.Err)
			} else {
				close(j.done)
			}
		}
	}
}

// next takes the next batch off the queue, nil when it is empty. q.mu is held.
func (q *Queue[In, Out]) next() []*Job[In, Out] {
	n, weight := 0, 0
	for n < len(q.queue) && n < q.cfg.MaxBatch {
		if q.cfg.Weight != nil && q.cfg.MaxWeight > 0 {
			w := q.cfg.Weight(q.queue[n].In)
			if n > 0 && weight+w > q.cfg.MaxWeight {
				break
			}
			weight += w
		}
		q.queue[n].taken = true
		n++
	}
	if n == 0 {
		return nil
	}
	batch := slices.Clone(q.queue[:n])
	q.queue = slices.Delete(q.queue, 0, n)
	return batch
}

// Close refuses new jobs and waits until every queued one is committed.
func (q *Queue[In, Out]) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.idle.Wait()
}

// Observe has f called after each commit with the batch's size and how
// long its commit took (metrics: the store that owns the queue names them).
// It may be set at any time; f runs on the committer, so it must be quick.
func (q *Queue[In, Out]) Observe(f func(jobs int, took time.Duration)) {
	q.observe.Store(&f)
}

// Stats counts what a queue has committed.
type Stats struct {
	Batches uint64 // batches committed
	Jobs    uint64 // jobs in them
}

// Stats returns the queue's counts so far.
func (q *Queue[In, Out]) Stats() Stats {
	return Stats{Batches: q.batches.Load(), Jobs: q.jobs.Load()}
}

// Split commits batch with try and, when that fails, tries each job alone,
// so that only the jobs that fail by themselves get an error (theirs). try
// must write nothing when it fails.
func Split[In, Out any](batch []*Job[In, Out], try func(jobs []*Job[In, Out]) error) {
	err := try(batch)
	switch {
	case err == nil:
	case len(batch) == 1:
		batch[0].Err = err
	default:
		for i := range batch {
			if err := try(batch[i : i+1]); err != nil {
				batch[i].Err = err
			}
		}
	}
}
