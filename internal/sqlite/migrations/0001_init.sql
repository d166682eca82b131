-- Times are INTEGER microseconds since the Unix epoch, UTC: they sort
-- correctly, compare cheaply and keep PostgreSQL's precision.

CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	username      TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
	id          TEXT PRIMARY KEY,
	user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name        TEXT NOT NULL,
	kem         TEXT NOT NULL,
	public_key  BLOB NOT NULL,
	signing_key BLOB NOT NULL,
	created_at  INTEGER NOT NULL,
	revoked_at  INTEGER
) STRICT;

-- ActiveDevices: by user, in the order it returns them.
CREATE INDEX devices_user ON devices (user_id, created_at, id);

CREATE TABLE sessions (
	token_hash BLOB PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

-- RevokeDevice deletes a device's sessions.
CREATE INDEX sessions_device ON sessions (device_id);

CREATE TABLE conversations (
	id         TEXT PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
	title      TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL REFERENCES users (id),
	created_at INTEGER NOT NULL,
	head_seq   INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE members (
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	joined_at       INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
) STRICT;

-- Conversations(user): the other way round.
CREATE INDEX members_user ON members (user_id, conversation_id);

CREATE TABLE messages (
	conversation_id   TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	seq               INTEGER NOT NULL,
	sender_user_id    TEXT NOT NULL REFERENCES users (id),
	sender_device_id  TEXT NOT NULL REFERENCES devices (id),
	-- NULL when the sender gave none: such messages are never deduplicated.
	client_id         TEXT,
	sent_at           INTEGER NOT NULL,
	-- Set when every recipient gets the same ciphertext.
	shared_ciphertext BLOB,
	PRIMARY KEY (conversation_id, seq),
	UNIQUE (sender_device_id, client_id)
) STRICT;

-- One row per recipient device. The key starts with the device so that a
-- device's backlog in a conversation is one index range. Nothing deletes
-- messages yet; whatever will must first add an index on
-- (conversation_id, seq), or each cascade scans this table.
CREATE TABLE message_ciphertexts (
	conversation_id TEXT NOT NULL,
	seq             INTEGER NOT NULL,
	device_id       TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	-- NULL means the message's shared_ciphertext.
	ciphertext      BLOB,
	PRIMARY KEY (device_id, conversation_id, seq),
	FOREIGN KEY (conversation_id, seq) REFERENCES messages (conversation_id, seq) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE cursors (
	device_id       TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	acked_seq       INTEGER NOT NULL,
	PRIMARY KEY (device_id, conversation_id)
) STRICT, WITHOUT ROWID;
