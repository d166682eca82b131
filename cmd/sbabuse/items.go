package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-chat/switchboard/wire"
)

// Users past the shared pool (index base+k), each for one replay, so that
// one replay's logins and limits do not spend another's.
const (
	extraReal    = iota // item 2: the real user of the wrong-password logins
	extraPing           // item 3: the pinging devices
	extraWriter         // item 6: the writer of the history
	extraReader1        // item 6: readers (a user has at most 20 devices)
	extraReader2
	extras
)

// run runs the selected replays in order, each after a setup phase of its
// own (logins, groups), so that the table separates what the replay cost
// from what preparing it did.
func (b *bench) run(ctx context.Context) error {
	z := b.cfg.Sizes
	b.state = state{devices: map[int][]*device{}, run: randomHex(3)}
	if err := wait(ctx, time.Second); err != nil { // a second of the idle node, for the first row
		return err
	}
	pool := max(z.GroupUsers, 3)
	if b.cfg.Items[5] {
		pool = max(pool, z.BigGroupMembers, 3+z.BigGroups/100+1)
	}
	p := b.begin("setup", fmt.Sprintf("%d accounts (default argon2, 4 at a time)", pool+extras))
	us, err := b.signup(ctx, p, pool+extras)
	if err != nil {
		return err
	}
	b.state.users = us
	for _, it := range []struct {
		n int
		f func(context.Context, int) error
	}{{1, b.item1}, {2, b.item2}, {3, b.item3}, {5, b.item5}, {6, b.item6}} {
		if !b.cfg.Items[it.n] {
			continue
		}
		if err := it.f(ctx, pool); err != nil {
			return fmt.Errorf("item %d: %w", it.n, err)
		}
	}
	b.begin("after", "the node after the replays, idle")
	return wait(ctx, 2*time.Second)
}

// item1 replays server-assisted sends into big groups: first the issue's
// (85 KiB into ~1,000 devices, refused by the caps), then the most the caps
// allow (--max-assisted-bytes into --max-assisted-recipients devices).
func (b *bench) item1(ctx context.Context, _ int) error {
	z := b.cfg.Sizes
	p := b.begin("1 setup", fmt.Sprintf("%d users × %d devices logged in, two groups", z.GroupUsers, z.DevicesPerUser))
	err := parallel(ctx, 4, z.GroupUsers, func(ctx context.Context, i int) error {
		_, err := b.devicesOf(ctx, p, i, z.DevicesPerUser)
		return err
	})
	if err != nil {
		return err
	}
	owner := b.state.devices[0][0]
	big, a := b.createGroup(ctx, owner, b.state.users[:z.GroupUsers])
	b.answer(p, a.key())
	if big == "" {
		return fmt.Errorf("creating the big group: %s %s", a.key(), a.body)
	}
	capUsers := min(z.GroupUsers, (z.CapRecipients+1)/z.DevicesPerUser)
	capped, a := b.createGroup(ctx, owner, b.state.users[:capUsers])
	b.answer(p, a.key())
	if capped == "" {
		return fmt.Errorf("creating the capped group: %s %s", a.key(), a.body)
	}
	senders := min(z.Senders, z.GroupUsers)
	send := func(p *phase, conv string, size int) {
		plain := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'x'}, size))
		parallel(ctx, senders, senders, func(ctx context.Context, s int) error {
			d := b.state.devices[s][0]
			for k := range z.SendsPerSender {
				body := fmt.Sprintf(`{"id":"ab-%s-%d","plaintext":"%s"}`, randomHex(4), k, plain)
				a := b.call(ctx, "POST", "/v1/conversations/"+conv+"/messages", d.token, []byte(body), nil)
				b.answer(p, a.key())
			}
			return nil
		})
	}
	recipients := z.GroupUsers*z.DevicesPerUser - 1
	p = b.begin("1a", fmt.Sprintf("%d parallel senders × %d server-assisted sends of %d KiB into a group of %d devices",
		senders, z.SendsPerSender, z.AssistedBytes>>10, recipients+1))
	send(p, big, z.AssistedBytes)
	capRecipients := capUsers*z.DevicesPerUser - 1
	p = b.begin("1b", fmt.Sprintf("the same at the caps: %d KiB into a group of %d devices (%d recipients)",
		z.CapBytes>>10, capRecipients+1, capRecipients))
	send(p, capped, z.CapBytes)
	b.note(p, "stored by the sends answered 201: about %d MiB (recipients × plaintext)",
		int64(p.Answers["201"])*int64(capRecipients)*int64(z.CapBytes)>>20)
	return nil
}

// item2 replays concurrent logins: for unknown users, then for one real
// user with wrong passwords, all at once, at the default argon2 cost.
func (b *bench) item2(ctx context.Context, base int) error {
	z := b.cfg.Sizes
	real := b.state.users[base+extraReal]
	for _, c := range []struct{ name, what string }{
		{"2a", fmt.Sprintf("%d concurrent logins for unknown users", z.Logins)},
		{"2b", fmt.Sprintf("%d concurrent logins for one real user, wrong password", z.Logins)},
	} {
		p := b.begin(c.name, c.what)
		keys, err := deviceKeys()
		if err != nil {
			return err
		}
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range z.Logins {
			name := fmt.Sprintf("nobody-%s-%d", b.state.run, i)
			if c.name == "2b" {
				name = real.name
			}
			body := map[string]any{"username": name, "password": "wrong-" + randomHex(6), "device": keys}
			wg.Go(func() {
				<-start
				t := time.Now()
				a := b.call(ctx, "POST", "/v1/sessions", "", body, nil)
				d := time.Since(t)
				b.answer(p, a.key())
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		slices.Sort(lat)
		if len(lat) > 0 {
			b.note(p, "answer latency p50 %v, max %v", lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
		}
	}
	return nil
}

// item3 replays ping floods: sockets that send WebSocket pings (then JSON
// pings) as fast as they can and never read, for PingFor.
func (b *bench) item3(ctx context.Context, base int) error {
	z := b.cfg.Sizes
	p := b.begin("3 setup", fmt.Sprintf("%d devices logged in", 2*z.PingSockets))
	devs, err := b.devicesOf(ctx, p, base+extraPing, 2*z.PingSockets)
	if err != nil {
		return err
	}
	for k, c := range []struct {
		name, what string
		frame      []byte
	}{
		{"3a", "WebSocket pings", frame(opPing, []byte("abusebnc"))},
		{"3b", "JSON pings", frame(opText, []byte(`{"type":"`+wire.TypePing+`"}`))},
	} {
		p := b.begin(c.name, fmt.Sprintf("%d sockets sending %s as fast as they can for %v, never reading", z.PingSockets, c.what, z.PingFor))
		batch := bytes.Repeat(c.frame, 4096/len(c.frame))
		perBatch := 4096 / len(c.frame)
		var wg sync.WaitGroup
		end := time.Now().Add(z.PingFor)
		for s := range z.PingSockets {
			wg.Go(func() {
				// When the node closes the socket, the attacker connects
				// again and goes on until the end of the window.
				sockets, frames, back := 0, 0, map[string]int{}
				for time.Now().Before(end) && ctx.Err() == nil {
					n, outcome, counts := b.flood(devs[k*z.PingSockets+s], batch, perBatch, end)
					sockets, frames = sockets+1, frames+n
					for k, v := range counts {
						back[k] += v
					}
					b.mu.Lock()
					p.Requests += n
					b.mu.Unlock()
					b.count(p, outcome) // one per socket; the frames were counted above
					if outcome == "upgrade failed" {
						wait(ctx, 100*time.Millisecond)
					}
				}
				b.note(p, "device %d: %d sockets, %d frames written; read back %v", s, sockets, frames, back)
			})
		}
		wg.Wait()
	}
	return nil
}

// flood opens a socket for d and writes batch to it until end or until the
// node cuts it, never reading; then it reads what the node sent. It returns
// the frames written, how the socket ended and the frames read back.
func (b *bench) flood(d *device, batch []byte, perBatch int, end time.Time) (int, string, map[string]int) {
	conn, err := upgrade(b.cfg.Target, d)
	if err != nil {
		fmt.Fprintf(b.log, "sbabuse:   upgrade: %v\n", err)
		return 0, "upgrade failed", nil
	}
	defer conn.Close()
	conn.SetWriteDeadline(end)
	frames := 0
	var werr error
	for time.Now().Before(end) {
		if _, werr = conn.Write(batch); werr != nil {
			break
		}
		frames += perBatch
	}
	counts, code, _ := readFrames(conn, time.Now().Add(2*time.Second))
	switch {
	case code != 0:
		return frames, fmt.Sprintf("socket closed %d", code), counts
	case werr != nil && !strings.Contains(werr.Error(), "timeout"):
		return frames, "socket cut: " + answer{err: werr}.key(), counts
	case werr != nil:
		return frames, "writes blocked until the end (node not reading)", counts
	}
	return frames, "open at the end", counts
}

// item5 replays mass group creation: one device creating groups as fast as
// it can for CreateFor; then more devices fill up to BigGroups groups of
// BigGroupMembers; then the member of them all lists its conversations and
// logs in.
func (b *bench) item5(ctx context.Context, _ int) error {
	z := b.cfg.Sizes
	members := b.state.users[:z.BigGroupMembers]
	p := b.begin("5 setup", "the creating devices logged in")
	creator, err := b.devicesOf(ctx, p, 2, 1)
	if err != nil {
		return err
	}
	victim, err := b.devicesOf(ctx, p, 0, 1)
	if err != nil {
		return err
	}
	p = b.begin("5a", fmt.Sprintf("one device creating groups of %d members as fast as it can for %v", len(members), z.CreateFor))
	var created atomic.Int64
	end := time.Now().Add(z.CreateFor)
	for time.Now().Before(end) && ctx.Err() == nil {
		id, a := b.createGroup(ctx, creator[0], members)
		b.answer(p, a.key())
		if id != "" {
			created.Add(1)
		}
	}
	b.note(p, "%d groups created in %v", created.Load(), z.CreateFor)
	p = b.begin("5 fill", fmt.Sprintf("more devices (each until its 429) create groups up to %d", z.BigGroups))
	next := 3
	for created.Load() < int64(z.BigGroups) && next < len(b.state.users)-extras && ctx.Err() == nil {
		d, err := b.devicesOf(ctx, p, next, 1)
		if err != nil {
			return err
		}
		next++
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for ctx.Err() == nil {
					if created.Add(1) > int64(z.BigGroups) {
						created.Add(-1)
						return
					}
					id, a := b.createGroup(ctx, d[0], members)
					b.answer(p, a.key())
					if id == "" {
						created.Add(-1)
						return // this device's 429 (or a failure): the next device goes on
					}
				}
			})
		}
		wg.Wait()
	}
	b.note(p, "%d groups of %d members in all", created.Load(), len(members))
	return b.victim(ctx, victim[0], created.Load())
}

// victim lists every conversation of a user in all the groups, page by
// page, and logs it in VictimLogins times.
func (b *bench) victim(ctx context.Context, d *device, groups int64) error {
	z := b.cfg.Sizes
	p := b.begin("5b", fmt.Sprintf("a member of %d groups lists its conversations (default pages, then limit=500) and logs in %d times", groups, z.VictimLogins))
	for _, limit := range []string{"", "500"} {
		after, pages, total, maxBytes := "", 0, 0, 0
		var maxLat, sumLat time.Duration
		for ctx.Err() == nil {
			q := "?after=" + after
			if limit != "" {
				q += "&limit=" + limit
			}
			var out struct {
				Conversations []struct{} `json:"conversations"`
				Next          string     `json:"next"`
			}
			t := time.Now()
			a := b.call(ctx, "GET", "/v1/conversations"+q, d.token, nil, &out)
			lat := time.Since(t)
			b.answer(p, a.key())
			if a.err != nil || a.status != http.StatusOK {
				b.note(p, "list stopped: %s %s", a.key(), a.body)
				break
			}
			pages, total, maxBytes = pages+1, total+len(out.Conversations), max(maxBytes, len(a.body))
			maxLat, sumLat = max(maxLat, lat), sumLat+lat
			if out.Next == "" {
				break
			}
			after = out.Next
		}
		if pages > 0 {
			b.note(p, "limit %q: %d conversations in %d pages, largest page %d KiB, page latency mean %v max %v",
				limit, total, pages, maxBytes>>10, (sumLat / time.Duration(pages)).Round(time.Millisecond), maxLat.Round(time.Millisecond))
		}
	}
	for range z.VictimLogins {
		t := time.Now()
		if _, err := b.login(ctx, p, d.user); err != nil {
			b.note(p, "login: %v", err)
			continue
		}
		b.note(p, "login of the member took %v", time.Since(t).Round(time.Millisecond))
	}
	return nil
}

// item6 replays big history reads: HistoryMessages messages of MessageBytes
// stored first, then HistoryReaders devices read ?limit=1000 pages over and
// over while HistoryStallers devices ask for one and never read the body.
func (b *bench) item6(ctx context.Context, base int) error {
	z := b.cfg.Sizes
	n := z.HistoryReaders + z.HistoryStallers
	p := b.begin("6 setup", fmt.Sprintf("%d messages of %d KiB stored, %d reading devices logged in", z.HistoryMessages, z.MessageBytes>>10, n))
	w, err := b.devicesOf(ctx, p, base+extraWriter, 1)
	if err != nil {
		return err
	}
	r1, err := b.devicesOf(ctx, p, base+extraReader1, (n+1)/2)
	if err != nil {
		return err
	}
	r2, err := b.devicesOf(ctx, p, base+extraReader2, n/2)
	if err != nil {
		return err
	}
	readers := append(slices.Clone(r1), r2...)
	us := b.state.users
	conv, a := b.createGroup(ctx, w[0], []*user{us[base+extraWriter], us[base+extraReader1], us[base+extraReader2]})
	b.answer(p, a.key())
	if conv == "" {
		return fmt.Errorf("creating the history group: %s %s", a.key(), a.body)
	}
	ct := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'c'}, z.MessageBytes))
	err = parallel(ctx, 2, z.HistoryMessages, func(ctx context.Context, i int) error {
		body := []byte(fmt.Sprintf(`{"id":"h-%d","ciphertext":"%s"}`, i, ct))
		for {
			a := b.call(ctx, "POST", "/v1/conversations/"+conv+"/messages", w[0].token, body, nil)
			b.answer(p, a.key())
			switch {
			case a.err == nil && a.status < 300:
				return nil
			case a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable:
				if err := wait(ctx, a.retryAfter()); err != nil {
					return err
				}
			default:
				return fmt.Errorf("storing message %d: %s %s", i, a.key(), a.body)
			}
		}
	})
	if err != nil {
		return err
	}

	p = b.begin("6", fmt.Sprintf("%d devices reading ?limit=1000 pages for %v while %d devices' requests are never read",
		z.HistoryReaders, z.HistoryFor, z.HistoryStallers))
	path := "/v1/conversations/" + conv + "/messages?limit=1000"
	var stalled []*rawConn
	for _, d := range readers[z.HistoryReaders:] {
		c, err := stall(b.cfg.Target, path, d)
		if err != nil {
			b.answer(p, "staller: "+answer{err: err}.key())
			continue
		}
		stalled = append(stalled, c)
	}
	var pages, bytesRead, maxPage atomic.Int64
	end := time.Now().Add(z.HistoryFor)
	var wg sync.WaitGroup
	for _, d := range readers[:z.HistoryReaders] {
		wg.Go(func() {
			after := int64(0)
			for time.Now().Before(end) && ctx.Err() == nil {
				a := b.call(ctx, "GET", fmt.Sprintf("%s&after=%d", path, after), d.token, nil, nil)
				b.answer(p, "reader: "+a.key())
				if a.err != nil || a.status != http.StatusOK {
					wait(ctx, 50*time.Millisecond)
					continue
				}
				pages.Add(1)
				bytesRead.Add(int64(len(a.body)))
				for m := maxPage.Load(); int64(len(a.body)) > m && !maxPage.CompareAndSwap(m, int64(len(a.body))); m = maxPage.Load() {
				}
				after = nextAfter(a.body) // 0 when the page reached the end: start again
			}
		})
	}
	wg.Wait()
	for _, c := range stalled {
		b.answer(p, "staller: "+c.status())
		c.Close()
	}
	b.note(p, "readers got %d pages, %d MiB; largest page %d KiB", pages.Load(), bytesRead.Load()>>20, maxPage.Load()>>10)
	return nil
}

// nextAfter is a history page's next_after, read from the end of its body
// without decoding the page: the readers stand for attackers on other
// machines, so they spend as little as they can of the cores they share
// with the node here (decoding 5 MiB pages took about a core).
func nextAfter(page []byte) int64 {
	const key = `"next_after":`
	i := bytes.LastIndex(page, []byte(key))
	if i < 0 {
		return 0
	}
	rest := page[i+len(key):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	v, _ := strconv.ParseInt(string(rest[:n]), 10, 64)
	return v
}
