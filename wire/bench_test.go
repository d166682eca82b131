package wire

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

// BenchmarkAppendMessage encodes one message frame with a 200-byte
// ciphertext: the per-delivery encode. The Message is filled in the loop,
// as a node fills it from each delivery.
func BenchmarkAppendMessage(b *testing.B) {
	conv, user, dev := "cnv_abcdefghijklmnopqrstuvwxyz", "usr_abcdefghijklmnopqrstuvwxyz", "dev_abcdefghijklmnopqrstuvwxyz"
	ts, ct := time.Now(), make([]byte, 200)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], &Message{Conversation: conv, Seq: 123456, Sender: Sender{UserID: user, DeviceID: dev}, TS: Time(ts), Ciphertext: ct})
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAppendTime(b *testing.B) {
	buf := make([]byte, 0, 64)
	now := time.Now()
	for b.Loop() {
		buf = AppendTime(buf[:0], now)
	}
}

// sendFrame3x200 is a send frame with 3 per-device 200-byte ciphertexts.
func sendFrame3x200() []byte {
	ct := base64.StdEncoding.EncodeToString(make([]byte, 200))
	raw, _ := json.Marshal(map[string]any{"type": TypeSend, "id": "m-123", "conversation": "cnv_abcdefghijklmnopqrstuvwxyz",
		"ciphertexts": map[string]string{"dev_1": ct, "dev_2": ct, "dev_3": ct}})
	return raw
}

// BenchmarkDecodeSendFrame decodes one send frame with 3 per-device 200-byte
// ciphertexts with DecodeClientFrame, the hand decoder for the socket's frames.
func BenchmarkDecodeSendFrame(b *testing.B) {
	raw := sendFrame3x200()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		var head Head
		var f ClientFrame
		if headErr, err := DecodeClientFrame(raw, &head, &f); headErr != nil || err != nil {
			b.Fatal("decode failed")
		}
	}
}

// BenchmarkDecodeSendFrameEncodingJSON is the same decode with encoding/json
// (referenceDecode: the head, then the frame), which DecodeClientFrame replaces.
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
