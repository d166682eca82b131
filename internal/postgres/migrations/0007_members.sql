-- Membership changes (issue 19): admins, and members who join or leave
-- after the creation, each at the seq of the event that says so.
--
-- members keeps the current members only (every query that reads it stays
-- as it was); whoever left is in former_members, with the seq of the
-- event that removed them, so that their devices still sync up to that
-- event and their history stops there.
ALTER TABLE members ADD COLUMN admin boolean NOT NULL DEFAULT false;
ALTER TABLE members ADD COLUMN joined_seq bigint NOT NULL DEFAULT 0;

-- A group's creator is its admin.
UPDATE members m SET admin = true FROM conversations c
	WHERE c.id = m.conversation_id AND c.kind = 'group' AND c.created_by = m.user_id;

CREATE TABLE former_members (
	user_id         text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	conversation_id text COLLATE "C" NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	left_seq        bigint NOT NULL,
	PRIMARY KEY (user_id, conversation_id)
);

-- An event: its JSON as clients get it. NULL for a message.
ALTER TABLE messages ADD COLUMN event bytea;
