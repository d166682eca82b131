package gateway

import (
	"sync"
	"time"
)

// flusher coalesces writes: Conn.Write appends a frame to the socket's
// pending buffer and, if the buffer was empty, puts the socket on the
// flusher's list; one goroutine hands each listed socket's buffer to nbio in
// one write. While it is busy, more frames pile up behind it, so a socket
// that receives many frames gets them in few syscalls (the cost that bounds
// fan-out is one write per delivery), and an idle socket owns no buffer.
type flusher struct {
	delay time.Duration // extra wait before a round, to gather more frames

	mu      sync.Mutex
	pending []*Conn
	spare   []*Conn
	wake    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
}

func newFlusher(delay time.Duration) *flusher {
	f := &flusher{delay: delay, wake: make(chan struct{}, 1), done: make(chan struct{})}
	f.wg.Add(1)
	go f.run()
	return f
}

// schedule lists c for the next round.
func (f *flusher) schedule(c *Conn) {
	f.mu.Lock()
	f.pending = append(f.pending, c)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *flusher) run() {
	defer f.wg.Done()
	for {
		select {
		case <-f.wake:
		case <-f.done:
			f.round() // what was written before the stop still goes out
			return
		}
		if f.delay > 0 {
			time.Sleep(f.delay)
		}
		f.round()
	}
}

func (f *flusher) round() {
	f.mu.Lock()
	batch := f.pending
	f.pending, f.spare = f.spare[:0], nil
	f.mu.Unlock()
	for i, c := range batch {
		c.flush()
		batch[i] = nil
	}
	f.mu.Lock()
	if f.spare == nil {
		f.spare = batch[:0]
	}
	f.mu.Unlock()
}

func (f *flusher) stop() {
	close(f.done)
	f.wg.Wait()
}
