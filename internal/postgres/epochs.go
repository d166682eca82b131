package postgres

// Recipient epochs are decided in internal/sqlcore (epochs.go, decide.go);
// here are the statements that write them.

const (
	insertEpochs = `INSERT INTO shared_epochs (conversation_id, from_seq)
		SELECT * FROM unnest($1::text[], $2::bigint[])`
	insertRecipients = `INSERT INTO shared_recipients (conversation_id, from_seq, device_id)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])`
)

// epochRows are the shared_epochs and shared_recipients rows to insert.
type epochRows struct {
	convs     []string
	froms     []int64
	recipient struct {
		convs, devices []string
		froms          []int64
	}
}

func (r *epochRows) add(convID string, from int64, devices []string) {
	r.convs, r.froms = append(r.convs, convID), append(r.froms, from)
	for _, d := range devices {
		r.recipient.convs = append(r.recipient.convs, convID)
		r.recipient.froms = append(r.recipient.froms, from)
		r.recipient.devices = append(r.recipient.devices, d)
	}
}

func (r *epochRows) len() int { return len(r.convs) }

func (r *epochRows) epochArgs() []any { return []any{r.convs, r.froms} }

func (r *epochRows) recipientArgs() []any {
	return []any{r.recipient.convs, r.recipient.froms, r.recipient.devices}
}
