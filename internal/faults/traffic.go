package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/wire"
)

// Size is how much traffic a run puts on the cluster.
type Size struct {
	Name        string
	Users       int           // users, one device each...
	MultiDevice int           // ...and this many of them a second device
	Groups      int           // group conversations
	GroupSize   int           // members of each group
	Directs     int           // direct conversations
	Pause       time.Duration // mean pause between one device's bursts
	Burst       int           // largest burst (pipelined sends, not waiting for sent)
	Payload     int           // bytes of an ordinary message
	Stall       time.Duration // the stalled reader's stall
	Backlog     int           // bytes of backlog each offline device gathers
	RedisLong   time.Duration // the long Redis outage
	RedisShort  time.Duration // the short Redis outage and the pause
}

// Sizes: ci runs under `go test -race ./...` on a 2-core box; large is the
// documented command (docs/reliability.md).
var Sizes = map[string]Size{
	"ci": {Name: "ci", Users: 50, MultiDevice: 10, Groups: 6, GroupSize: 8, Directs: 30,
		Pause: 3 * time.Second, Burst: 4, Payload: 200, Stall: 15 * time.Second, Backlog: 2 << 20,
		RedisLong: 35 * time.Second, RedisShort: 10 * time.Second},
	"large": {Name: "large", Users: 240, MultiDevice: 60, Groups: 24, GroupSize: 12, Directs: 150,
		Pause: 2 * time.Second, Burst: 6, Payload: 500, Stall: 30 * time.Second, Backlog: 5 << 20,
		RedisLong: 35 * time.Second, RedisShort: 10 * time.Second},
}

// world is the population (users, devices, conversations) and everything
// it sent and received.
type world struct {
	t     testing.TB
	size  Size
	api   *client.Client // through NGINX, not recorded
	base  string
	users []*user
	devs  []*device
	convs map[string][]*user // members of each conversation
	big   string             // the busiest group: big messages, the stalled and offline devices

	mu       sync.Mutex
	sent     []sentMsg
	unacked  int      // sends never answered with sent, even after retries
	internal int      // sends answered with an internal error (retried)
	problems []string // conns that ended, and the like

	stop    chan struct{} // closed: no new bursts
	sending sync.WaitGroup
	recv    sync.WaitGroup
	quit    chan struct{} // closed: receivers end
	extra   atomic.Bool   // big-message traffic into the big group
}

type user struct {
	name  string
	id    string
	devs  []*device
	convs []string
}

type sentMsg struct {
	id, conv, sender string
	seq              int64
	at               time.Time // when sent came back
}

// device is one device's SDK connection and what its application got.
type device struct {
	w    *world
	u    *user
	sess *client.Session
	tap  *tap

	mu      sync.Mutex
	conn    *client.Conn         // nil while offline
	app     map[string][]int64   // per conversation, seqs in the order the application got them
	got     map[msgKey]int       // how often the application got each message
	at      map[msgKey]time.Time // when the application first got it
	highest map[string]int64
	acked   map[string]int64
	wake    chan struct{}

	stallUntil atomic.Int64 // unix nanos: the application reads nothing until then
}

func newWorld(t testing.TB, c *Cluster, size Size) *world {
	api, err := client.New(c.NGINX.URL())
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, size: size, api: api, base: c.NGINX.URL(), convs: map[string][]*user{},
		stop: make(chan struct{}), quit: make(chan struct{})}
}

// populate creates the users, their devices and the conversations, and
// connects every device through its tap.
func (w *world) populate(ctx context.Context) {
	t := w.t
	for i := range w.size.Users {
		u := &user{name: fmt.Sprintf("u%d-%s", i, randHex(3))}
		w.users = append(w.users, u)
	}
	w.parallel(len(w.users), func(i int) error {
		u := w.users[i]
		id, err := w.api.CreateAccount(ctx, u.name, "password-"+u.name)
		if err != nil {
			return err
		}
		u.id = id
		n := 1
		if i < w.size.MultiDevice {
			n = 2
		}
		for range n {
			s, err := w.api.Login(ctx, u.name, "password-"+u.name, client.DeviceInfo{Name: "dev", KEM: client.KEMX25519,
				PublicKey: bytes.Repeat([]byte{9}, 32), SigningKey: make([]byte, 32)})
			if err != nil {
				return err
			}
			u.devs = append(u.devs, &device{w: w, u: u, sess: s, tap: newTap(), app: map[string][]int64{}, got: map[msgKey]int{}, at: map[msgKey]time.Time{},
				highest: map[string]int64{}, acked: map[string]int64{}, wake: make(chan struct{}, 1)})
		}
		return nil
	})
	for _, u := range w.users {
		w.devs = append(w.devs, u.devs...)
	}

	// Conversations: groups of random members, then direct pairs, then
	// a direct one for any user left in none.
	rng := mrand.New(mrand.NewPCG(1, 2))
	var plan [][]*user
	for g := range w.size.Groups {
		// The first group is the busy one (w.big): big enough for four
		// senders of big messages, a stalled reader and six offline devices.
		n := w.size.GroupSize
		if g == 0 {
			n = max(n, 12)
		}
		perm := rng.Perm(len(w.users))[:n]
		var m []*user
		for _, i := range perm {
			m = append(m, w.users[i])
		}
		plan = append(plan, m)
	}
	for range w.size.Directs {
		p := rng.Perm(len(w.users))
		plan = append(plan, []*user{w.users[p[0]], w.users[p[1]]})
	}
	in := map[*user]bool{}
	for _, m := range plan {
		for _, u := range m {
			in[u] = true
		}
	}
	for i, u := range w.users {
		if !in[u] {
			plan = append(plan, []*user{u, w.users[(i+1)%len(w.users)]})
		}
	}
	ids := make([]string, len(plan))
	w.parallel(len(plan), func(i int) error {
		m := plan[i]
		kind := client.KindDirect
		if len(m) > 2 {
			kind = client.KindGroup
		}
		var others []string
		for _, u := range m[1:] {
			others = append(others, u.id)
		}
		id, err := m[0].devs[0].sess.CreateConversation(ctx, kind, others, "")
		ids[i] = id
		return err
	})
	for i, m := range plan {
		w.convs[ids[i]] = m
		for _, u := range m {
			u.convs = append(u.convs, ids[i])
		}
	}
	w.big = ids[0]

	w.parallel(len(w.devs), func(i int) error { return w.devs[i].connect(ctx) })
	for _, d := range w.devs {
		w.recv.Add(1)
		go d.receive()
	}
	t.Logf("%d users, %d devices, %d conversations", len(w.users), len(w.devs), len(w.convs))
}

// parallel runs f(0..n-1) eight at a time and fails the test on an error.
func (w *world) parallel(n int, f func(i int) error) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		w.t.Fatalf("setting up: %v", err)
	}
}

func (w *world) problem(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.problems) < 50 {
		w.problems = append(w.problems, fmt.Sprintf(format, args...))
	}
}

// startTraffic starts one sender per device: bursts of pipelined sends to
// its conversations, each send retried with its id until it is answered.
func (w *world) startTraffic() {
	for i, d := range w.devs {
		w.sending.Add(1)
		go d.sendLoop(mrand.New(mrand.NewPCG(uint64(i), 7)))
	}
}

// stopTraffic stops new bursts and waits until every send is answered
// (retried until then, for at most a minute).
func (w *world) stopTraffic() {
	close(w.stop)
	w.sending.Wait()
}

// bigTraffic sends 8 KB and 16 KB messages into the big group from its
// first members that are not excluded, about rate a second, until stop is
// closed; it returns when every one of them is answered.
func (w *world) bigTraffic(rate int, stop <-chan struct{}, exclude map[*device]bool) {
	var senders []*device
	for _, u := range w.convs[w.big] {
		for _, d := range u.devs {
			if !exclude[d] && len(senders) < 4 {
				senders = append(senders, d)
			}
		}
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var mine sync.WaitGroup
	defer mine.Wait()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		d, size := senders[i%len(senders)], 8<<10
		if i%2 == 1 {
			size = 16 << 10
		}
		w.sending.Add(1)
		mine.Add(1)
		go func() {
			defer w.sending.Done()
			defer mine.Done()
			d.send(w.big, size)
		}()
	}
}

func (d *device) sendLoop(rng *mrand.Rand) {
	w := d.w
	defer w.sending.Done()
	for {
		pause := w.size.Pause/2 + time.Duration(rng.Int64N(int64(w.size.Pause)))
		select {
		case <-w.stop:
			return
		case <-time.After(pause):
		}
		if d.current() == nil {
			continue // offline
		}
		conv := d.u.convs[rng.IntN(len(d.u.convs))]
		for range 1 + rng.IntN(w.size.Burst) {
			w.sending.Add(1)
			go func() {
				defer w.sending.Done()
				d.send(conv, w.size.Payload)
			}()
		}
	}
}

// send sends one message and retries it with the same id until the server
// answers sent, or a minute after the traffic stopped.
func (d *device) send(conv string, size int) {
	w := d.w
	req := client.SendRequest{ID: randHex(12), Conversation: conv, Ciphertext: payload(size)}
	var giveUp <-chan time.Time
	for {
		if c := d.current(); c != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			s, err := c.Send(ctx, req)
			cancel()
			if err == nil {
				w.mu.Lock()
				w.sent = append(w.sent, sentMsg{id: req.ID, conv: conv, sender: d.sess.DeviceID, seq: s.Seq, at: time.Now()})
				w.mu.Unlock()
				return
			}
			var e *client.Error
			if errors.As(err, &e) && e.Code == wire.CodeInternal {
				// The protocol answers a failed commit with unavailable;
				// during a PostgreSQL restart the node says internal. The
				// same id is safe to send again either way: note it, retry.
				w.mu.Lock()
				w.internal++
				w.mu.Unlock()
			} else if errors.As(err, &e) && e.Code != wire.CodeRateLimited && e.Code != wire.CodeUnavailable && e.Code != "" {
				w.problem("device %s: send refused: %v", d.sess.DeviceID, err)
				w.mu.Lock()
				w.unacked++
				w.mu.Unlock()
				return
			}
		}
		if giveUp == nil {
			select {
			case <-w.stop:
				giveUp = time.After(time.Minute)
			default:
			}
		}
		select {
		case <-giveUp:
			w.problem("device %s: a send to %s never answered", d.sess.DeviceID, conv)
			w.mu.Lock()
			w.unacked++
			w.mu.Unlock()
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *device) current() *client.Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn
}

// connect opens the device's Conn through its tap, telling the SDK what
// the application already has (as an app that persists messages would).
func (d *device) connect(ctx context.Context) error {
	api, err := client.New(d.w.base, client.WithHTTPClient(d.tap.httpClient()))
	if err != nil {
		return err
	}
	d.mu.Lock()
	delivered := make(map[string]int64, len(d.highest))
	for k, v := range d.highest {
		delivered[k] = v
	}
	d.mu.Unlock()
	var conn *client.Conn
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err = client.Connect(cctx, api.Resume(*d.sess), client.ConnOptions{Delivered: delivered, MaxBackoff: 2 * time.Second})
		cancel()
		if err == nil || attempt == 20 || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("device %s: connect: %w", d.sess.DeviceID, err)
	}
	d.mu.Lock()
	d.conn = conn
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return nil
}

// offline closes the device's Conn: it holds no socket until connect.
func (d *device) offline() {
	d.mu.Lock()
	c := d.conn
	d.conn = nil
	d.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// receive is the application: it takes messages from the Conn, keeps them,
// and acks the highest seq per conversation a few times a second.
func (d *device) receive() {
	w := d.w
	defer w.recv.Done()
	ack := time.NewTicker(300 * time.Millisecond)
	defer ack.Stop()
	for {
		if until := d.stallUntil.Load(); until > 0 && time.Now().UnixNano() < until {
			select {
			case <-w.quit:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		c := d.current()
		if c == nil {
			select {
			case <-w.quit:
				return
			case <-d.wake:
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		select {
		case <-w.quit:
			return
		case m, ok := <-c.Messages():
			if !ok {
				if d.current() != c {
					continue // taken offline
				}
				w.problem("device %s: Conn ended: %v", d.sess.DeviceID, c.Err())
				d.offline()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if err := d.connect(ctx); err != nil {
					w.problem("%v", err)
				}
				cancel()
				continue
			}
			d.mu.Lock()
			d.app[m.Conversation] = append(d.app[m.Conversation], m.Seq)
			k := msgKey{m.Conversation, m.Seq}
			if d.got[k]++; d.got[k] == 1 {
				d.at[k] = time.Now()
			}
			d.highest[m.Conversation] = max(d.highest[m.Conversation], m.Seq)
			d.mu.Unlock()
		case <-ack.C:
			d.ack(c)
		}
	}
}

func (d *device) ack(c *client.Conn) {
	d.mu.Lock()
	var todo []sentMsg
	for conv, seq := range d.highest {
		if seq > d.acked[conv] {
			d.acked[conv] = seq
			todo = append(todo, sentMsg{conv: conv, seq: seq})
		}
	}
	d.mu.Unlock()
	for _, a := range todo {
		_ = c.Ack(context.Background(), a.conv, a.seq)
	}
}

// gotAt reports whether and when the application got seq in conv.
func (d *device) gotAt(conv string, seq int64) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.at[msgKey{conv, seq}]
	return at, ok
}

type msgKey struct {
	conv string
	seq  int64
}

// close ends the world's goroutines and Conns.
func (w *world) close() {
	close(w.quit)
	w.recv.Wait()
	for _, d := range w.devs {
		d.offline()
	}
}

func payload(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
