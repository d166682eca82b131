-- Read receipts (issue 19): each member's read mark per conversation, and
-- whether the user shows read receipts (off: their reads are not shown to
-- others, and they see nobody's). Delivered marks are the devices' cursors.
CREATE TABLE reads (
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	read_seq        INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
) STRICT, WITHOUT ROWID;

ALTER TABLE users ADD COLUMN read_receipts INTEGER NOT NULL DEFAULT 1;
