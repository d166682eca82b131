package wire

import (
	"encoding/json"
	"testing"
	"time"
)

// TestAppendEventIsEncodingJSON: the hand encoder of the event frame
// writes what encoding/json writes for EventFrame, and its event decodes
// back into the Event it was made of.
func TestAppendEventIsEncodingJSON(t *testing.T) {
	ts := time.Date(2026, 3, 1, 12, 0, 0, 123_000_000, time.UTC)
	for _, ev := range []Event{
		{Kind: EventMemberAdded, UserID: "usr_a", By: "usr_b"},
		{Kind: EventRoleChanged, UserID: "usr_a", By: "usr_b", Role: RoleAdmin},
		{Kind: EventCallMissed, UserID: "usr_\"q\"", By: "usr_<b>", CallID: "call_1"},
	} {
		body, _ := json.Marshal(ev)
		want, err := json.Marshal(EventFrame{Type: TypeEvent, Conversation: "cnv_\u2028x", Seq: 42, TS: Time(ts), Event: body})
		if err != nil {
			t.Fatal(err)
		}
		got := AppendEvent(nil, "cnv_\u2028x", 42, ts, body)
		if string(got) != string(want) {
			t.Errorf("AppendEvent = %s\nencoding/json = %s", got, want)
		}
		var f ServerFrame
		if err := json.Unmarshal(got, &f); err != nil || f.Type != TypeEvent || f.Event == nil || *f.Event != ev {
			t.Errorf("decoded %+v (%v), want event %+v", f, err, ev)
		}
	}
}
