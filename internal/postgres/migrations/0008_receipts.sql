-- Read receipts (issue 19): each member's read mark per conversation, and
-- whether the user shows read receipts (off: their reads are not shown to
-- others, and they see nobody's). Delivered marks are the devices' cursors.
CREATE TABLE reads (
	conversation_id text COLLATE "C" NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id         text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	read_seq        bigint NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
);

ALTER TABLE users ADD COLUMN read_receipts boolean NOT NULL DEFAULT true;
