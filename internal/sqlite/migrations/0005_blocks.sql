-- A user's blocks: a blocked user cannot start a direct conversation with
-- the blocker, add them to a group or message them in a direct one.
CREATE TABLE blocks (
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE, -- who blocks
	blocked_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, blocked_id)
) STRICT, WITHOUT ROWID;

-- Blockers(user, among): who of among blocks this user.
CREATE INDEX blocks_blocked ON blocks (blocked_id, user_id);
