package sqlcore

import (
	"crypto/sha256"
	"slices"

	"github.com/switchboard-chat/switchboard"
)

// Recipient epochs (migration 0003 of both stores). A shared message
// (Shared != nil) is one messages row: its recipients are the device set of
// its conversation's epoch, the latest shared_epochs row at or below its
// seq, whose devices are shared_recipients rows. An append whose set hashes
// like the conversation's current one (conversations.shared_set_hash)
// writes nothing more; another set starts an epoch at the message's seq.
//
// The set of a message is its recipients plus its sender device: chat.Send
// leaves the sender's device out of the recipients, so without it every
// new sender of a group would start an epoch. Messages never gives a
// device its own shared message through an epoch; a sender that is also a
// recipient (its id among the keys of Ciphertexts) gets a message_ciphertexts
// row of its own, as a pairwise recipient whose ciphertext is NULL ("read
// the shared one"). So a shared message reaches exactly the keys of its
// Ciphertexts.

// RecipientSet returns the sorted device set of a shared message's epoch
// and its hash: SHA-256 of the ids, each followed by a 0x00 byte, which no
// id holds (PostgreSQL text cannot, and both stores hold the same ids).
func RecipientSet(m *switchboard.Message) ([]string, []byte) {
	ids := make([]string, 0, len(m.Ciphertexts)+1)
	for d := range m.Ciphertexts {
		ids = append(ids, d)
	}
	if _, ok := m.Ciphertexts[m.SenderDeviceID]; !ok {
		ids = append(ids, m.SenderDeviceID)
	}
	slices.Sort(ids)
	h := sha256.New()
	buf := make([]byte, 0, 64)
	for _, id := range ids {
		buf = append(append(buf[:0], id...), 0)
		h.Write(buf)
	}
	return ids, h.Sum(nil)
}

// selfRow returns the row of a shared message's sender when it is also one
// of its recipients, whom no epoch serves: a nil ciphertext, stored NULL,
// "read the shared one".
func selfRow(m *switchboard.Message) map[string][]byte {
	if _, ok := m.Ciphertexts[m.SenderDeviceID]; ok {
		return map[string][]byte{m.SenderDeviceID: nil}
	}
	return nil
}

// epochRowShare is how many rows of a new epoch weigh one row of a batch
// (MaxBatchRows). Most shared messages start no epoch and write their
// messages row alone; counting each possible recipient row in full would
// cap a batch of messages to a 500-device group at 16 messages for rows
// they almost never write. A batch of set changes is still bounded, at
// epochRowShare times MaxBatchRows rows of ids.
const epochRowShare = 16

// weight is a message's share of MaxBatchRows.
func weight(in AppendIn) int {
	if in.Set != nil {
		return 1 + len(in.Set)/epochRowShare
	}
	return 1 + len(in.M.Ciphertexts)
}
