package faults

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// Result is one scenario's row of docs/reliability.md, and what else the
// checker found.
type Result struct {
	Scenario     string
	Devices      int
	Acknowledged int           // sends answered with sent
	Expected     int           // (message, recipient device) pairs
	Delivered    int           // of those, delivered to the application
	Lost         int           // expected and not delivered
	Duplicated   int           // delivered to the application more than once
	OutOfOrder   int           // to the application or on the wire, not in seq order
	Holes        int           // on the wire: a seq the device should have skipped on a socket
	NotOnWire    int           // delivered to the application and not seen by the tap (a broken tap)
	Recover      time.Duration // fault over -> everything acknowledged before it delivered
	Recovered    bool          // within the scenario's bound
	StoreMissing int           // acknowledged and not in the store (or not as sent)
	Unacked      int           // sends never answered, even after a minute of retries
	Problems     []string
}

// Failed reports whether the row breaks the promise.
func (r Result) Failed() bool {
	return r.Lost+r.Duplicated+r.OutOfOrder+r.Holes+r.StoreMissing+r.Unacked+r.NotOnWire != 0 || !r.Recovered ||
		r.Acknowledged == 0 || r.Delivered != r.Expected
}

// expected returns, per device id, the sorted seqs per conversation that
// the device should get: every acknowledged message of its conversations
// that it did not send itself.
func (w *world) expected(upTo time.Time) map[*device]map[string][]int64 {
	w.mu.Lock()
	sent := append([]sentMsg(nil), w.sent...)
	w.mu.Unlock()
	out := map[*device]map[string][]int64{}
	for _, m := range sent {
		if !upTo.IsZero() && m.at.After(upTo) {
			continue
		}
		for _, u := range w.convs[m.conv] {
			for _, d := range u.devs {
				if d.sess.DeviceID == m.sender {
					continue
				}
				if out[d] == nil {
					out[d] = map[string][]int64{}
				}
				out[d][m.conv] = append(out[d][m.conv], m.seq)
			}
		}
	}
	for _, per := range out {
		for _, seqs := range per {
			sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		}
	}
	return out
}

// missing counts the expected deliveries of messages acknowledged up to
// upTo (zero: all) that the applications do not have. For those they have,
// it returns the longest wait after since, or after the message's
// acknowledgement if that came later: how long the fault still held
// anything up once it was over.
func (w *world) missing(upTo, since time.Time) (n int, wait time.Duration) {
	w.mu.Lock()
	sent := append([]sentMsg(nil), w.sent...)
	w.mu.Unlock()
	for _, m := range sent {
		if !upTo.IsZero() && m.at.After(upTo) {
			continue
		}
		from := since
		if m.at.After(from) {
			from = m.at
		}
		for _, u := range w.convs[m.conv] {
			for _, d := range u.devs {
				if d.sess.DeviceID == m.sender {
					continue
				}
				if at, ok := d.gotAt(m.conv, m.seq); !ok {
					n++
				} else {
					wait = max(wait, at.Sub(from))
				}
			}
		}
	}
	return n, wait
}

// waitDelivered polls, from upTo on, until nothing acknowledged up to upTo
// (zero: all) is missing, or bound passes after since. It returns the time
// to recover (see missing) and whether all made it in time.
func (w *world) waitDelivered(upTo, since time.Time, bound time.Duration) (time.Duration, bool) {
	deadline := since.Add(bound)
	time.Sleep(time.Until(upTo)) // what is acknowledged by upTo is not all in before it
	for {
		n, wait := w.missing(upTo, since)
		if n == 0 {
			return wait, true
		}
		if time.Now().After(deadline) {
			return time.Since(since), false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// check compares everything acknowledged with what every device's
// application and socket got, and with the store.
func (w *world) check(ctx context.Context, db string) Result {
	r := Result{Devices: len(w.devs)}
	w.mu.Lock()
	r.Acknowledged, r.Unacked = len(w.sent), w.unacked
	r.Problems = append(r.Problems, w.problems...)
	if w.internal > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("note: %d sends answered internal instead of unavailable (retried with their id)", w.internal))
	}
	sent := append([]sentMsg(nil), w.sent...)
	w.mu.Unlock()

	exp := w.expected(time.Time{})
	for _, d := range w.devs {
		d.mu.Lock()
		for conv, seqs := range exp[d] {
			for _, s := range seqs {
				r.Expected++
				if d.got[msgKey{conv, s}] > 0 {
					r.Delivered++
				} else {
					r.Lost++
					if r.Lost <= 10 {
						r.Problems = append(r.Problems, fmt.Sprintf("lost: device %s, conversation %s (%d members), seq %d; "+
							"the application's highest there %d, on the wire %s; online %v",
							d.sess.DeviceID, conv, len(w.convs[conv]), s, d.highest[conv], d.tap.lastSeen(conv), d.conn != nil))
					}
				}
			}
		}
		for _, n := range d.got {
			r.Duplicated += max(n-1, 0)
		}
		for _, l := range d.app {
			for i := 1; i < len(l); i++ {
				if l[i] <= l[i-1] {
					r.OutOfOrder++
				}
			}
		}
		d.mu.Unlock()

		// The wire: per socket and conversation, seqs rise, and no seq the
		// device should have lies between two that came one after the other.
		// And the tap saw every message the application got: a tap that
		// recorded nothing would find no hole.
		onWire := map[msgKey]bool{}
		streams := d.tap.snapshot()
		for _, s := range streams {
			for _, m := range s.msgs {
				onWire[msgKey(m)] = true
			}
		}
		d.mu.Lock()
		for k := range d.got {
			if !onWire[k] {
				r.NotOnWire++
			}
		}
		d.mu.Unlock()
		for _, s := range streams {
			if s.bad != "" {
				r.Problems = append(r.Problems, fmt.Sprintf("device %s: socket stream: %s", d.sess.DeviceID, s.bad))
			}
			last := map[string]int64{}
			for _, m := range s.msgs {
				prev, ok := last[m.conv]
				last[m.conv] = m.seq
				if !ok {
					continue
				}
				if m.seq <= prev {
					r.OutOfOrder++
					if len(r.Problems) < 60 {
						r.Problems = append(r.Problems, fmt.Sprintf("device %s: on the wire seq %d after %d in %s", d.sess.DeviceID, m.seq, prev, m.conv))
					}
					continue
				}
				seqs := exp[d][m.conv]
				lo := sort.Search(len(seqs), func(i int) bool { return seqs[i] > prev })
				hi := sort.Search(len(seqs), func(i int) bool { return seqs[i] >= m.seq })
				if hi > lo {
					r.Holes += hi - lo
					if len(r.Problems) < 60 {
						r.Problems = append(r.Problems, fmt.Sprintf("device %s: on the wire seq %d after %d in %s, skipping %d it should have", d.sess.DeviceID, m.seq, prev, m.conv, hi-lo))
					}
				}
			}
		}
	}

	// The store: every acknowledged message is there, as sent.
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		r.Problems = append(r.Problems, fmt.Sprintf("store check: %v", err))
		r.StoreMissing = len(sent)
		return r
	}
	defer conn.Close(ctx)
	type row struct{ sender, id string }
	stored := map[msgKey]row{}
	rows, err := conn.Query(ctx, `SELECT conversation_id, seq, sender_device_id, coalesce(client_id, '') FROM messages`)
	if err == nil {
		for rows.Next() {
			var k msgKey
			var v row
			if err = rows.Scan(&k.conv, &k.seq, &v.sender, &v.id); err != nil {
				break
			}
			stored[k] = v
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		r.Problems = append(r.Problems, fmt.Sprintf("store check: %v", err))
	}
	for _, m := range sent {
		if v, ok := stored[msgKey{m.conv, m.seq}]; !ok || v.sender != m.sender || v.id != m.id {
			r.StoreMissing++
		}
	}
	return r
}
