package load

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/wire"
)

// broadcastScenario measures one frame to every socket: all devices
// connect (as in hold), then Rounds rounds run one after the other. In a
// round the sender (the run's first device) sends one message with one
// shared ciphertext to a group holding every user of the run, and every
// other device must receive it exactly once. A round ends when the last
// device received it (or after RoundTimeout); its time is from the send to
// that last receive, and its rate is deliveries / time. The ciphertext
// starts with the send time, so each delivery's latency is measured too.
//
// The same run against cmd/sbbare (which broadcasts every send to every
// other socket) gives the socket layer's ceiling; scripts/bench-broadcast.sh
// runs both.
//
// A round's end must be seen by whoever sends the next one, so every socket
// lives in one worker process (at most 19,900 sockets, more than one node
// holds here).
type broadcastScenario struct{}

// broadcastPlan is what the worker gets.
type broadcastPlan struct {
	Conversation string        `json:"conversation"`
	Sender       int           `json:"sender"` // global index of the sending device
	Rounds       int           `json:"rounds"`
	PayloadBytes int           `json:"payload_bytes"`
	RoundTimeout time.Duration `json:"round_timeout"`
	Gap          time.Duration `json:"gap"`
}

const (
	defaultRounds       = 10
	maxRounds           = 1000
	defaultRoundTimeout = 30 * time.Second
	// broadcastGap separates rounds, so the writes (and commits) of one
	// are over before the next starts.
	broadcastGap = 100 * time.Millisecond
	// broadcastHeader: send time (unix ns), round, sender's global index.
	broadcastHeader = 16
)

func (broadcastScenario) Check(cfg *Config) error {
	if cfg.Conns < 2 {
		return errors.New("broadcast: --conns must be at least 2 (a sender and a receiver)")
	}
	if cfg.Procs != 1 {
		return fmt.Errorf("broadcast: --procs must be 1 (got %d): the sender must see every receive to time a round, and one worker holds up to %d sockets", cfg.Procs, maxPerWorker)
	}
	if cfg.Rounds == 0 {
		cfg.Rounds = defaultRounds
	}
	if cfg.Rounds < 0 || cfg.Rounds > maxRounds {
		return fmt.Errorf("broadcast: --rounds must be 1 to %d", maxRounds)
	}
	if cfg.RoundTimeout <= 0 {
		cfg.RoundTimeout = defaultRoundTimeout
	}
	if cfg.PayloadBytes < broadcastHeader {
		return fmt.Errorf("broadcast: --payload must be at least %d bytes", broadcastHeader)
	}
	return nil
}

// Plan creates the group of every user, owned by the sender's user.
func (broadcastScenario) Plan(ctx context.Context, env *PlanEnv) (json.RawMessage, error) {
	cfg := env.Config
	if len(env.Devices) < 2 {
		return nil, fmt.Errorf("broadcast: %d device(s) logged in, need at least 2", len(env.Devices))
	}
	sender := env.Devices[0]
	var members []string
	for _, u := range env.Users {
		if u.ID != "" {
			members = append(members, u.ID)
		}
	}
	s := env.Client.Resume(client.Session{UserID: sender.UserID, DeviceID: sender.DeviceID, Token: sender.Token})
	id, err := retry(ctx, func() (string, error) {
		return s.CreateConversation(ctx, client.KindGroup, members, "sbload broadcast")
	})
	if err != nil {
		return nil, fmt.Errorf("creating the group of %d users (a node needs --max-members at least that): %w", len(members), err)
	}
	fmt.Fprintf(env.Log, "broadcast: one group of %d users, %d devices; %d rounds from device %d\n",
		len(members), len(env.Devices), cfg.Rounds, sender.Index)
	return json.Marshal(broadcastPlan{Conversation: id, Sender: sender.Index, Rounds: cfg.Rounds,
		PayloadBytes: cfg.PayloadBytes, RoundTimeout: cfg.RoundTimeout, Gap: broadcastGap})
}

type broadcastDriver struct {
	plan   broadcastPlan
	devs   []Device
	sender int // local index of the sending device, -1 when it is elsewhere
	words  int // uint64 words per device in seen
	// seen: bit r of seen[i*words+r/64] is set once device i received
	// round r. Device i's words are touched only by its socket's poller.
	seen   []uint64
	rounds []broadcastRound

	delivery, commit                                       Histogram
	sent, sentOK, sendErrs, received, dups, ownEcho, other atomic.Int64
	roundsDone, timeouts, gaveUp, finished                 atomic.Int64
}

// broadcastRound is one round's state; the atomics are shared between the
// sending goroutine and the pollers.
type broadcastRound struct {
	expected atomic.Int64 // receivers, fixed before the send
	sendAt   atomic.Int64 // unix ns
	sentAt   atomic.Int64 // when the sender got its sent (or error)
	received atomic.Int64
	lastRecv atomic.Int64
	complete atomic.Bool
	done     chan struct{} // one token when received reaches expected
}

func (broadcastScenario) NewDriver(raw json.RawMessage, devs []Device) (Driver, error) {
	d := &broadcastDriver{devs: devs, sender: -1}
	if err := json.Unmarshal(raw, &d.plan); err != nil {
		return nil, err
	}
	if d.plan.Rounds <= 0 || d.plan.Rounds > maxRounds {
		return nil, fmt.Errorf("broadcast: bad plan: %d rounds", d.plan.Rounds)
	}
	d.words = (d.plan.Rounds + 63) / 64
	d.seen = make([]uint64, len(devs)*d.words)
	d.rounds = make([]broadcastRound, d.plan.Rounds)
	for r := range d.rounds {
		d.rounds[r].done = make(chan struct{}, 1)
	}
	for i, dev := range devs {
		if dev.Index == d.plan.Sender {
			d.sender = i
		}
	}
	return d, nil
}

func (d *broadcastDriver) OnSynced(*Conn) {}

func (d *broadcastDriver) OnFrame(c *Conn, typ string, m []byte) {
	switch typ {
	case wire.TypeMessage:
		d.onMessage(c, m)
	case wire.TypeSent, wire.TypeError:
		id := rawStringField(m, "id")
		if c.Index != d.sender || len(id) < 3 || string(id[:2]) != "bc" {
			if typ == wire.TypeSent {
				d.other.Add(1)
			}
			return
		}
		r, err := strconv.Atoi(string(id[2:]))
		if err != nil || r < 0 || r >= len(d.rounds) {
			d.other.Add(1)
			return
		}
		if typ == wire.TypeError {
			d.sendErrs.Add(1)
			return
		}
		now := time.Now().UnixNano()
		d.sentOK.Add(1)
		d.rounds[r].sentAt.Store(now)
		d.commit.Record(time.Duration(now - d.rounds[r].sendAt.Load()))
	}
}

func (d *broadcastDriver) onMessage(c *Conn, m []byte) {
	now := time.Now().UnixNano()
	if string(rawStringField(m, "conversation")) != d.plan.Conversation {
		d.other.Add(1)
		return
	}
	ct := rawStringField(m, "ciphertext")
	var hdr [18]byte
	if len(ct) < 24 {
		d.other.Add(1)
		return
	}
	if _, err := base64.StdEncoding.Decode(hdr[:], ct[:24]); err != nil {
		d.other.Add(1)
		return
	}
	r := int(binary.LittleEndian.Uint32(hdr[8:]))
	if r >= len(d.rounds) {
		d.other.Add(1)
		return
	}
	if c.Index == d.sender {
		d.ownEcho.Add(1)
		return
	}
	w, bit := &d.seen[c.Index*d.words+r/64], uint64(1)<<(r%64)
	if *w&bit != 0 {
		d.dups.Add(1)
		return
	}
	*w |= bit
	rd := &d.rounds[r]
	d.received.Add(1)
	d.delivery.Record(time.Duration(now - int64(binary.LittleEndian.Uint64(hdr[:8]))))
	maxInt64(&rd.lastRecv, now)
	if rd.received.Add(1) == rd.expected.Load() {
		select {
		case rd.done <- struct{}{}:
		default:
		}
	}
}

// Steady runs the rounds from the sender's socket, one at a time.
func (d *broadcastDriver) Steady(ctx context.Context, conns []*Conn) {
	defer d.finished.Store(1)
	if d.sender < 0 {
		return
	}
	var receivers []*Conn
	for i, c := range conns {
		if i != d.sender && c.Synced() {
			receivers = append(receivers, c)
		}
	}
	expect := int64(len(receivers))
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	payload := make([]byte, d.plan.PayloadBytes)
	for i := broadcastHeader; i < len(payload); i++ {
		payload[i] = byte(rng.Uint32())
	}
	frame := make([]byte, 0, 256+len(d.plan.Conversation)+base64.StdEncoding.EncodedLen(len(payload)))
	sc := conns[d.sender]
	for r := range d.rounds {
		if ctx.Err() != nil || !sc.Synced() {
			return
		}
		rd := &d.rounds[r]
		rd.expected.Store(expect)
		ts := time.Now().UnixNano()
		binary.LittleEndian.PutUint64(payload[0:], uint64(ts))
		binary.LittleEndian.PutUint32(payload[8:], uint32(r))
		binary.LittleEndian.PutUint32(payload[12:], uint32(d.plan.Sender))
		frame = append(append(frame[:0], wire.SendHead...), "bc"...)
		frame = strconv.AppendInt(frame, int64(r), 10)
		frame = append(frame, wire.SendConversation...)
		frame = append(frame, d.plan.Conversation...)
		frame = append(frame, `","ciphertext":"`...)
		frame = base64.StdEncoding.AppendEncode(frame, payload)
		frame = append(frame, `"}`...)
		rd.sendAt.Store(ts)
		if err := sc.SendText(frame); err != nil {
			d.sendErrs.Add(1)
			return
		}
		d.sent.Add(1)
		if expect > 0 && !d.wait(ctx, rd, receivers) {
			return
		}
		d.roundsDone.Add(1)
		select {
		case <-time.After(d.plan.Gap):
		case <-ctx.Done():
			return
		}
	}
}

// wait waits for the round's last delivery. It gives up after RoundTimeout,
// or as soon as every delivery still missing is for a socket that closed
// (it is lost; waiting longer would only delay the next round). It returns
// false when ctx ended.
func (d *broadcastDriver) wait(ctx context.Context, rd *broadcastRound, receivers []*Conn) bool {
	timer := time.NewTimer(d.plan.RoundTimeout)
	defer timer.Stop()
	check := time.NewTicker(50 * time.Millisecond)
	defer check.Stop()
	for {
		select {
		case <-rd.done:
			rd.complete.Store(true)
			return true
		case <-timer.C:
			d.timeouts.Add(1)
			return true
		case <-check.C:
			var gone int64
			for _, c := range receivers {
				if !c.Synced() {
					gone++
				}
			}
			if gone > 0 && rd.received.Load()+gone >= rd.expected.Load() {
				d.gaveUp.Add(1)
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}

func (d *broadcastDriver) Progress() map[string]int64 {
	return map[string]int64{"rounds": int64(d.plan.Rounds), "rounds_done": d.roundsDone.Load(), "finished": d.finished.Load(),
		"sent": d.sent.Load(), "sent_ok": d.sentOK.Load(), "send_errors": d.sendErrs.Load(),
		"received": d.received.Load(), "dups": d.dups.Load(), "timeouts": d.timeouts.Load(), "rounds_short": d.gaveUp.Load()}
}

// Finished: the sender has run every round (or given up).
func (broadcastScenario) Finished(p map[string]int64) bool { return p["finished"] > 0 }

// broadcastReport is one worker's Report; the per-round slices are indexed
// by round.
type broadcastReport struct {
	Expected, Received, SendAt, SentAt, LastRecv []int64
	Complete                                     []bool
	Sent, SentOK, SendErrors, Delivered          int64
	Duplicates, OwnEcho, Unexpected, Timeouts    int64
	ShortRounds                                  int64
	Delivery, Commit                             HistogramData
}

func (d *broadcastDriver) Report() json.RawMessage {
	r := broadcastReport{
		Sent: d.sent.Load(), SentOK: d.sentOK.Load(), SendErrors: d.sendErrs.Load(), Delivered: d.received.Load(),
		Duplicates: d.dups.Load(), OwnEcho: d.ownEcho.Load(), Unexpected: d.other.Load(), Timeouts: d.timeouts.Load(),
		ShortRounds: d.gaveUp.Load(),
		Delivery:    d.delivery.Data(), Commit: d.commit.Data(),
	}
	for i := range d.rounds {
		rd := &d.rounds[i]
		r.Expected = append(r.Expected, rd.expected.Load())
		r.Received = append(r.Received, rd.received.Load())
		r.SendAt = append(r.SendAt, rd.sendAt.Load())
		r.SentAt = append(r.SentAt, rd.sentAt.Load())
		r.LastRecv = append(r.LastRecv, rd.lastRecv.Load())
		r.Complete = append(r.Complete, rd.complete.Load())
	}
	b, _ := json.Marshal(r)
	return b
}

// BroadcastSummary is the broadcast part of the summary. Every device but
// the sender that was synced when the rounds began must receive every
// round once: Expected = Σ per round, Lost = Expected - Delivered.
// DeliveriesPerSecond is the median over the complete rounds of
// deliveries / (last receive - send).
type BroadcastSummary struct {
	Devices      int    `json:"devices"`
	Receivers    int64  `json:"receivers_per_round"`
	Rounds       int    `json:"rounds"`
	Complete     int    `json:"rounds_complete"`
	PayloadBytes int    `json:"payload_bytes"`
	Payload      string `json:"payload"`

	Sent       int64 `json:"sent"`
	SentOK     int64 `json:"sent_ok"`
	SendErrors int64 `json:"send_errors"`
	Expected   int64 `json:"expected_deliveries"`
	Delivered  int64 `json:"delivered"`
	Duplicates int64 `json:"duplicates"`
	Lost       int64 `json:"lost"`
	OwnEcho    int64 `json:"own_echo"`
	Unexpected int64 `json:"unexpected_frames"`
	Timeouts   int64 `json:"round_timeouts"`
	// ShortRounds ended early: every delivery still missing was for a
	// socket that had closed.
	ShortRounds int64 `json:"rounds_cut_short"`
	ZeroLoss    bool  `json:"zero_loss"`

	DeliveriesPerSecond    float64 `json:"deliveries_per_second"` // median over complete rounds
	DeliveriesPerSecondMin float64 `json:"deliveries_per_second_min"`
	DeliveriesPerSecondMax float64 `json:"deliveries_per_second_max"`
	RoundMillis            float64 `json:"round_ms"` // median send to last receive

	DeliveryLatency Latency          `json:"delivery_latency"` // send to each receive
	CommitLatency   Latency          `json:"commit_latency"`   // send to sent
	PerRound        []BroadcastRound `json:"per_round"`
}

// BroadcastRound is one round.
type BroadcastRound struct {
	Round               int     `json:"round"`
	Expected            int64   `json:"expected"`
	Delivered           int64   `json:"delivered"`
	Complete            bool    `json:"complete"`
	Millis              float64 `json:"ms"`      // send to last receive
	SentMillis          float64 `json:"sent_ms"` // send to the sender's sent
	DeliveriesPerSecond float64 `json:"deliveries_per_second"`
}

func (broadcastScenario) Merge(rawPlan json.RawMessage, reports []json.RawMessage, s *Summary) error {
	var plan broadcastPlan
	if err := json.Unmarshal(rawPlan, &plan); err != nil {
		return err
	}
	b := &BroadcastSummary{Devices: s.Conns.LoggedIn, Rounds: plan.Rounds, PayloadBytes: plan.PayloadBytes,
		Payload: "random bytes of the given size behind a 16-byte timing header; not HPKE-sealed"}
	rounds := make([]BroadcastRound, plan.Rounds)
	sendAt, sentAt, last := make([]int64, plan.Rounds), make([]int64, plan.Rounds), make([]int64, plan.Rounds)
	complete := make([]bool, plan.Rounds)
	var delivery, commit HistogramData
	for _, raw := range reports {
		var r broadcastReport
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		b.Sent += r.Sent
		b.SentOK += r.SentOK
		b.SendErrors += r.SendErrors
		b.Delivered += r.Delivered
		b.Duplicates += r.Duplicates
		b.OwnEcho += r.OwnEcho
		b.Unexpected += r.Unexpected
		b.Timeouts += r.Timeouts
		b.ShortRounds += r.ShortRounds
		delivery.Merge(r.Delivery)
		commit.Merge(r.Commit)
		for i := range min(plan.Rounds, len(r.Expected)) {
			rounds[i].Expected += r.Expected[i]
			rounds[i].Delivered += r.Received[i]
			sendAt[i] = max(sendAt[i], r.SendAt[i])
			sentAt[i] = max(sentAt[i], r.SentAt[i])
			last[i] = max(last[i], r.LastRecv[i])
			complete[i] = complete[i] || r.Complete[i]
		}
	}
	var rates, times []float64
	for i := range rounds {
		rd := &rounds[i]
		rd.Round = i
		if sendAt[i] == 0 {
			continue // never sent
		}
		b.Expected += rd.Expected
		b.Receivers = max(b.Receivers, rd.Expected)
		rd.Complete = complete[i] && rd.Delivered == rd.Expected
		if sentAt[i] > 0 {
			rd.SentMillis = round3(float64(sentAt[i]-sendAt[i]) / 1e6)
		}
		if last[i] > sendAt[i] {
			rd.Millis = round3(float64(last[i]-sendAt[i]) / 1e6)
			rd.DeliveriesPerSecond = round3(float64(rd.Delivered) / (float64(last[i]-sendAt[i]) / 1e9))
		}
		if rd.Complete && rd.Millis > 0 {
			b.Complete++
			rates = append(rates, rd.DeliveriesPerSecond)
			times = append(times, rd.Millis)
		}
	}
	b.PerRound = rounds
	b.Lost = b.Expected - b.Delivered
	b.ZeroLoss = b.Lost == 0 && b.Duplicates == 0 && b.OwnEcho == 0 && b.SendErrors == 0 && b.Timeouts == 0 &&
		b.Sent == int64(plan.Rounds) && b.SentOK == b.Sent
	if len(rates) > 0 {
		b.DeliveriesPerSecond = round3(median(rates))
		b.DeliveriesPerSecondMin, b.DeliveriesPerSecondMax = slices.Min(rates), slices.Max(rates)
		b.RoundMillis = round3(median(times))
	}
	b.DeliveryLatency, b.CommitLatency = delivery.Latency(), commit.Latency()
	s.Broadcast = b
	return nil
}

// median of v (the mean of the middle two for an even count); v is sorted.
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
