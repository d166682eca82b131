package load

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/wire"
)

// chatScenario is the chat mix: every user has direct conversations, a
// small group and (with --large-group) a large one, the way a messenger's
// users do; messages go at a total rate to conversations picked by kind
// weight, with ciphertexts of varied sizes; devices ack what they received;
// with --churn some devices drop their connection and reconnect, so the
// backlog replay is part of the load and of the zero-loss check. Every
// stored message must reach every other device of its conversation at
// least once (once per connection: a second copy on the same connection is
// a duplicate; the replay after a reconnect is not).
type chatScenario struct{}

// Conversation kinds of the chat mix, also the index of their weights.
const (
	kindDM = iota
	kindSmall
	kindLarge
	numKinds
)

var kindNames = [numKinds]string{"direct", "small_group", "large_group"}

// chatLayout is who is in which conversation, computed the same way by the
// coordinator and the workers from the user count and the mix settings.
// User u has direct conversations with u+1 ... u+DMs (mod users), so about
// 2·DMs in all; is in small group u mod ⌈users/small⌉ (members spread over
// the user range) and in large group u / large (consecutive users).
type chatLayout struct {
	kinds   []uint8   // per conversation
	members [][]int32 // user indexes per conversation
	ofUser  [][]int32 // conversations per user, ascending
}

func newChatLayout(users, dms, small, large int) chatLayout {
	var l chatLayout
	add := func(kind uint8, members []int32) {
		l.kinds = append(l.kinds, kind)
		l.members = append(l.members, members)
	}
	for u := range users {
		for k := 1; k <= dms; k++ {
			add(kindDM, []int32{int32(u), int32((u + k) % users)})
		}
	}
	if small > 0 {
		n := (users + small - 1) / small
		groups := make([][]int32, n)
		for u := range users {
			groups[u%n] = append(groups[u%n], int32(u))
		}
		for _, g := range groups {
			add(kindSmall, g)
		}
	}
	if large > 0 {
		for first := 0; first < users; first += large {
			var g []int32
			for u := first; u < min(users, first+large); u++ {
				g = append(g, int32(u))
			}
			add(kindLarge, g)
		}
	}
	l.ofUser = make([][]int32, users)
	for c, ms := range l.members {
		for _, u := range ms {
			l.ofUser[u] = append(l.ofUser[u], int32(c))
		}
	}
	return l
}

// chatPlan is what the workers get.
type chatPlan struct {
	Users, DMs, Small, Large int
	Conversations            []string // "" where it could not be created
	ConvDevices              []int    // logged-in devices per conversation
	TotalDevices             int
	Weights                  [numKinds]float64
	Rate                     float64       // messages per second, the whole run
	Churn                    float64       // reconnects per second, the whole run
	Storm                    time.Duration // every device reconnects at once this far into the steady phase (0 = never)
	PayloadMin, PayloadMax   int
	AckInterval              time.Duration
	Social                   socialPlan // presence and typing (chat_social.go)
}

func (chatScenario) Check(cfg *Config) error {
	if cfg.Conns <= 0 {
		return errors.New("chat: --conns must be positive")
	}
	users := (cfg.Conns + cfg.DevicesPerUser - 1) / cfg.DevicesPerUser
	if cfg.DMs < 0 || cfg.SmallGroup < 0 || cfg.LargeGroup < 0 {
		return errors.New("chat: --dms, --small-group and --large-group must not be negative")
	}
	if cfg.DMs > 0 && 2*cfg.DMs > users-1 {
		return fmt.Errorf("chat: %d users cannot each have %d direct conversations with distinct others; lower --dms", users, 2*cfg.DMs)
	}
	if cfg.ChatRate <= 0 {
		return errors.New("chat: --chat-rate (messages per second, the whole run) must be positive")
	}
	if cfg.PayloadMin <= 0 {
		cfg.PayloadMin = min(100, cfg.PayloadBytes)
	}
	if cfg.PayloadMin < fanoutHeader || cfg.PayloadMin > cfg.PayloadBytes {
		return fmt.Errorf("chat: want %d <= --payload-min (%d) <= --payload (%d)", fanoutHeader, cfg.PayloadMin, cfg.PayloadBytes)
	}
	w := cfg.Mix
	if w == [numKinds]float64{} {
		w = [numKinds]float64{60, 30, 10}
	}
	for k, v := range w {
		if v < 0 {
			return fmt.Errorf("chat: --mix weight %v for %s is negative", v, kindNames[k])
		}
	}
	if w[kindDM]*float64(cfg.DMs)+w[kindSmall]*float64(cfg.SmallGroup)+w[kindLarge]*float64(cfg.LargeGroup) == 0 {
		return errors.New("chat: no conversation kind has both members and a weight (--dms, --small-group, --large-group, --mix)")
	}
	cfg.Mix = w
	return nil
}

func (chatScenario) Plan(ctx context.Context, env *PlanEnv) (json.RawMessage, error) {
	cfg := env.Config
	users := len(env.Users)
	l := newChatLayout(users, cfg.DMs, cfg.SmallGroup, cfg.LargeGroup)
	p := chatPlan{Users: users, DMs: cfg.DMs, Small: cfg.SmallGroup, Large: cfg.LargeGroup,
		Conversations: make([]string, len(l.kinds)), ConvDevices: make([]int, len(l.kinds)),
		TotalDevices: len(env.Devices), Weights: cfg.Mix, Rate: cfg.ChatRate, Churn: cfg.Churn, Storm: cfg.Storm,
		PayloadMin: cfg.PayloadMin, PayloadMax: cfg.PayloadBytes, AckInterval: cfg.AckInterval,
		Social: newSocialPlan(cfg, env.Users)}
	owner := make([]*Device, users) // a logged-in device of each user
	perUser := make([]int, users)
	for i := range env.Devices {
		d := &env.Devices[i]
		if owner[d.User] == nil {
			owner[d.User] = d
		}
		perUser[d.User]++
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	var created, skipped atomic.Int64
	sem := make(chan struct{}, cfg.HTTPConcurrency)
	for c, ms := range l.members {
		var ids []string
		for _, u := range ms {
			p.ConvDevices[c] += perUser[u]
			if env.Users[u].ID != "" && owner[u] != nil {
				ids = append(ids, env.Users[u].ID)
			}
		}
		if len(ids) < len(ms) { // a member could not log in: leave it out
			skipped.Add(1)
			continue
		}
		o := owner[ms[0]]
		kind, title := client.KindGroup, fmt.Sprintf("sbload %s %d", kindNames[l.kinds[c]], c)
		if l.kinds[c] == kindDM {
			kind, title, ids = client.KindDirect, "", ids[1:]
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s := env.Client.Resume(client.Session{UserID: o.UserID, DeviceID: o.DeviceID, Token: o.Token})
			id, err := retry(ctx, func() (string, error) { return s.CreateConversation(ctx, kind, ids, title) })
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("creating %s %d: %w", kindNames[l.kinds[c]], c, err)
			}
			p.Conversations[c] = id
			if n := created.Add(1); n%5000 == 0 {
				fmt.Fprintf(env.Log, "chat: %d/%d conversations created\n", n, len(l.kinds))
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	var count [numKinds]int
	for _, k := range l.kinds {
		count[k]++
	}
	fmt.Fprintf(env.Log, "chat: %d users; %d direct, %d small groups of ~%d users, %d large groups of ~%d users (%d left out: a member had no device)\n",
		users, count[kindDM], count[kindSmall], cfg.SmallGroup, count[kindLarge], cfg.LargeGroup, skipped.Load())
	return json.Marshal(p)
}

// chatDriver is a worker's share of the chat mix.
type chatDriver struct {
	plan   chatPlan
	layout chatLayout
	devs   []Device
	convs  map[string]int32 // conversation id -> index
	rx     [][]fanoutRx     // per local device, per conversation of its user (layout.ofUser order)
	msgNo  atomic.Uint32

	perKind [numKinds]chatKindCounts
	// per conversation: sends answered, highest seq seen
	convSentOK, convMaxSeq []atomic.Int64

	sent, sentOK, sendErrs, skipped, foreign, ownEcho, replayed atomic.Int64
	abandoned, reconnects, resynced, acks                       atomic.Int64
	firstSend, lastRecv                                         atomic.Int64
	stormDevices, stormStart, stormEnd                          atomic.Int64   // the reconnect storm: devices, unix nanos when it began and when all had resynced
	outstanding                                                 []atomic.Int32 // per local device: sends without an answer yet
	redialed                                                    []atomic.Bool  // per local device: Reconnect closed it, not synced since
	social                                                      socialCounts   // chat_social.go
}

type chatKindCounts struct {
	sent, received, dups atomic.Int64
	delivery, commit     Histogram
}

func (chatScenario) NewDriver(raw json.RawMessage, devs []Device) (Driver, error) {
	d := &chatDriver{devs: devs, convs: map[string]int32{}}
	if err := json.Unmarshal(raw, &d.plan); err != nil {
		return nil, err
	}
	d.layout = newChatLayout(d.plan.Users, d.plan.DMs, d.plan.Small, d.plan.Large)
	if len(d.layout.kinds) != len(d.plan.Conversations) {
		return nil, fmt.Errorf("chat: plan has %d conversations, layout %d", len(d.plan.Conversations), len(d.layout.kinds))
	}
	for c, id := range d.plan.Conversations {
		if id != "" {
			d.convs[id] = int32(c)
		}
	}
	d.rx = make([][]fanoutRx, len(devs))
	for i, dev := range devs {
		d.rx[i] = make([]fanoutRx, len(d.layout.ofUser[dev.User]))
	}
	d.convSentOK = make([]atomic.Int64, len(d.plan.Conversations))
	d.convMaxSeq = make([]atomic.Int64, len(d.plan.Conversations))
	d.outstanding = make([]atomic.Int32, len(devs))
	d.redialed = make([]atomic.Bool, len(devs))
	return d, nil
}

// rxFor returns local device i's receive state for conversation c, or nil
// if its user is not a member.
func (d *chatDriver) rxFor(i int, c int32) *fanoutRx {
	for k, cc := range d.layout.ofUser[d.devs[i].User] {
		if cc == c {
			return &d.rx[i][k]
		}
	}
	return nil
}

// OnSynced gives up on the sends the device's previous connection left
// unanswered (none on a first connection): the old connection is closed,
// and nothing is sent on the new one before synced. What of them was
// stored still counts, from the seqs the other devices see.
func (d *chatDriver) OnSynced(c *Conn) {
	if n := d.outstanding[c.Index].Swap(0); n > 0 {
		d.abandoned.Add(int64(n))
	}
	if d.redialed[c.Index].CompareAndSwap(true, false) {
		d.resynced.Add(1)
	}
	d.socialSynced(c)
}

func (d *chatDriver) OnFrame(c *Conn, typ string, m []byte) {
	if d.socialFrame(typ, m) {
		return
	}
	switch typ {
	case wire.TypeMessage:
		d.onMessage(c, m)
	case wire.TypeSent:
		d.outstanding[c.Index].Add(-1)
		d.sentOK.Add(1)
		conv, ok := d.convs[string(rawStringField(m, "conversation"))]
		if !ok {
			d.foreign.Add(1)
			return
		}
		k := d.layout.kinds[conv]
		d.convSentOK[conv].Add(1)
		if seq := intField(m, "seq"); seq > 0 {
			if rx := d.rxFor(c.Index, conv); rx != nil {
				rx.mark(seq)
			}
			maxInt64(&d.convMaxSeq[conv], seq)
		}
		if t, ok := sentTime(m); ok {
			d.perKind[k].commit.Record(time.Duration(time.Now().UnixNano() - t))
		}
	case wire.TypeError:
		if len(rawStringField(m, "id")) > 0 {
			d.outstanding[c.Index].Add(-1)
			d.sendErrs.Add(1)
		}
	}
}

func (d *chatDriver) onMessage(c *Conn, m []byte) {
	now := time.Now().UnixNano()
	conv, ok := d.convs[string(rawStringField(m, "conversation"))]
	var rx *fanoutRx
	if ok {
		rx = d.rxFor(c.Index, conv)
	}
	seq := intField(m, "seq")
	h, hok := readTimingHeader(rawStringField(m, "ciphertext"))
	if rx == nil || seq <= 0 || !hok {
		d.foreign.Add(1)
		return
	}
	if h.sender == d.devs[c.Index].Index {
		d.ownEcho.Add(1)
	}
	k := d.layout.kinds[conv]
	if !rx.mark(seq) {
		if c.Synced() {
			d.perKind[k].dups.Add(1)
		} else {
			d.replayed.Add(1) // backlog after a reconnect: it was not acked yet
		}
		return
	}
	d.perKind[k].received.Add(1)
	maxInt64(&d.convMaxSeq[conv], seq)
	d.perKind[k].delivery.Record(time.Duration(now - h.sent))
	maxInt64(&d.lastRecv, now)
}

// Steady sends this worker's share of the rate, evenly spaced; each
// message from a random local device to one of its user's conversations,
// the kind drawn by weight. Every AckInterval devices ack; at the churn
// rate a random connected device reconnects.
func (d *chatDriver) Steady(ctx context.Context, conns []*Conn) {
	share := float64(len(d.devs)) / float64(max(1, d.plan.TotalDevices))
	perSec, churnPerSec := d.plan.Rate*share, d.plan.Churn*share
	if len(d.devs) == 0 || perSec <= 0 {
		<-ctx.Done()
		return
	}
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	payload := make([]byte, d.plan.PayloadMax)
	for i := fanoutHeader; i < len(payload); i++ {
		payload[i] = byte(rng.Uint32())
	}
	frame := make([]byte, 0, 256+base64.StdEncoding.EncodedLen(len(payload)))
	start := time.Now()
	d.firstSend.CompareAndSwap(0, start.UnixNano())
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	lastAck := start
	next, nextChurn := 0, 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			el := now.Sub(start).Seconds()
			for due := int(el * perSec); next < due; next++ {
				i := rng.IntN(len(d.devs))
				if !conns[i].Synced() {
					d.skipped.Add(1)
					continue
				}
				conv, ok := d.pick(rng, i)
				if !ok {
					d.skipped.Add(1)
					continue
				}
				n := d.plan.PayloadMin + rng.IntN(d.plan.PayloadMax-d.plan.PayloadMin+1)
				ts := time.Now().UnixNano()
				no := d.msgNo.Add(1)
				putTimingHeader(payload, timingHeader{sent: ts, sender: d.devs[i].Index, msgNo: no})
				frame = appendSendHead(frame[:0], no, ts, d.plan.Conversations[conv])
				frame = append(frame, `","ciphertext":"`...)
				frame = base64.StdEncoding.AppendEncode(frame, payload[:n])
				frame = append(frame, `"}`...)
				d.outstanding[i].Add(1)
				if conns[i].SendText(frame) != nil {
					d.outstanding[i].Add(-1)
					d.sendErrs.Add(1)
					continue
				}
				d.sent.Add(1)
				d.perKind[d.layout.kinds[conv]].sent.Add(1)
			}
			if d.plan.Storm > 0 && d.stormStart.Load() == 0 && now.Sub(start) >= d.plan.Storm {
				d.storm(conns, now)
			}
			if st := d.stormStart.Load(); st != 0 && d.stormEnd.Load() == 0 && d.resynced.Load() >= d.reconnects.Load() {
				d.stormEnd.Store(now.UnixNano())
			}
			for due := int(el * churnPerSec); nextChurn < due; nextChurn++ {
				i := rng.IntN(len(d.devs))
				d.redialed[i].Store(true)
				if conns[i].Reconnect() {
					d.reconnects.Add(1)
				} else {
					d.redialed[i].Store(false)
				}
			}
			d.socialTick(rng, conns, el, share, frame)
			if d.plan.AckInterval > 0 && now.Sub(lastAck) >= d.plan.AckInterval {
				lastAck = now
				d.ack(conns, frame[:0])
			}
		}
	}
}

// storm reconnects every connected device of this worker at once: the
// reconnect storm a node sees when its sockets all drop together.
func (d *chatDriver) storm(conns []*Conn, now time.Time) {
	d.stormStart.Store(now.UnixNano())
	n := int64(0)
	for i := range conns {
		if !conns[i].Synced() {
			continue
		}
		d.redialed[i].Store(true)
		if conns[i].Reconnect() {
			d.reconnects.Add(1)
			n++
		} else {
			d.redialed[i].Store(false)
		}
	}
	d.stormDevices.Store(n)
}

// pick draws a conversation of local device i's user: the kind by weight
// among the kinds the user has, then one of that kind uniformly.
func (d *chatDriver) pick(rng *rand.Rand, i int) (int32, bool) {
	var of [numKinds][]int32
	for _, c := range d.layout.ofUser[d.devs[i].User] {
		if d.plan.Conversations[c] != "" {
			k := d.layout.kinds[c]
			of[k] = append(of[k], c)
		}
	}
	total := 0.0
	for k := range numKinds {
		if len(of[k]) > 0 {
			total += d.plan.Weights[k]
		}
	}
	if total == 0 {
		return 0, false
	}
	x := rng.Float64() * total
	for k := range numKinds {
		if len(of[k]) == 0 || d.plan.Weights[k] == 0 {
			continue
		}
		if x -= d.plan.Weights[k]; x < 0 || k == numKinds-1 {
			return of[k][rng.IntN(len(of[k]))], true
		}
	}
	for k := numKinds - 1; k >= 0; k-- { // rounding left x just above 0
		if len(of[k]) > 0 && d.plan.Weights[k] > 0 {
			return of[k][rng.IntN(len(of[k]))], true
		}
	}
	return 0, false
}

// ack sends, per device and conversation, the highest seq below which
// nothing is missing, when it moved.
func (d *chatDriver) ack(conns []*Conn, buf []byte) {
	for i := range d.rx {
		if !conns[i].Synced() {
			continue
		}
		for k, c := range d.layout.ofUser[d.devs[i].User] {
			rx := &d.rx[i][k]
			top := rx.contig.Load()
			if top <= rx.acked {
				continue
			}
			rx.acked = top
			buf = wire.AppendAck(buf[:0], d.plan.Conversations[c], top)
			if conns[i].SendText(buf) == nil {
				d.acks.Add(1)
			}
		}
	}
}

func (d *chatDriver) Progress() map[string]int64 {
	var received, dups int64
	for k := range numKinds {
		received += d.perKind[k].received.Load()
		dups += d.perKind[k].dups.Load()
	}
	return map[string]int64{"sent": d.sent.Load(), "sent_ok": d.sentOK.Load(), "send_errors": d.sendErrs.Load(),
		"abandoned": d.abandoned.Load(), "received": received, "dups": dups, "reconnects": d.reconnects.Load(), "resynced": d.resynced.Load()}
}

// Drained: every send has its answer, or lost it to a reconnect, and every
// reconnected device is synced again.
func (chatScenario) Drained(p map[string]int64) bool {
	return p["sent_ok"]+p["send_errors"]+p["abandoned"] >= p["sent"] && p["resynced"] >= p["reconnects"]
}

// chatReport is one worker's Report.
type chatReport struct {
	Sent, SentOK, SendErrors, Skipped, Foreign, OwnEcho, Replayed int64
	Abandoned, Reconnects, Resynced, Acks                         int64
	FirstSend, LastRecv                                           int64
	StormDevices, StormStart, StormEnd                            int64
	KindSent, KindReceived, KindDups                              [numKinds]int64
	Delivery, Commit                                              [numKinds]HistogramData
	ConvSentOK, ConvMaxSeq                                        []int64
	Social                                                        socialReport
}

func (d *chatDriver) Report() json.RawMessage {
	r := chatReport{Sent: d.sent.Load(), SentOK: d.sentOK.Load(), SendErrors: d.sendErrs.Load(), Skipped: d.skipped.Load(),
		Foreign: d.foreign.Load(), OwnEcho: d.ownEcho.Load(), Replayed: d.replayed.Load(),
		Abandoned: d.abandoned.Load(), Reconnects: d.reconnects.Load(), Resynced: d.resynced.Load(), Acks: d.acks.Load(),
		FirstSend: d.firstSend.Load(), LastRecv: d.lastRecv.Load(), Social: d.socialReport(),
		StormDevices: d.stormDevices.Load(), StormStart: d.stormStart.Load(), StormEnd: d.stormEnd.Load()}
	for k := range numKinds {
		r.KindSent[k], r.KindReceived[k], r.KindDups[k] = d.perKind[k].sent.Load(), d.perKind[k].received.Load(), d.perKind[k].dups.Load()
		r.Delivery[k], r.Commit[k] = d.perKind[k].delivery.Data(), d.perKind[k].commit.Data()
	}
	r.ConvSentOK = make([]int64, len(d.convSentOK))
	r.ConvMaxSeq = make([]int64, len(d.convMaxSeq))
	for c := range d.convSentOK {
		r.ConvSentOK[c], r.ConvMaxSeq[c] = d.convSentOK[c].Load(), d.convMaxSeq[c].Load()
	}
	b, _ := json.Marshal(r)
	return b
}

// ChatSummary is the chat part of the summary; Kinds breaks it down by
// conversation kind. Stored is what the conversations' sequences reached;
// every stored message must reach every other device of its conversation:
// Expected = Σ stored × (devices-1), Lost = Expected - Delivered.
type ChatSummary struct {
	Users            int               `json:"users"`
	DirectPerUser    int               `json:"direct_per_user"`
	SmallGroupUsers  int               `json:"small_group_users"`
	LargeGroupUsers  int               `json:"large_group_users"`
	RateTarget       float64           `json:"rate_target_per_second"`
	ChurnTarget      float64           `json:"churn_target_per_second"`
	StormDevices     int64             `json:"storm_devices,omitempty"` // devices the reconnect storm (--storm) reconnected at once
	StormSeconds     float64           `json:"storm_seconds,omitempty"` // from the storm until every one had resynced (its last worker)
	PayloadMin       int               `json:"payload_min_bytes"`
	PayloadMax       int               `json:"payload_max_bytes"`
	Payload          string            `json:"payload"`
	Sent             int64             `json:"sent"`
	SentOK           int64             `json:"sent_ok"`
	SendErrors       int64             `json:"send_errors"`
	Skipped          int64             `json:"skipped_not_connected"`
	Abandoned        int64             `json:"abandoned_by_reconnect"`
	Reconnects       int64             `json:"reconnects"`
	Resynced         int64             `json:"resynced"`
	Replayed         int64             `json:"replayed_after_reconnect"`
	Stored           int64             `json:"stored"`
	Expected         int64             `json:"expected_deliveries"`
	Delivered        int64             `json:"delivered"`
	Duplicates       int64             `json:"duplicates"`
	Lost             int64             `json:"lost"`
	OwnEcho          int64             `json:"own_echo"`
	Foreign          int64             `json:"unexpected_frames"`
	Acks             int64             `json:"acks"`
	ZeroLoss         bool              `json:"zero_loss"`
	SendsPerSecond   float64           `json:"sends_per_second"`
	DeliveriesPerSec float64           `json:"deliveries_per_second"`
	DeliveryLatency  Latency           `json:"delivery_latency"` // send to receive, every kind
	CommitLatency    Latency           `json:"commit_latency"`   // send to sent, every kind
	Kinds            []ChatKindSummary `json:"kinds"`
	Social           *SocialSummary    `json:"social,omitempty"` // --watch, --typing-rate (chat_social.go)
}

// ChatKindSummary is one conversation kind of the mix.
type ChatKindSummary struct {
	Kind            string  `json:"kind"`
	Conversations   int     `json:"conversations"`
	AvgDevices      float64 `json:"avg_devices"`
	Weight          float64 `json:"weight"`
	Sent            int64   `json:"sent"`
	Stored          int64   `json:"stored"`
	Expected        int64   `json:"expected_deliveries"`
	Delivered       int64   `json:"delivered"`
	Duplicates      int64   `json:"duplicates"`
	DeliveryLatency Latency `json:"delivery_latency"`
	CommitLatency   Latency `json:"commit_latency"`
}

func (chatScenario) Merge(rawPlan json.RawMessage, reports []json.RawMessage, s *Summary) error {
	var plan chatPlan
	if err := json.Unmarshal(rawPlan, &plan); err != nil {
		return err
	}
	l := newChatLayout(plan.Users, plan.DMs, plan.Small, plan.Large)
	f := &ChatSummary{Users: plan.Users, DirectPerUser: 2 * plan.DMs, SmallGroupUsers: plan.Small, LargeGroupUsers: plan.Large,
		RateTarget: plan.Rate, ChurnTarget: plan.Churn, PayloadMin: plan.PayloadMin, PayloadMax: plan.PayloadMax,
		Payload: "one shared ciphertext per send: random bytes, sizes uniform in [payload_min, payload_max], behind a 16-byte timing header; not HPKE-sealed"}
	var delivery, commit [numKinds]HistogramData
	var all, allCommit HistogramData
	var sentOK, maxSeq []int64
	var first, last int64
	kinds := make([]ChatKindSummary, numKinds)
	for _, raw := range reports {
		var r chatReport
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		f.Sent += r.Sent
		f.SentOK += r.SentOK
		f.SendErrors += r.SendErrors
		f.Skipped += r.Skipped
		f.Foreign += r.Foreign
		f.OwnEcho += r.OwnEcho
		f.Replayed += r.Replayed
		f.Abandoned += r.Abandoned
		f.Reconnects += r.Reconnects
		f.StormDevices += r.StormDevices
		if r.StormStart > 0 && r.StormEnd > 0 {
			f.StormSeconds = max(f.StormSeconds, float64(r.StormEnd-r.StormStart)/1e9)
		}
		f.Resynced += r.Resynced
		if plan.Social.Watch > 0 || plan.Social.TypingRate > 0 {
			mergeSocial(plan.Social, &f.Social, r.Social)
		}
		f.Acks += r.Acks
		for k := range numKinds {
			kinds[k].Sent += r.KindSent[k]
			kinds[k].Delivered += r.KindReceived[k]
			kinds[k].Duplicates += r.KindDups[k]
			delivery[k].Merge(r.Delivery[k])
			commit[k].Merge(r.Commit[k])
			all.Merge(r.Delivery[k])
			allCommit.Merge(r.Commit[k])
		}
		if r.FirstSend > 0 && (first == 0 || r.FirstSend < first) {
			first = r.FirstSend
		}
		last = max(last, r.LastRecv)
		sentOK, maxSeq = addInts(sentOK, r.ConvSentOK), maxInts(maxSeq, r.ConvMaxSeq)
	}
	sentOK, maxSeq = addInts(sentOK, make([]int64, len(l.kinds))), maxInts(maxSeq, make([]int64, len(l.kinds)))
	var devices [numKinds]int
	for c, k := range l.kinds {
		if plan.Conversations[c] == "" {
			continue
		}
		stored := max(maxSeq[c], sentOK[c])
		kinds[k].Conversations++
		devices[k] += plan.ConvDevices[c]
		kinds[k].Stored += stored
		kinds[k].Expected += stored * int64(plan.ConvDevices[c]-1)
	}
	for k := range numKinds {
		ks := &kinds[k]
		ks.Kind, ks.Weight = kindNames[k], plan.Weights[k]
		if ks.Conversations > 0 {
			ks.AvgDevices = round3(float64(devices[k]) / float64(ks.Conversations))
		}
		ks.DeliveryLatency, ks.CommitLatency = delivery[k].Latency(), commit[k].Latency()
		f.Stored += ks.Stored
		f.Expected += ks.Expected
		f.Delivered += ks.Delivered
		f.Duplicates += ks.Duplicates
	}
	f.Kinds = kinds
	f.Lost = f.Expected - f.Delivered
	f.ZeroLoss = f.Lost == 0 && f.Duplicates == 0 && f.OwnEcho == 0 && f.SendErrors == 0 && f.Foreign == 0 && f.Resynced == f.Reconnects
	if last > first && first > 0 {
		secs := float64(last-first) / 1e9
		f.DeliveriesPerSec = round3(float64(f.Delivered) / secs)
		f.SendsPerSecond = round3(float64(f.SentOK) / secs)
	}
	f.DeliveryLatency, f.CommitLatency = all.Latency(), allCommit.Latency()
	s.Chat = f
	return nil
}
