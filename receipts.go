package switchboard

import "context"

// Receipt is one member's marks in a conversation: Delivered is the highest
// seq any of the user's devices acked, Read the highest the user read.
type Receipt struct {
	UserID    string
	Delivered int64
	Read      int64
}

// ReceiptStore keeps read marks and who turned read receipts off; Store
// includes it. Delivered marks are not stored apart: they are the devices'
// cursors (Store.Ack).
type ReceiptStore interface {
	// MarkRead moves userID's read mark in the conversation up to seq (never
	// down) and returns the mark after the call and whether it moved.
	MarkRead(ctx context.Context, userID, conversationID string, seq int64) (read int64, moved bool, err error)
	// Receipts returns the marks of every member of the conversation, by
	// user id: Delivered is the highest cursor of the member's devices.
	Receipts(ctx context.Context, conversationID string) ([]Receipt, error)
	// SetReadReceipts turns userID's read receipts on or off.
	SetReadReceipts(ctx context.Context, userID string, on bool) error
	// ReadReceiptsOff returns those of users who turned read receipts off.
	ReadReceiptsOff(ctx context.Context, users []string) ([]string, error)
}
