package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// gate is a commit function that records its batches and holds the first
// one until released, so that a test can queue jobs behind it.
type gate struct {
	started chan struct{} // closed when the first batch is in commit
	release chan struct{} // close to let the first batch finish
	once    sync.Once

	mu      sync.Mutex
	batches [][]int
}

func newGate() *gate {
	return &gate{started: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) commit(batch []*Job[int, string]) {
	g.once.Do(func() {
		close(g.started)
		<-g.release
	})
	ins := make([]int, len(batch))
	for i, j := range batch {
		ins[i] = j.In
		if j.In < 0 {
			j.Err = fmt.Errorf("job %d refused", j.In)
			continue
		}
		j.Out = fmt.Sprint("out ", j.In)
	}
	g.mu.Lock()
	g.batches = append(g.batches, ins)
	g.mu.Unlock()
}

func (g *gate) sizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n []int
	for _, b := range g.batches {
		n = append(n, len(b))
	}
	return n
}

// queued waits until q holds n jobs that no batch has taken.
func queued[In, Out any](t *testing.T, q *Queue[In, Out], n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		q.mu.Lock()
		got := len(q.queue)
		q.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// result is what one Do returned.
type result struct {
	out string
	err error
}

// do runs q.Do(ctx, in) on a goroutine; its result arrives on the channel.
func do(q *Queue[int, string], ctx context.Context, in int) <-chan result {
	c := make(chan result, 1)
	go func() {
		out, err := q.Do(ctx, in)
		c <- result{out, err}
	}()
	return c
}

func TestQueue(t *testing.T) {
	ctx := context.Background()

	t.Run("calls that arrive while a batch commits form the next batch, each answered with its own result", func(t *testing.T) {
		g := newGate()
		q := New(Config[int]{}, g.commit)
		defer q.Close()
		first := do(q, ctx, 0)
		<-g.started
		var rest []<-chan result
		for i := 1; i <= 10; i++ {
			rest = append(rest, do(q, ctx, i))
		}
		queued(t, q, 10)
		close(g.release)
		if r := <-first; r.out != "out 0" || r.err != nil {
			t.Errorf("first call = %+v", r)
		}
		for i, c := range rest {
			if r := <-c; r.out != fmt.Sprint("out ", i+1) || r.err != nil {
				t.Errorf("call %d = %+v", i+1, r)
			}
		}
		if got := g.sizes(); !slices.Equal(got, []int{1, 10}) {
			t.Errorf("batch sizes = %v, want [1 10]", got)
		}
		if st := q.Stats(); st != (Stats{Batches: 2, Jobs: 11}) {
			t.Errorf("Stats = %+v, want 2 batches of 11 jobs", st)
		}
	})

	t.Run("a batch takes at most MaxBatch jobs, in arrival order", func(t *testing.T) {
		g := newGate()
		q := New(Config[int]{MaxBatch: 4}, g.commit)
		defer q.Close()
		first := do(q, ctx, 0)
		<-g.started
		var rest []<-chan result
		for i := 1; i <= 10; i++ {
			rest = append(rest, do(q, ctx, i))
			queued(t, q, i) // one at a time, so the order is known
		}
		close(g.release)
		<-first
		for _, c := range rest {
			<-c
		}
		if got := g.sizes(); !slices.Equal(got, []int{1, 4, 4, 2}) {
			t.Errorf("batch sizes = %v, want [1 4 4 2]", got)
		}
		if got := g.batches[1]; !slices.Equal(got, []int{1, 2, 3, 4}) {
			t.Errorf("second batch = %v, want [1 2 3 4]", got)
		}
	})

	t.Run("a batch stops before MaxWeight but always takes one job", func(t *testing.T) {
		g := newGate()
		q := New(Config[int]{MaxWeight: 10, Weight: func(in int) int { return in }}, g.commit)
		defer q.Close()
		first := do(q, ctx, 0)
		<-g.started
		var rest []<-chan result
		for i, in := range []int{4, 5, 2, 20, 3} {
			rest = append(rest, do(q, ctx, in))
			queued(t, q, i+1)
		}
		close(g.release)
		<-first
		for _, c := range rest {
			<-c
		}
		want := [][]int{{0}, {4, 5}, {2}, {20}, {3}}
		if fmt.Sprint(g.batches) != fmt.Sprint(want) {
			t.Errorf("batches = %v, want %v", g.batches, want)
		}
	})

	t.Run("a job's error is its caller's alone", func(t *testing.T) {
		g := newGate()
		q := New(Config[int]{}, g.commit)
		defer q.Close()
		first := do(q, ctx, 0)
		<-g.started
		bad, good := do(q, ctx, -1), do(q, ctx, 1)
		queued(t, q, 2)
		close(g.release)
		<-first
		if r := <-bad; r.err == nil {
			t.Errorf("refused job = %+v, want an error", r)
		}
		if r := <-good; r.err != nil || r.out != "out 1" {
			t.Errorf("job in the same batch = %+v", r)
		}
	})

	t.Run("a call whose context ends while it is queued is withdrawn", func(t *testing.T) {
		g := newGate()
		q := New(Config[int]{}, g.commit)
		defer q.Close()
		first := do(q, ctx, 0)
		<-g.started
		cctx, cancel := context.WithCancel(ctx)
		withdrawn := do(q, cctx, 1)
		kept := do(q, ctx, 2)
		queued(t, q, 2)
		cancel()
		if r := <-withdrawn; !errors.Is(r.err, context.Canceled) {
			t.Errorf("withdrawn call = %+v, want context.Canceled", r)
		}
		close(g.release)
		<-first
		<-kept
		if fmt.Sprint(g.batches) != "[[0] [2]]" {
			t.Errorf("batches = %v, want the withdrawn job in none", g.batches)
		}
	})

	t.Run("a call whose context ends once its batch commits still gets the batch's result", func(t *testing.T) {
		g := newGate()
		q := New(Config[int]{}, g.commit)
		defer q.Close()
		cctx, cancel := context.WithCancel(ctx)
		c := do(q, cctx, 7)
		<-g.started
		cancel()
		select {
		case r := <-c:
			t.Fatalf("call returned %+v before its batch committed", r)
		case <-time.After(20 * time.Millisecond):
		}
		close(g.release)
		if r := <-c; r.out != "out 7" || r.err != nil {
			t.Errorf("call = %+v, want the committed result", r)
		}
	})

	t.Run("Close waits for the queued jobs, then refuses new ones", func(t *testing.T) {
		g := newGate()
		q := New(Config[int]{}, g.commit)
		first := do(q, ctx, 0)
		<-g.started
		second := do(q, ctx, 1)
		queued(t, q, 1)
		closed := make(chan struct{})
		go func() {
			q.Close()
			close(closed)
		}()
		select {
		case <-closed:
			t.Fatal("Close returned while a batch was committing")
		case <-time.After(20 * time.Millisecond):
		}
		close(g.release)
		<-closed
		for _, c := range []<-chan result{first, second} {
			if r := <-c; r.err != nil {
				t.Errorf("queued job = %+v after Close", r)
			}
		}
		if _, err := q.Do(ctx, 2); !errors.Is(err, ErrClosed) {
			t.Errorf("Do after Close: err = %v, want ErrClosed", err)
		}
	})

	t.Run("Go returns at once and hands each job its result after its commit, in queue order", func(t *testing.T) {
		g := newGate()
		q := New(Config[int]{MaxBatch: 4}, g.commit)
		defer q.Close()
		var mu sync.Mutex
		var got []string
		all := make(chan struct{})
		const n = 10
		for i := range n {
			in := i
			if i == 3 {
				in = -3 // refused: its error is its own
			}
			q.Go(in, func(out string, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					out = err.Error()
				}
				got = append(got, out)
				if len(got) == n {
					close(all)
				}
			})
		}
		<-g.started
		mu.Lock()
		early := len(got)
		mu.Unlock()
		if early != 0 {
			t.Fatalf("%d results before the first batch committed", early)
		}
		close(g.release)
		<-all
		want := []string{"out 0", "out 1", "out 2", "job -3 refused", "out 4", "out 5", "out 6", "out 7", "out 8", "out 9"}
		if !slices.Equal(got, want) {
			t.Errorf("results %q, want %q", got, want)
		}
		total := 0
		for _, size := range g.sizes() {
			if size > 4 {
				t.Errorf("a batch of %d, MaxBatch is 4", size)
			}
			total += size
		}
		if total != n {
			t.Errorf("%d jobs committed, want %d", total, n)
		}
	})

	t.Run("Go after Close passes ErrClosed at once", func(t *testing.T) {
		q := New(Config[int]{}, newGate().commit)
		q.Close()
		var got error
		q.Go(1, func(_ string, err error) { got = err })
		if !errors.Is(got, ErrClosed) {
			t.Errorf("err = %v, want ErrClosed before Go returns", got)
		}
	})

	t.Run("many concurrent callers each get their own result", func(t *testing.T) {
		q := New(Config[int]{MaxBatch: 16}, func(batch []*Job[int, string]) {
			for _, j := range batch {
				j.Out = fmt.Sprint("out ", j.In)
			}
		})
		defer q.Close()
		var wg sync.WaitGroup
		for i := range 1000 {
			wg.Go(func() {
				if out, err := q.Do(ctx, i); out != fmt.Sprint("out ", i) || err != nil {
					t.Errorf("Do(%d) = %q, %v", i, out, err)
				}
			})
		}
		wg.Wait()
		if st := q.Stats(); st.Jobs != 1000 {
			t.Errorf("Stats = %+v, want 1000 jobs", st)
		}
	})
}

func TestSplitFailsOnlyTheCulprits(t *testing.T) {
	bad := errors.New("bad job")
	var jobs []*Job[int, int]
	for i := range 5 {
		jobs = append(jobs, &Job[int, int]{In: i})
	}
	var tries [][]int
	Split(jobs, func(b []*Job[int, int]) error {
		var ins []int
		for _, j := range b {
			ins = append(ins, j.In)
		}
		tries = append(tries, ins)
		for _, j := range b {
			if j.In%2 == 1 {
				return bad
			}
		}
		for _, j := range b {
			j.Out = j.In * 10
		}
		return nil
	})
	if len(tries) != 6 || len(tries[0]) != 5 {
		t.Fatalf("tries %v, want the batch once, then each job alone", tries)
	}
	for _, j := range jobs {
		if wantBad := j.In%2 == 1; (j.Err != nil) != wantBad || (!wantBad && j.Out != j.In*10) {
			t.Errorf("job %d: out %d, err %v", j.In, j.Out, j.Err)
		}
	}
	one := []*Job[int, int]{{In: 1}}
	n := 0
	Split(one, func([]*Job[int, int]) error { n++; return bad })
	if n != 1 || !errors.Is(one[0].Err, bad) {
		t.Fatalf("a lone job was tried %d times, err %v; want once, bad", n, one[0].Err)
	}
}
