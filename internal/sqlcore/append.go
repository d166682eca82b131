package sqlcore

import (
	"fmt"
	"time"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/groupcommit"
)

// AppendIn is one AppendMessage call in a store's queue.
type AppendIn struct {
	M      *switchboard.Message
	SentAt time.Time // M.SentAt, or now, in UTC
	// A shared message's epoch set and its hash (RecipientSet), worked
	// out before it queues; nil for a message with per-device ciphertexts.
	Set     []string
	SetHash []byte
}

// AppendOut is its result: the new message's seq, or the message already
// stored under its client id.
type AppendOut struct {
	Seq int64
	Dup *switchboard.Message
}

// AppendJob is an append in a batch.
type AppendJob = groupcommit.Job[AppendIn, AppendOut]

// AppendQueue is a store's queue (or one lane) of appends.
type AppendQueue = groupcommit.Queue[AppendIn, AppendOut]

// Batch limits: messages, and rows (a message and its ciphertexts), so that
// one batch of messages to big groups neither holds a writer for long nor
// takes more than a few MB of parameters.
const (
	MaxBatch     = 256
	MaxBatchRows = 8192
)

// NewAppendQueue returns a queue of appends whose batches commit calls.
func NewAppendQueue(commit func(batch []*AppendJob)) *AppendQueue {
	return groupcommit.New(groupcommit.Config[AppendIn]{
		MaxBatch:  MaxBatch,
		MaxWeight: MaxBatchRows,
		Weight:    weight,
	}, commit)
}

// NewAppendIn prepares m to queue: its time, and for a shared message its
// recipient set, worked out here rather than in the committer, which holds
// the writer (SQLite) or the conversations' locks (PostgreSQL).
func NewAppendIn(m *switchboard.Message) AppendIn {
	in := AppendIn{M: m, SentAt: m.SentAt.UTC().Truncate(time.Microsecond)}
	if m.SentAt.IsZero() {
		in.SentAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	if m.Shared != nil {
		in.Set, in.SetHash = RecipientSet(m)
	}
	return in
}

// Appended is AppendMessage's result for in, once its batch committed;
// store names the store in an error.
func Appended(store string, in AppendIn, out AppendOut, err error) (*switchboard.Message, bool, error) {
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("%s: append message to %s: %w", store, in.M.ConversationID, err)
	case out.Dup != nil:
		return out.Dup, true, nil
	}
	m := in.M
	m.Seq, m.SentAt = out.Seq, in.SentAt
	return m, false, nil
}

// Observer is the commit observer of a store (Store.OnAppended), which a
// store embeds; its committers call Notify after each batch.
type Observer struct {
	fn func(*switchboard.Message)
}

// OnAppended implements switchboard.Store's commit observer.
func (o *Observer) OnAppended(fn func(m *switchboard.Message)) { o.fn = fn }

// Notify hands the batch's new messages to the observer, in batch order,
// which is seq order per conversation: the batch (or, after a failure,
// each of its messages alone) was appended in that order.
func (o *Observer) Notify(batch []*AppendJob) {
	if o.fn == nil {
		return
	}
	for _, j := range batch {
		if j.Err != nil || j.Out.Dup != nil {
			continue
		}
		m := *j.In.M
		m.Seq, m.SentAt = j.Out.Seq, j.In.SentAt
		o.fn(&m)
	}
}
