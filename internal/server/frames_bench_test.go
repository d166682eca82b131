package server

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
)

func TestAppendMessageIsTheProtocolsFrame(t *testing.T) {
	d := &sb.Delivery{ConversationID: "cnv_a", Seq: 42, SenderUserID: "usr_a", SenderDeviceID: "dev_a",
		SentAt: time.UnixMilli(1700000000120).UTC(), Ciphertext: []byte{0, 1, 2, 250}}
	var got map[string]any
	if err := json.Unmarshal(appendMessage(nil, d), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "message", "conversation": "cnv_a", "seq": float64(42),
		"sender": map[string]any{"user_id": "usr_a", "device_id": "dev_a"},
		"ts":     "2023-11-14T22:13:20.120Z", "ciphertext": base64.StdEncoding.EncodeToString(d.Ciphertext)}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("frame %s\nwant  %s", gb, wb)
	}
	if q := appendString(nil, "a\"b<"); string(q) != `"a\"b\u003c"` {
		t.Fatalf("appendString escaped to %s", q)
	}
}

// BenchmarkAppendMessage encodes one message frame with a 200-byte ciphertext: the per-delivery encode.
func BenchmarkAppendMessage(b *testing.B) {
	d := &sb.Delivery{ConversationID: "cnv_abcdefghijklmnopqrstuvwxyz", Seq: 123456, SenderUserID: "usr_abcdefghijklmnopqrstuvwxyz",
		SenderDeviceID: "dev_abcdefghijklmnopqrstuvwxyz", SentAt: time.Now(), Ciphertext: make([]byte, 200)}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendMessage(buf[:0], d)
	}
	b.SetBytes(int64(len(buf)))
}

// sendFrame3x200 is a send frame with 3 per-device 200-byte ciphertexts.
func sendFrame3x200() []byte {
	ct := base64.StdEncoding.EncodeToString(make([]byte, 200))
	raw, _ := json.Marshal(map[string]any{"type": "send", "id": "m-123", "conversation": "cnv_abcdefghijklmnopqrstuvwxyz",
		"ciphertexts": map[string]string{"dev_1": ct, "dev_2": ct, "dev_3": ct}})
	return raw
}

// BenchmarkDecodeSendFrame decodes one send frame with 3 per-device 200-byte
// ciphertexts with decodeClientFrame, the hand decoder for the socket's frames.
func BenchmarkDecodeSendFrame(b *testing.B) {
	raw := sendFrame3x200()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		var head frameHead
		var f inFrame
		if headErr, err := decodeClientFrame(raw, &head, &f); headErr != nil || err != nil {
			b.Fatal("decode failed")
		}
	}
}

// BenchmarkDecodeSendFrameEncodingJSON is the same decode with encoding/json
// (referenceDecode: the head, then the frame), which decodeClientFrame replaces.
func BenchmarkDecodeSendFrameEncodingJSON(b *testing.B) {
	raw := sendFrame3x200()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, _, headErr, err := referenceDecode(raw); headErr != nil || err != nil {
			b.Fatal("decode failed")
		}
	}
}

func TestAppendSentIsEncodingJSONsSentFrame(t *testing.T) {
	for _, id := range []string{"m-1", "", "a\"b<é\u2028"} {
		m := &sb.Message{ConversationID: "cnv_a", Seq: 1 << 40, SentAt: time.UnixMilli(1700000000120).In(time.FixedZone("x", 3600))}
		want, _ := json.Marshal(sentFrame{Type: "sent", ID: id, Conversation: m.ConversationID, Seq: m.Seq, TS: jsonTime(m.SentAt)})
		if got := appendSent(nil, id, m); string(got) != string(want) {
			t.Fatalf("appendSent = %s\nwant       %s", got, want)
		}
	}
}
