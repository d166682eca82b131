-- Ids are compared byte by byte (COLLATE "C") whatever the database's
-- locale, so that every ORDER BY id agrees with Go's and SQLite's order.

CREATE TABLE users (
	id            text COLLATE "C" PRIMARY KEY,
	username      text NOT NULL UNIQUE,
	password_hash text NOT NULL,
	created_at    timestamptz NOT NULL
);

CREATE TABLE devices (
	id          text COLLATE "C" PRIMARY KEY,
	user_id     text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name        text NOT NULL,
	kem         text NOT NULL,
	public_key  bytea NOT NULL,
	signing_key bytea NOT NULL,
	created_at  timestamptz NOT NULL,
	revoked_at  timestamptz
);

-- ActiveDevices: by user, in the order it returns them.
CREATE INDEX devices_user ON devices (user_id, created_at, id);

CREATE TABLE sessions (
	token_hash bytea PRIMARY KEY,
	user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	device_id  text COLLATE "C" NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);

-- RevokeDevice deletes a device's sessions.
CREATE INDEX sessions_device ON sessions (device_id);

CREATE TABLE conversations (
	id         text COLLATE "C" PRIMARY KEY,
	kind       text NOT NULL CHECK (kind IN ('direct', 'group')),
	title      text NOT NULL DEFAULT '',
	created_by text COLLATE "C" NOT NULL REFERENCES users (id),
	created_at timestamptz NOT NULL,
	head_seq   bigint NOT NULL DEFAULT 0
);

CREATE TABLE members (
	conversation_id text COLLATE "C" NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id         text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	joined_at       timestamptz NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
);

-- Conversations(user): the other way round.
CREATE INDEX members_user ON members (user_id, conversation_id);

CREATE TABLE messages (
	conversation_id   text COLLATE "C" NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	seq               bigint NOT NULL,
	sender_user_id    text COLLATE "C" NOT NULL REFERENCES users (id),
	sender_device_id  text COLLATE "C" NOT NULL REFERENCES devices (id),
	-- NULL when the sender gave none: such messages are never deduplicated.
	client_id         text,
	sent_at           timestamptz NOT NULL,
	-- Set when every recipient gets the same ciphertext.
	shared_ciphertext bytea,
	PRIMARY KEY (conversation_id, seq),
	UNIQUE (sender_device_id, client_id)
);

-- One row per recipient device. The key starts with the device so that a
-- device's backlog in a conversation is one index range. Nothing deletes
-- messages yet; whatever will must first add an index on
-- (conversation_id, seq), or each cascade scans this table.
CREATE TABLE message_ciphertexts (
	conversation_id text COLLATE "C" NOT NULL,
	seq             bigint NOT NULL,
	device_id       text COLLATE "C" NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	-- NULL means the message's shared_ciphertext.
	ciphertext      bytea,
	PRIMARY KEY (device_id, conversation_id, seq),
	FOREIGN KEY (conversation_id, seq) REFERENCES messages (conversation_id, seq) ON DELETE CASCADE
);

CREATE TABLE cursors (
	device_id       text COLLATE "C" NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	conversation_id text COLLATE "C" NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	acked_seq       bigint NOT NULL,
	PRIMARY KEY (device_id, conversation_id)
);
