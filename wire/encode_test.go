package wire

import (
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// typeOnly is a frame that has only its type.
type typeOnly struct {
	Type string `json:"type"`
}

// TestAppendFramesAreEncodingJSONs holds each hand encoder to what
// encoding/json writes for the frame's struct.
func TestAppendFramesAreEncodingJSONs(t *testing.T) {
	ts := Time(time.UnixMilli(1700000000120).In(time.FixedZone("x", 3600)))
	seq := int64(-3)
	for _, tc := range []struct {
		name string
		got  []byte
		want any
	}{
		{"a message frame", AppendMessage(nil, &Message{Conversation: "cnv_a", Seq: 42, Sender: Sender{"usr_a", "dev_a"}, TS: ts, Ciphertext: []byte{0, 1, 2, 250}}),
			Message{Type: TypeMessage, Conversation: "cnv_a", Seq: 42, Sender: Sender{"usr_a", "dev_a"}, TS: ts, Ciphertext: []byte{0, 1, 2, 250}}},
		{"a message frame with an empty ciphertext and odd ids", AppendMessage(nil, &Message{Conversation: "a\"b<é\u2028", Sender: Sender{"&", ">"}, TS: ts}),
			Message{Type: TypeMessage, Conversation: "a\"b<é\u2028", Sender: Sender{"&", ">"}, TS: ts, Ciphertext: []byte{}}},
		{"a sent frame", AppendSent(nil, &Sent{ID: "m-1", Conversation: "cnv_a", Seq: 1 << 40, TS: ts}),
			Sent{Type: TypeSent, ID: "m-1", Conversation: "cnv_a", Seq: 1 << 40, TS: ts}},
		{"a sent frame with an empty id", AppendSent(nil, &Sent{Conversation: "cnv_a", TS: ts}), Sent{Type: TypeSent, Conversation: "cnv_a", TS: ts}},
		{"a sent frame with an id to escape", AppendSent(nil, &Sent{ID: "a\"b<é\u2028", TS: ts}), Sent{Type: TypeSent, ID: "a\"b<é\u2028", TS: ts}},
		{"the synced frame", AppendSynced(nil), typeOnly{TypeSynced}},
		{"the pong frame", AppendPong(nil), typeOnly{TypePong}},
		{"a devices_changed frame", AppendDevicesChanged(nil, "usr_<a>"), DevicesChanged{Type: TypeDevicesChanged, UserID: "usr_<a>"}},
		{"an ack frame", AppendAck(nil, "cnv_a", -3), ClientFrame{Type: TypeAck, Conversation: "cnv_a", Seq: &seq}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if string(tc.got) != string(want) {
				t.Fatalf("got  %s\nwant %s", tc.got, want)
			}
		})
	}
}

func TestAppendMessageIsTheProtocolsFrame(t *testing.T) {
	m := &Message{Conversation: "cnv_a", Seq: 42, Sender: Sender{UserID: "usr_a", DeviceID: "dev_a"},
		TS: Time(time.UnixMilli(1700000000120).UTC()), Ciphertext: []byte{0, 1, 2, 250}}
	var got map[string]any
	if err := json.Unmarshal(AppendMessage(nil, m), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "message", "conversation": "cnv_a", "seq": float64(42),
		"sender": map[string]any{"user_id": "usr_a", "device_id": "dev_a"},
		"ts":     "2023-11-14T22:13:20.120Z", "ciphertext": base64.StdEncoding.EncodeToString(m.Ciphertext)}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("frame %s\nwant  %s", gb, wb)
	}
	if q := AppendString(nil, "a\"b<"); string(q) != `"a\"b\u003c"` {
		t.Fatalf("AppendString escaped to %s", q)
	}
}

func TestAppendTimeIsTheLayout(t *testing.T) {
	times := []time.Time{
		time.Unix(0, 0), time.UnixMilli(1), time.Date(2000, 2, 29, 23, 59, 59, 999e6, time.UTC),
		time.Date(2026, 12, 31, 0, 0, 0, 0, time.FixedZone("x", 5*3600)), time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), {},
		time.Date(2100, 3, 1, 12, 0, 0, 123456789, time.Local),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		times = append(times, time.UnixMilli(r.Int64N(253402300800000)).Add(time.Duration(r.IntN(1e6))))
	}
	for _, tm := range times {
		want := tm.UTC().Format(TimeLayout)
		if got := string(AppendTime(nil, tm)); got != want {
			t.Fatalf("AppendTime(%v) = %q, want %q", tm, got, want)
		}
	}
}
