package sqlcore

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/switchboard-chat/switchboard"
)

// Both stores append a batch in three steps, in one transaction:
//
//  1. read: the head seq and current epoch of each conversation of the
//     batch (locking them), the batch's client ids already stored and, for
//     a store whose foreign keys do not check devices, their owners
//     (Snapshot; Keys and Devices say what to read);
//  2. decide (Decide, pure): each message's fate, a duplicate of a stored
//     message, a duplicate of an earlier message of the same batch, an
//     unknown conversation (that caller alone gets ErrNotFound), an
//     unknown device (ErrUnknownDevice), or new, with the next seq of its
//     conversation in batch order; and for a new shared message, whether
//     its recipient set starts an epoch (epochs.go): the batch's shared
//     messages to one conversation with one set share an epoch, and a
//     change of set mid-batch starts another;
//  3. write the Plan: the new heads, the epochs and their recipients, the
//     messages and their ciphertext rows; commit; then set each job's
//     result from the Plan.

// ClientKey identifies a message for idempotency: its sender device and
// client id.
type ClientKey struct{ Device, Client string }

// Head is a conversation's state as a batch moves it: its head seq and
// current epoch (the hash of its set, nil before the first, and its first
// seq).
type Head struct {
	Seq     int64
	SetHash []byte
	From    int64
}

// Snapshot is what the read step found.
type Snapshot struct {
	// Heads holds each conversation of the batch that exists.
	Heads map[string]Head
	// Stored holds the batch's client ids that are already stored, with
	// their messages (without ciphertexts).
	Stored map[ClientKey]*switchboard.Message
	// Owners maps each device of Devices to its user; nil when the store's
	// foreign keys check the devices instead.
	Owners map[string]string
}

// Plan is what the write step writes, and each job's result once it is
// committed.
type Plan struct {
	// Results are the jobs' results, by job. An Err fails that job alone,
	// which wrote nothing.
	Results []Result
	// Heads are the conversations that moved, in the order of their first
	// new message in the batch, with their new state.
	Heads []ConvHead
	// Messages are the new messages, in batch order.
	Messages []NewMessage
	// Epochs are the new recipient epochs, in batch order.
	Epochs []Epoch
}

// Result is a job's result.
type Result struct {
	Out AppendOut
	Err error
}

// ConvHead is a conversation's new state.
type ConvHead struct {
	ID string
	Head
}

// NewMessage is a message to insert: the job at index Job of the batch,
// with its seq and its message_ciphertexts rows (device to ciphertext; a
// nil ciphertext is NULL, "read the shared one").
type NewMessage struct {
	Job  int
	Seq  int64
	Rows map[string][]byte
}

// Epoch is a new recipient epoch: its conversation, first seq and devices.
type Epoch struct {
	Conv    string
	From    int64
	Devices []string
}

// ErrUnknownDevice fails an append that names a device that does not
// exist, or a sender device that is not the sender user's. The chat
// service checks a send's devices against the members' first, so only a
// device registered or a member added since trips it.
var ErrUnknownDevice = errors.New("unknown device")

// Keys returns what the read step looks up for a batch: its distinct
// conversations, and the client keys of its messages that have a client id.
func Keys(batch []*AppendJob) (convs []string, keys []ClientKey) {
	var seen map[string]bool // not for a batch of one (a sequential sender's)
	if len(batch) > 1 {
		seen = make(map[string]bool)
	}
	for _, j := range batch {
		m := j.In.M
		if !seen[m.ConversationID] {
			if seen != nil {
				seen[m.ConversationID] = true
			}
			convs = append(convs, m.ConversationID)
		}
		if m.ClientID != "" {
			keys = append(keys, ClientKey{m.SenderDeviceID, m.ClientID})
		}
	}
	return convs, keys
}

// Devices returns the distinct devices of a batch whose owners the read
// step reads for a store whose foreign keys do not check them: each
// sender's and, for per-device ciphertexts, every recipient's. A shared
// message's recipients are its epoch's, which the foreign key of
// shared_recipients checked when the epoch began (a set equal to the
// current epoch's is that epoch's devices).
func Devices(batch []*AppendJob) []string {
	var ids []string
	named := make(map[string]bool)
	add := func(d string) {
		if !named[d] {
			named[d] = true
			ids = append(ids, d)
		}
	}
	for _, j := range batch {
		m := j.In.M
		add(m.SenderDeviceID)
		if m.Shared == nil {
			for d := range m.Ciphertexts {
				add(d)
			}
		}
	}
	return ids
}

// Decide is the decide step: the fate of each message of the batch, given
// what the read step found. It only reads its arguments.
func Decide(batch []*AppendJob, snap Snapshot) Plan {
	p := Plan{Results: make([]Result, len(batch)), Messages: make([]NewMessage, 0, len(batch))}
	var heads headIndex         // p.Heads by conversation
	var first map[ClientKey]int // the job that holds a client id in the batch
	if len(batch) > 1 {
		first = make(map[ClientKey]int, len(batch))
	}
	for i, j := range batch {
		m, r := j.In.M, &p.Results[i]
		k := ClientKey{m.SenderDeviceID, m.ClientID}
		if m.ClientID != "" {
			if d := snap.Stored[k]; d != nil {
				r.Out.Dup = d
				continue
			}
			// A failed first holds nothing: this one is tried as if alone.
			if f, ok := first[k]; ok && p.Results[f].Err == nil {
				r.Out.Dup = storedAs(batch[f].In, p.Results[f].Out)
				continue
			}
			if first != nil {
				first[k] = i
			}
		}
		hi := heads.find(p.Heads, m.ConversationID)
		if hi < 0 {
			h, ok := snap.Heads[m.ConversationID]
			if !ok {
				r.Err = switchboard.ErrNotFound
				continue
			}
			if snap.Owners != nil {
				if r.Err = checkDevices(m, snap.Owners); r.Err != nil {
					continue
				}
			}
			p.Heads = append(p.Heads, ConvHead{ID: m.ConversationID, Head: h})
			hi = len(p.Heads) - 1
			heads.add(p.Heads, hi)
		} else if snap.Owners != nil {
			if r.Err = checkDevices(m, snap.Owners); r.Err != nil {
				continue
			}
		}
		h := &p.Heads[hi].Head
		h.Seq++
		r.Out.Seq = h.Seq
		rows := m.Ciphertexts
		if j.In.Set != nil {
			if !bytes.Equal(h.SetHash, j.In.SetHash) {
				h.SetHash, h.From = j.In.SetHash, h.Seq
				p.Epochs = append(p.Epochs, Epoch{Conv: m.ConversationID, From: h.Seq, Devices: j.In.Set})
			}
			rows = selfRow(m)
		}
		p.Messages = append(p.Messages, NewMessage{Job: i, Seq: h.Seq, Rows: rows})
	}
	return p
}

// headIndex finds a conversation in a plan's heads: by looking through
// them while they are few (no map for a batch of one conversation), by a
// map once they are many.
type headIndex struct{ byID map[string]int }

// manyHeads is where a look through the heads gets slower than a map.
const manyHeads = 8

func (x *headIndex) find(heads []ConvHead, id string) int {
	if x.byID != nil {
		if i, ok := x.byID[id]; ok {
			return i
		}
		return -1
	}
	for i := range heads {
		if heads[i].ID == id {
			return i
		}
	}
	return -1
}

// add indexes heads[i], just appended.
func (x *headIndex) add(heads []ConvHead, i int) {
	switch {
	case x.byID != nil:
		x.byID[heads[i].ID] = i
	case len(heads) > manyHeads:
		x.byID = make(map[string]int, 2*len(heads))
		for k := range heads {
			x.byID[heads[k].ID] = k
		}
	}
}

// storedAs is the message of in as a later duplicate sees it: what
// AppendMessage returns for a stored one, without its ciphertexts.
func storedAs(in AppendIn, out AppendOut) *switchboard.Message {
	if out.Dup != nil {
		return out.Dup
	}
	m := in.M
	return &switchboard.Message{ConversationID: m.ConversationID, Seq: out.Seq, SenderUserID: m.SenderUserID,
		SenderDeviceID: m.SenderDeviceID, ClientID: m.ClientID, SentAt: in.SentAt, Shared: m.Shared}
}

// checkDevices returns an error wrapping ErrUnknownDevice unless every
// device of m to check (Devices) is in owners and its sender device is
// its sender user's.
func checkDevices(m *switchboard.Message, owners map[string]string) error {
	if owner, ok := owners[m.SenderDeviceID]; !ok || owner != m.SenderUserID {
		return fmt.Errorf("%w: sender device %q of user %q", ErrUnknownDevice, m.SenderDeviceID, m.SenderUserID)
	}
	if m.Shared != nil {
		return nil
	}
	for d := range m.Ciphertexts {
		if _, ok := owners[d]; !ok {
			return fmt.Errorf("%w: recipient device %q", ErrUnknownDevice, d)
		}
	}
	return nil
}
