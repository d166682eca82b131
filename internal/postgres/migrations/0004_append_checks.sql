-- The foreign keys of messages and message_ciphertexts go: each was a
-- trigger run per inserted row (3 per message, 2 per ciphertext row), about
-- 40 % of a pairwise send's server time at full load (docs/benchmarks.md,
-- Durable sends). What they checked, appends now check once per batch
-- (append.go): the conversation exists (its row is locked anyway, for its
-- head seq) and every sender and recipient device exists, the sender's
-- owned by the sender user.
--
-- What they cascaded: no code deletes a user, device or conversation
-- (revoking a device marks it), and the purges delete a message's
-- ciphertexts themselves (retention.go). An operator deleting a user,
-- device or conversation by hand must first delete its messages and
-- ciphertexts (docs/runbook.md, Data).
--
-- Dropping a constraint takes a brief exclusive lock on both tables: this
-- migration waits for appends in flight and holds new ones for as long as
-- that takes, no scan of the tables.

ALTER TABLE message_ciphertexts
	DROP CONSTRAINT message_ciphertexts_conversation_id_seq_fkey,
	DROP CONSTRAINT message_ciphertexts_device_id_fkey;

ALTER TABLE messages
	DROP CONSTRAINT messages_conversation_id_fkey,
	DROP CONSTRAINT messages_sender_user_id_fkey,
	DROP CONSTRAINT messages_sender_device_id_fkey;
