package sqlcore

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard"
)

var sentAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// pairwise is a message from dev-a of usr-a with a ciphertext per recipient.
func pairwise(conv, client string, recipients ...string) *AppendJob {
	m := &switchboard.Message{ConversationID: conv, SenderUserID: "usr-a", SenderDeviceID: "dev-a",
		ClientID: client, SentAt: sentAt, Ciphertexts: map[string][]byte{}}
	for _, d := range recipients {
		m.Ciphertexts[d] = []byte("ct-" + d)
	}
	return &AppendJob{In: NewAppendIn(m)}
}

// shared is a message from dev-a with one ciphertext for its recipients.
func shared(conv, client string, recipients ...string) *AppendJob {
	j := pairwise(conv, client, recipients...)
	for d := range j.In.M.Ciphertexts {
		j.In.M.Ciphertexts[d] = nil
	}
	j.In.M.Shared = []byte("shared")
	j.In = NewAppendIn(j.In.M)
	return j
}

func hashOf(devices ...string) []byte {
	m := &switchboard.Message{SenderDeviceID: "dev-a", Ciphertexts: map[string][]byte{}}
	for _, d := range devices {
		m.Ciphertexts[d] = nil
	}
	_, h := RecipientSet(m)
	return h
}

var owners = map[string]string{"dev-a": "usr-a", "dev-b": "usr-b", "dev-c": "usr-c"}

func TestDecide(t *testing.T) {
	stored := &switchboard.Message{ConversationID: "c1", Seq: 3, SenderUserID: "usr-a", SenderDeviceID: "dev-a", ClientID: "old"}
	tests := []struct {
		name  string
		batch []*AppendJob
		snap  Snapshot
		// want, by job: a seq, a duplicate's seq (negative), or an error.
		want      []any
		heads     []ConvHead
		epochs    int
		messages  []int // the jobs stored, in order
		sameAsJob map[int]int
	}{{
		name:     "seqs are consecutive per conversation, from its head",
		batch:    []*AppendJob{pairwise("c1", "m1", "dev-b"), pairwise("c1", "m2", "dev-b"), pairwise("c1", "m3", "dev-b")},
		snap:     Snapshot{Heads: map[string]Head{"c1": {Seq: 7}}},
		want:     []any{int64(8), int64(9), int64(10)},
		heads:    []ConvHead{{ID: "c1", Head: Head{Seq: 10}}},
		messages: []int{0, 1, 2},
	}, {
		name:     "a batch with two conversations numbers each on its own",
		batch:    []*AppendJob{pairwise("c1", "m1", "dev-b"), pairwise("c2", "m2", "dev-c"), pairwise("c1", "m3", "dev-b")},
		snap:     Snapshot{Heads: map[string]Head{"c1": {Seq: 1}, "c2": {Seq: 40}}},
		want:     []any{int64(2), int64(41), int64(3)},
		heads:    []ConvHead{{ID: "c1", Head: Head{Seq: 3}}, {ID: "c2", Head: Head{Seq: 41}}},
		messages: []int{0, 1, 2},
	}, {
		name:  "an idempotent resend of a stored message returns the first result and stores nothing",
		batch: []*AppendJob{pairwise("c1", "old", "dev-b")},
		snap: Snapshot{Heads: map[string]Head{"c1": {Seq: 3}},
			Stored: map[ClientKey]*switchboard.Message{{"dev-a", "old"}: stored}},
		want: []any{stored},
	}, {
		name:      "a resend within the batch returns the first one's result",
		batch:     []*AppendJob{pairwise("c1", "m1", "dev-b"), pairwise("c1", "m1", "dev-b")},
		snap:      Snapshot{Heads: map[string]Head{"c1": {}}},
		want:      []any{int64(1), -int64(1)},
		heads:     []ConvHead{{ID: "c1", Head: Head{Seq: 1}}},
		messages:  []int{0},
		sameAsJob: map[int]int{1: 0},
	}, {
		name:     "messages without a client id are never duplicates",
		batch:    []*AppendJob{pairwise("c1", "", "dev-b"), pairwise("c1", "", "dev-b")},
		snap:     Snapshot{Heads: map[string]Head{"c1": {}}},
		want:     []any{int64(1), int64(2)},
		heads:    []ConvHead{{ID: "c1", Head: Head{Seq: 2}}},
		messages: []int{0, 1},
	}, {
		name:     "an unknown conversation fails its message alone",
		batch:    []*AppendJob{pairwise("gone", "m1", "dev-b"), pairwise("c1", "m2", "dev-b")},
		snap:     Snapshot{Heads: map[string]Head{"c1": {}}},
		want:     []any{switchboard.ErrNotFound, int64(1)},
		heads:    []ConvHead{{ID: "c1", Head: Head{Seq: 1}}},
		messages: []int{1},
	}, {
		name:     "a resend of a message that failed in the batch is tried as if alone",
		batch:    []*AppendJob{pairwise("gone", "m1", "dev-b"), pairwise("c1", "m1", "dev-b")},
		snap:     Snapshot{Heads: map[string]Head{"c1": {}}},
		want:     []any{switchboard.ErrNotFound, int64(1)},
		heads:    []ConvHead{{ID: "c1", Head: Head{Seq: 1}}},
		messages: []int{1},
	}, {
		name:     "a device mismatch (an unknown recipient) is refused, and the conversation's seqs stay consecutive",
		batch:    []*AppendJob{pairwise("c1", "m1", "dev-b"), pairwise("c1", "m2", "dev-x"), pairwise("c1", "m3", "dev-c")},
		snap:     Snapshot{Heads: map[string]Head{"c1": {}}, Owners: owners},
		want:     []any{int64(1), ErrUnknownDevice, int64(2)},
		heads:    []ConvHead{{ID: "c1", Head: Head{Seq: 2}}},
		messages: []int{0, 2},
	}, {
		name: "a sender device that is not the sender user's is refused",
		batch: func() []*AppendJob {
			j := pairwise("c1", "m1", "dev-b")
			j.In.M.SenderDeviceID = "dev-c"
			return []*AppendJob{j}
		}(),
		snap: Snapshot{Heads: map[string]Head{"c1": {}}, Owners: owners},
		want: []any{ErrUnknownDevice},
	}, {
		name:     "without owners the devices are left to the store's foreign keys",
		batch:    []*AppendJob{pairwise("c1", "m1", "dev-x")},
		snap:     Snapshot{Heads: map[string]Head{"c1": {}}},
		want:     []any{int64(1)},
		heads:    []ConvHead{{ID: "c1", Head: Head{Seq: 1}}},
		messages: []int{0},
	}, {
		name:     "shared messages to one set share one epoch, started by the first",
		batch:    []*AppendJob{shared("c1", "m1", "dev-b", "dev-c"), shared("c1", "m2", "dev-b", "dev-c")},
		snap:     Snapshot{Heads: map[string]Head{"c1": {Seq: 4}}},
		want:     []any{int64(5), int64(6)},
		heads:    []ConvHead{{ID: "c1", Head: Head{Seq: 6, SetHash: hashOf("dev-b", "dev-c"), From: 5}}},
		epochs:   1,
		messages: []int{0, 1},
	}, {
		name:     "a shared message to the conversation's current set starts no epoch",
		batch:    []*AppendJob{shared("c1", "m1", "dev-b", "dev-c")},
		snap:     Snapshot{Heads: map[string]Head{"c1": {Seq: 4, SetHash: hashOf("dev-b", "dev-c"), From: 2}}},
		want:     []any{int64(5)},
		heads:    []ConvHead{{ID: "c1", Head: Head{Seq: 5, SetHash: hashOf("dev-b", "dev-c"), From: 2}}},
		messages: []int{0},
	}, {
		name:     "a change of set mid-batch starts another epoch",
		batch:    []*AppendJob{shared("c1", "m1", "dev-b"), shared("c1", "m2", "dev-b", "dev-c")},
		snap:     Snapshot{Heads: map[string]Head{"c1": {}}},
		want:     []any{int64(1), int64(2)},
		heads:    []ConvHead{{ID: "c1", Head: Head{Seq: 2, SetHash: hashOf("dev-b", "dev-c"), From: 2}}},
		epochs:   2,
		messages: []int{0, 1},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Decide(tt.batch, tt.snap)
			for i, want := range tt.want {
				out, err := p.Results[i].Out, p.Results[i].Err
				switch want := want.(type) {
				case int64:
					switch {
					case want > 0 && (err != nil || out.Dup != nil || out.Seq != want):
						t.Errorf("job %d: seq %d, dup %v, err %v; want seq %d", i, out.Seq, out.Dup, err, want)
					case want < 0 && (err != nil || out.Dup == nil || out.Dup.Seq != -want):
						t.Errorf("job %d: seq %d, dup %v, err %v; want a duplicate of seq %d", i, out.Seq, out.Dup, err, -want)
					}
				case *switchboard.Message:
					if err != nil || out.Dup != want {
						t.Errorf("job %d: dup %v, err %v; want the stored %v", i, out.Dup, err, want)
					}
				case error:
					if !errors.Is(err, want) || out != (AppendOut{}) {
						t.Errorf("job %d: out %+v, err %v; want only %v", i, out, err, want)
					}
				}
			}
			if !reflect.DeepEqual(p.Heads, tt.heads) {
				t.Errorf("heads %+v, want %+v", p.Heads, tt.heads)
			}
			if len(p.Epochs) != tt.epochs {
				t.Errorf("%d epochs, want %d", len(p.Epochs), tt.epochs)
			}
			var jobs []int
			for _, nm := range p.Messages {
				jobs = append(jobs, nm.Job)
				if nm.Seq != p.Results[nm.Job].Out.Seq {
					t.Errorf("job %d is written with seq %d, answered with %d", nm.Job, nm.Seq, p.Results[nm.Job].Out.Seq)
				}
			}
			if !reflect.DeepEqual(jobs, tt.messages) {
				t.Errorf("stored jobs %v, want %v", jobs, tt.messages)
			}
			for later, first := range tt.sameAsJob {
				if d := p.Results[later].Out.Dup; d.ClientID != tt.batch[first].In.M.ClientID || !d.SentAt.Equal(sentAt) {
					t.Errorf("job %d's duplicate is %+v, want job %d's message", later, d, first)
				}
			}
		})
	}
}

func TestDecideManyConversations(t *testing.T) {
	t.Run("a batch to more conversations than a look through finds fast numbers each conversation on its own", func(t *testing.T) {
		snap := Snapshot{Heads: map[string]Head{}}
		var batch []*AppendJob
		for round := range 3 {
			for c := range 2 * manyHeads {
				conv := fmt.Sprint("c", c)
				snap.Heads[conv] = Head{Seq: int64(100 * c)}
				batch = append(batch, pairwise(conv, fmt.Sprint("m", round, c), "dev-b"))
			}
		}
		p := Decide(batch, snap)
		for i, r := range p.Results {
			c := i % (2 * manyHeads)
			if want := int64(100*c + i/(2*manyHeads) + 1); r.Err != nil || r.Out.Seq != want {
				t.Fatalf("job %d to c%d: seq %d, err %v; want %d", i, c, r.Out.Seq, r.Err, want)
			}
		}
		if len(p.Heads) != 2*manyHeads {
			t.Fatalf("%d heads, want %d", len(p.Heads), 2*manyHeads)
		}
	})
}

func TestDecideRows(t *testing.T) {
	t.Run("a pairwise message writes a row per recipient", func(t *testing.T) {
		p := Decide([]*AppendJob{pairwise("c1", "m1", "dev-b", "dev-c")}, Snapshot{Heads: map[string]Head{"c1": {}}})
		if got := p.Messages[0].Rows; len(got) != 2 || string(got["dev-b"]) != "ct-dev-b" {
			t.Fatalf("rows %q, want dev-b's and dev-c's ciphertexts", got)
		}
	})
	t.Run("a shared message writes no row, but its sender's when it is a recipient too", func(t *testing.T) {
		p := Decide([]*AppendJob{shared("c1", "m1", "dev-b"), shared("c1", "m2", "dev-a", "dev-b")},
			Snapshot{Heads: map[string]Head{"c1": {}}})
		if got := p.Messages[0].Rows; len(got) != 0 {
			t.Errorf("first rows %q, want none", got)
		}
		if got := p.Messages[1].Rows; len(got) != 1 || got["dev-a"] != nil {
			t.Errorf("second rows %q, want the sender's NULL row", got)
		}
		if e := p.Epochs; len(e) != 1 || !reflect.DeepEqual(e[0].Devices, []string{"dev-a", "dev-b"}) {
			t.Errorf("epochs %+v, want one of dev-a and dev-b, the sender being in both sets", e)
		}
	})
}

func TestDecideLeavesTheSnapshotAlone(t *testing.T) {
	snap := Snapshot{Heads: map[string]Head{"c1": {Seq: 1}}}
	Decide([]*AppendJob{pairwise("c1", "m1", "dev-b")}, snap)
	if snap.Heads["c1"].Seq != 1 {
		t.Fatalf("the snapshot's head moved to %d", snap.Heads["c1"].Seq)
	}
}

func TestLatestAcks(t *testing.T) {
	jobs := []*ackJob{{In: Ack{"d2", "c1", 4}}, {In: Ack{"d1", "c1", 2}}, {In: Ack{"d2", "c1", 9}}, {In: Ack{"d2", "c1", 1}}, {In: Ack{"d1", "c0", 5}}}
	want := []Ack{{"d1", "c0", 5}, {"d1", "c1", 2}, {"d2", "c1", 9}}
	if got := latest(jobs); !reflect.DeepEqual(got, want) {
		t.Fatalf("latest = %v, want the highest of each key in key order %v", got, want)
	}
}
