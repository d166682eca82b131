-- Usernames are unique and found regardless of case (issue 18): Alice and
-- alice are one account, and a login as ALICE is hers. The user keeps the
-- form it signed up with; the stores compare lower(username), which is
-- Unicode simple case folding for the ASCII letters a username may hold
-- (chat/validate.go).
--
-- Accounts that already differ only in case keep working: the oldest keeps
-- its name and each later one is renamed <name>-<6 characters of its id>
-- (docs/runbook.md says how to find them), since the index below cannot
-- hold both.

UPDATE users SET username = username || '-' || substr(id, 5, 6)
WHERE EXISTS (SELECT 1 FROM users AS older
	WHERE lower(older.username) = lower(users.username)
	AND (older.created_at, older.id) < (users.created_at, users.id));

CREATE UNIQUE INDEX users_username_folded ON users (lower(username));
