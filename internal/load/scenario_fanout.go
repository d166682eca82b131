package load

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/wire"
)

// fanoutScenario: G groups of M users (DevicesPerUser devices each). In the
// steady phase every sending device sends SendRate messages a second to its
// group as one shared ciphertext (the sender-key shape), or with Pairwise
// one ciphertext per recipient device (the same bytes for each: the node
// cannot tell, and stores and forwards each copy); every other device of
// the group must receive each message exactly once. The ciphertext starts
// with the send time, so the receiver measures send-to-receive latency.
type fanoutScenario struct{}

// fanoutPlan is what the workers get.
type fanoutPlan struct {
	Conversations []string      `json:"conversations"`
	GroupDevices  []int         `json:"group_devices"` // devices per group
	GroupFirst    []int         `json:"group_first"`   // global index of each group's first device
	GroupSize     int           `json:"group_size"`    // users per group
	Senders       int           `json:"senders"`       // sending devices per group
	Rate          float64       `json:"rate"`          // messages per second per sender
	PayloadBytes  int           `json:"payload_bytes"`
	AckInterval   time.Duration `json:"ack_interval"`
	// GroupDeviceIDs lists each group's device ids, with Pairwise only.
	GroupDeviceIDs [][]string `json:"group_device_ids,omitempty"`
}

func (fanoutScenario) Check(cfg *Config) error {
	if cfg.Groups <= 0 || cfg.GroupSize <= 0 {
		return errors.New("fanout: --groups and --group-size must be positive")
	}
	dpu := cfg.DevicesPerUser
	if dpu <= 0 {
		dpu = 10
	}
	want := cfg.Groups * cfg.GroupSize * dpu
	if cfg.Conns == 0 {
		cfg.Conns = want
	}
	if cfg.Conns != want {
		return fmt.Errorf("fanout: --conns %d, but %d groups × %d users × %d devices is %d", cfg.Conns, cfg.Groups, cfg.GroupSize, dpu, want)
	}
	if cfg.PayloadBytes > 0 && cfg.PayloadBytes < fanoutHeader {
		return fmt.Errorf("fanout: --payload must be at least %d bytes", fanoutHeader)
	}
	return nil
}

func (fanoutScenario) Plan(ctx context.Context, env *PlanEnv) (json.RawMessage, error) {
	cfg := env.Config
	p := fanoutPlan{
		Conversations: make([]string, cfg.Groups), GroupDevices: make([]int, cfg.Groups), GroupFirst: make([]int, cfg.Groups),
		GroupSize: cfg.GroupSize, Senders: cfg.Senders, Rate: cfg.SendRate, PayloadBytes: cfg.PayloadBytes, AckInterval: cfg.AckInterval,
	}
	if cfg.Pairwise {
		p.GroupDeviceIDs = make([][]string, cfg.Groups)
	}
	owner := make([]*Device, cfg.Groups)
	for i := range p.GroupFirst {
		p.GroupFirst[i] = -1
	}
	for i := range env.Devices {
		d := &env.Devices[i]
		g := d.User / cfg.GroupSize
		if p.GroupFirst[g] < 0 {
			p.GroupFirst[g], owner[g] = d.Index, d
		}
		p.GroupDevices[g]++
		if cfg.Pairwise {
			p.GroupDeviceIDs[g] = append(p.GroupDeviceIDs[g], d.DeviceID)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, cfg.HTTPConcurrency)
	for g := range cfg.Groups {
		if owner[g] == nil {
			continue
		}
		var members []string
		for _, u := range env.Users[g*cfg.GroupSize : (g+1)*cfg.GroupSize] {
			if u.ID != "" {
				members = append(members, u.ID)
			}
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s := env.Client.Resume(client.Session{UserID: owner[g].UserID, DeviceID: owner[g].DeviceID, Token: owner[g].Token})
			id, err := retry(ctx, func() (string, error) {
				return s.CreateConversation(ctx, client.KindGroup, members, fmt.Sprintf("sbload group %d", g))
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("creating group %d: %w", g, err)
			}
			p.Conversations[g] = id
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	fmt.Fprintf(env.Log, "fanout: %d groups of %d users (%d devices each)\n", cfg.Groups, cfg.GroupSize, cfg.GroupSize*cfg.DevicesPerUser)
	return json.Marshal(p)
}

// fanoutHeader is the part of the ciphertext the receiver reads: send time
// (unix ns), sender's global device index, message number.
const fanoutHeader = 16

type fanoutDriver struct {
	plan  fanoutPlan
	devs  []Device
	group []int32 // local device -> group
	convs map[string]int32
	rx    []fanoutRx

	delivery, commit Histogram
	// counters
	sent, sentOK, sendErrs, skipped, received, dups, ownEcho, foreign, acks atomic.Int64
	firstSend, lastRecv                                                     atomic.Int64
	perGroup                                                                []groupCount
}

// fanoutRx is one device's receive state, touched only by its poller.
type fanoutRx struct {
	seen   []uint64     // bit s: seq s arrived (or is the device's own send)
	contig atomic.Int64 // every seq <= contig has arrived
	acked  int64        // last ack sent (Steady goroutine only)
}

type groupCount struct {
	sentOK, received, maxSeq atomic.Int64
}

func (fanoutScenario) NewDriver(raw json.RawMessage, devs []Device) (Driver, error) {
	d := &fanoutDriver{devs: devs, convs: map[string]int32{}}
	if err := json.Unmarshal(raw, &d.plan); err != nil {
		return nil, err
	}
	d.group = make([]int32, len(devs))
	d.rx = make([]fanoutRx, len(devs))
	d.perGroup = make([]groupCount, len(d.plan.Conversations))
	for i, dev := range devs {
		d.group[i] = int32(dev.User / d.plan.GroupSize)
	}
	for g, id := range d.plan.Conversations {
		d.convs[id] = int32(g)
	}
	return d, nil
}

func (d *fanoutDriver) OnSynced(*Conn) {}

func (d *fanoutDriver) OnFrame(c *Conn, typ string, m []byte) {
	switch typ {
	case wire.TypeMessage:
		d.onMessage(c, m)
	case wire.TypeSent:
		d.sentOK.Add(1)
		g := d.group[c.Index]
		d.perGroup[g].sentOK.Add(1)
		if seq := intField(m, "seq"); seq > 0 {
			d.rx[c.Index].mark(seq)
			maxInt64(&d.perGroup[g].maxSeq, seq)
		}
		if t, ok := sentTime(m); ok {
			d.commit.Record(time.Duration(time.Now().UnixNano() - t))
		}
	case wire.TypeError:
		if len(rawStringField(m, "id")) > 0 {
			d.sendErrs.Add(1)
		}
	}
}

func (d *fanoutDriver) onMessage(c *Conn, m []byte) {
	now := time.Now().UnixNano()
	g, ok := d.convs[string(rawStringField(m, "conversation"))]
	if !ok || g != d.group[c.Index] {
		d.foreign.Add(1)
		return
	}
	seq := intField(m, "seq")
	h, ok := readTimingHeader(rawStringField(m, "ciphertext"))
	if seq <= 0 || !ok {
		d.foreign.Add(1)
		return
	}
	if h.sender == d.devs[c.Index].Index {
		d.ownEcho.Add(1)
	}
	if !d.rx[c.Index].mark(seq) {
		d.dups.Add(1)
		return
	}
	d.received.Add(1)
	d.perGroup[g].received.Add(1)
	maxInt64(&d.perGroup[g].maxSeq, seq)
	d.delivery.Record(time.Duration(now - h.sent))
	maxInt64(&d.lastRecv, now)
}

// timingHeader is what a load ciphertext starts with (fanoutHeader bytes,
// little-endian): the send time in unix nanoseconds, the sender's global
// device index and the sender's message number.
type timingHeader struct {
	sent   int64
	sender int
	msgNo  uint32
}

func putTimingHeader(p []byte, h timingHeader) {
	binary.LittleEndian.PutUint64(p[0:], uint64(h.sent))
	binary.LittleEndian.PutUint32(p[8:], uint32(h.sender))
	binary.LittleEndian.PutUint32(p[12:], h.msgNo)
}

// readTimingHeader decodes the header from the start of a base64
// ciphertext (24 characters hold 18 bytes).
func readTimingHeader(ct []byte) (timingHeader, bool) {
	var hdr [18]byte
	if len(ct) < 24 {
		return timingHeader{}, false
	}
	if _, err := base64.StdEncoding.Decode(hdr[:], ct[:24]); err != nil {
		return timingHeader{}, false
	}
	return timingHeader{sent: int64(binary.LittleEndian.Uint64(hdr[:])), sender: int(binary.LittleEndian.Uint32(hdr[8:])),
		msgNo: binary.LittleEndian.Uint32(hdr[12:])}, true
}

// mark records seq as arrived; false if it was already there.
func (rx *fanoutRx) mark(seq int64) bool {
	w, bit := int(seq/64), uint64(1)<<(seq%64)
	for len(rx.seen) <= w {
		rx.seen = append(rx.seen, 0)
	}
	if rx.seen[w]&bit != 0 {
		return false
	}
	rx.seen[w] |= bit
	c := rx.contig.Load()
	for {
		n := c + 1
		if int(n/64) >= len(rx.seen) || rx.seen[n/64]&(1<<(n%64)) == 0 {
			break
		}
		c = n
	}
	rx.contig.Store(c)
	return true
}

// Steady sends from this worker's senders, evenly staggered: message j of
// the phase goes from sender j mod S at start + j/(S·rate).
func (d *fanoutDriver) Steady(ctx context.Context, conns []*Conn) {
	var senders []int
	for i, dev := range d.devs {
		rank := dev.Index - d.plan.GroupFirst[d.group[i]]
		if d.plan.Senders <= 0 || rank < d.plan.Senders {
			senders = append(senders, i)
		}
	}
	if len(senders) == 0 || d.plan.Rate <= 0 {
		<-ctx.Done()
		return
	}
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	payload := make([]byte, d.plan.PayloadBytes)
	for i := fanoutHeader; i < len(payload); i++ {
		payload[i] = byte(rng.Uint32())
	}
	frame := make([]byte, 0, 256+base64.StdEncoding.EncodedLen(len(payload)))
	msgNo := make([]uint32, len(senders))
	perSec := float64(len(senders)) * d.plan.Rate
	start := time.Now()
	d.firstSend.CompareAndSwap(0, start.UnixNano())
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	lastAck := start
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			due := int(now.Sub(start).Seconds() * perSec)
			for ; next < due; next++ {
				k := next % len(senders)
				i := senders[k]
				c := conns[i]
				if !c.Synced() {
					d.skipped.Add(1)
					continue
				}
				msgNo[k]++
				ts := time.Now().UnixNano()
				putTimingHeader(payload, timingHeader{sent: ts, sender: d.devs[i].Index, msgNo: msgNo[k]})
				frame = appendSendHead(frame[:0], msgNo[k], ts, d.plan.Conversations[d.group[i]])
				if d.plan.GroupDeviceIDs == nil {
					frame = append(frame, `","ciphertext":"`...)
					frame = base64.StdEncoding.AppendEncode(frame, payload)
					frame = append(frame, `"}`...)
				} else {
					frame = d.appendPairwise(append(frame, `","ciphertexts":{`...), i, payload)
					frame = append(frame, `}}`...)
				}
				if c.SendText(frame) != nil {
					d.sendErrs.Add(1)
					continue
				}
				d.sent.Add(1)
			}
			if d.plan.AckInterval > 0 && now.Sub(lastAck) >= d.plan.AckInterval {
				lastAck = now
				d.ack(conns, frame[:0])
			}
		}
	}
}

// appendSendHead starts a send frame up to the conversation id's closing
// quote. The id is the message number and the send time in base 36: the
// sent answer carries it back, for the commit latency (readSentID).
func appendSendHead(frame []byte, msgNo uint32, ts int64, conv string) []byte {
	frame = append(frame, wire.SendHead...)
	frame = strconv.AppendUint(frame, uint64(msgNo), 36)
	frame = append(frame, '-')
	frame = strconv.AppendInt(frame, ts, 36)
	frame = append(frame, wire.SendConversation...)
	return append(frame, conv...)
}

// sentTime reads the send time back from a sent frame's id.
func sentTime(m []byte) (int64, bool) {
	if _, ts, ok := bytes.Cut(rawStringField(m, "id"), []byte("-")); ok {
		if t, err := strconv.ParseInt(string(ts), 36, 64); err == nil {
			return t, true
		}
	}
	return 0, false
}

// appendPairwise appends the ciphertexts object's members: payload for
// every device of local device i's group but i itself.
func (d *fanoutDriver) appendPairwise(frame []byte, i int, payload []byte) []byte {
	first := true
	for _, id := range d.plan.GroupDeviceIDs[d.group[i]] {
		if id == d.devs[i].DeviceID {
			continue
		}
		if !first {
			frame = append(frame, ',')
		}
		first = false
		frame = append(frame, '"')
		frame = append(frame, id...)
		frame = append(frame, `":"`...)
		frame = base64.StdEncoding.AppendEncode(frame, payload)
		frame = append(frame, '"')
	}
	return frame
}

// ack tells the server, per device, the highest seq below which nothing is
// missing, when it moved.
func (d *fanoutDriver) ack(conns []*Conn, buf []byte) {
	for i := range d.rx {
		c := d.rx[i].contig.Load()
		if c <= d.rx[i].acked || !conns[i].Synced() {
			continue
		}
		d.rx[i].acked = c
		buf = wire.AppendAck(buf[:0], d.plan.Conversations[d.group[i]], c)
		if conns[i].SendText(buf) == nil {
			d.acks.Add(1)
		}
	}
}

func (d *fanoutDriver) Progress() map[string]int64 {
	return map[string]int64{"sent": d.sent.Load(), "sent_ok": d.sentOK.Load(), "send_errors": d.sendErrs.Load(),
		"received": d.received.Load(), "dups": d.dups.Load()}
}

// Drained: every send has its answer (sent or error). Deliveries of the
// last messages may still be in flight; the caller also waits for the
// counters to stay still for two seconds.
func (fanoutScenario) Drained(p map[string]int64) bool {
	return p["sent_ok"]+p["send_errors"] >= p["sent"]
}

// fanoutReport is one worker's Report.
type fanoutReport struct {
	Sent, SentOK, SendErrors, Skipped, Received, Duplicates, OwnEcho, Foreign, Acks int64
	FirstSend, LastRecv                                                             int64
	GroupSentOK, GroupReceived, GroupMaxSeq                                         []int64
	Delivery, Commit                                                                HistogramData
}

func (d *fanoutDriver) Report() json.RawMessage {
	r := fanoutReport{
		Sent: d.sent.Load(), SentOK: d.sentOK.Load(), SendErrors: d.sendErrs.Load(), Skipped: d.skipped.Load(),
		Received: d.received.Load(), Duplicates: d.dups.Load(), OwnEcho: d.ownEcho.Load(), Foreign: d.foreign.Load(), Acks: d.acks.Load(),
		FirstSend: d.firstSend.Load(), LastRecv: d.lastRecv.Load(),
		Delivery: d.delivery.Data(), Commit: d.commit.Data(),
	}
	for i := range d.perGroup {
		r.GroupSentOK = append(r.GroupSentOK, d.perGroup[i].sentOK.Load())
		r.GroupReceived = append(r.GroupReceived, d.perGroup[i].received.Load())
		r.GroupMaxSeq = append(r.GroupMaxSeq, d.perGroup[i].maxSeq.Load())
	}
	b, _ := json.Marshal(r)
	return b
}

// FanoutSummary is the fanout part of the summary. Stored is the number of
// messages the groups' sequences reached; every stored message must reach
// every other device of its group once: Expected = Σ stored × (devices-1),
// Lost = Expected - Delivered.
type FanoutSummary struct {
	Groups          int     `json:"groups"`
	GroupSize       int     `json:"group_size_users"`
	DevicesPerGroup int     `json:"devices_per_group"`
	SendersPerGroup int     `json:"senders_per_group"`
	RatePerSender   float64 `json:"rate_per_sender"`
	PayloadBytes    int     `json:"payload_bytes"`
	Payload         string  `json:"payload"`

	Sent       int64 `json:"sent"`
	SentOK     int64 `json:"sent_ok"`
	SendErrors int64 `json:"send_errors"`
	Skipped    int64 `json:"skipped_not_connected"`
	Stored     int64 `json:"stored"`
	Expected   int64 `json:"expected_deliveries"`
	Delivered  int64 `json:"delivered"`
	Duplicates int64 `json:"duplicates"`
	Lost       int64 `json:"lost"`
	OwnEcho    int64 `json:"own_echo"`
	Foreign    int64 `json:"unexpected_frames"`
	Acks       int64 `json:"acks"`
	ZeroLoss   bool  `json:"zero_loss"`

	SendsPerSecond      float64 `json:"sends_per_second"`
	DeliveriesPerSecond float64 `json:"deliveries_per_second"`
	DeliveryLatency     Latency `json:"delivery_latency"` // send to receive
	CommitLatency       Latency `json:"commit_latency"`   // send to sent
}

func (fanoutScenario) Merge(rawPlan json.RawMessage, reports []json.RawMessage, s *Summary) error {
	var plan fanoutPlan
	if err := json.Unmarshal(rawPlan, &plan); err != nil {
		return err
	}
	f := &FanoutSummary{Payload: "one shared ciphertext: random bytes of the given size behind a 16-byte timing header; not HPKE-sealed"}
	if plan.GroupDeviceIDs != nil {
		f.Payload = "pairwise: one ciphertext per recipient device, each the same random bytes of the given size behind a 16-byte timing header; not HPKE-sealed"
	}
	var delivery, commit HistogramData
	var groupOK, groupMax []int64
	var first, last int64
	for _, raw := range reports {
		var r fanoutReport
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		f.Sent += r.Sent
		f.SentOK += r.SentOK
		f.SendErrors += r.SendErrors
		f.Skipped += r.Skipped
		f.Delivered += r.Received
		f.Duplicates += r.Duplicates
		f.OwnEcho += r.OwnEcho
		f.Foreign += r.Foreign
		f.Acks += r.Acks
		delivery.Merge(r.Delivery)
		commit.Merge(r.Commit)
		if r.FirstSend > 0 && (first == 0 || r.FirstSend < first) {
			first = r.FirstSend
		}
		last = max(last, r.LastRecv)
		groupOK, groupMax = addInts(groupOK, r.GroupSentOK), maxInts(groupMax, r.GroupMaxSeq)
	}
	f.Groups, f.GroupSize, f.SendersPerGroup = len(plan.Conversations), plan.GroupSize, plan.Senders
	f.RatePerSender, f.PayloadBytes = plan.Rate, plan.PayloadBytes
	f.DevicesPerGroup = plan.GroupSize * s.Params.DevicesPerUser
	if f.SendersPerGroup <= 0 || f.SendersPerGroup > f.DevicesPerGroup {
		f.SendersPerGroup = f.DevicesPerGroup
	}
	groupOK, groupMax = addInts(groupOK, make([]int64, f.Groups)), maxInts(groupMax, make([]int64, f.Groups))
	for g, n := range plan.GroupDevices {
		stored := max(groupMax[g], groupOK[g])
		f.Stored += stored
		f.Expected += stored * int64(n-1)
	}
	f.Lost = f.Expected - f.Delivered
	f.ZeroLoss = f.Lost == 0 && f.Duplicates == 0 && f.OwnEcho == 0 && f.SendErrors == 0
	if last > first && first > 0 {
		secs := float64(last-first) / 1e9
		f.DeliveriesPerSecond = round3(float64(f.Delivered) / secs)
		f.SendsPerSecond = round3(float64(f.SentOK) / secs)
	}
	f.DeliveryLatency, f.CommitLatency = delivery.Latency(), commit.Latency()
	s.Fanout = f
	return nil
}

func addInts(a, b []int64) []int64 {
	for len(a) < len(b) {
		a = append(a, 0)
	}
	for i, v := range b {
		a[i] += v
	}
	return a
}

func maxInts(a, b []int64) []int64 {
	for len(a) < len(b) {
		a = append(a, 0)
	}
	for i, v := range b {
		a[i] = max(a[i], v)
	}
	return a
}

func maxInt64(a *atomic.Int64, v int64) {
	for {
		m := a.Load()
		if v <= m || a.CompareAndSwap(m, v) {
			return
		}
	}
}

// intField finds "key":123 in a flat JSON object.
func intField(m []byte, key string) int64 {
	var pat [40]byte
	p := append(append(append(pat[:0], '"'), key...), '"', ':')
	i := bytes.Index(m, p)
	if i < 0 {
		return 0
	}
	var n int64
	for _, ch := range bytes.TrimLeft(m[i+len(p):], " ") {
		if ch < '0' || ch > '9' {
			break
		}
		n = n*10 + int64(ch-'0')
	}
	return n
}
