package switchboard

// Membership changes are events in the conversation's sequence: the chat
// service appends an event (Message.Event) with a MemberChange, and the
// store applies the change in the transaction that gives the event its
// seq. So a member's devices are recipients of exactly the messages after
// their addition and up to their removal, and everyone sees the change
// between the same two messages.

// MemberOp is what a MemberChange does.
type MemberOp uint8

// Member operations.
const (
	// MemberAdd makes UserID a member (not an admin), from the event's
	// seq on; a former member joins again.
	MemberAdd MemberOp = iota + 1
	// MemberRemove ends UserID's membership at the event's seq (removed
	// by an admin or left: the event says which); they stay a former
	// member (Membership.LeftSeq), whose devices get the event itself.
	MemberRemove
	// MemberSetAdmin makes UserID an admin (Admin) or a plain member.
	MemberSetAdmin
)

// MemberChange is a change of one member, applied with an event.
type MemberChange struct {
	Op     MemberOp
	UserID string
	Admin  bool // for MemberSetAdmin
}

// Membership is a user's membership of a conversation.
type Membership struct {
	Admin     bool
	JoinedSeq int64 // the seq of the event that added them; 0 for a member from the creation
	LeftSeq   int64 // the seq of the event that removed them; 0 while a member
}
