-- Retention: PurgeBefore and PurgeAcked delete messages and ciphertexts,
-- so the indexes that deleting needs.
--
-- Like every migration this runs in one transaction, so CREATE INDEX (not
-- CONCURRENTLY) holds off writes to both tables while it builds: on a large
-- database, build the two indexes CONCURRENTLY by hand first (and check
-- that they are valid: IF NOT EXISTS would keep a failed one), and this
-- changes nothing.

-- PurgeBefore: the oldest messages first, without reading the newer ones.
CREATE INDEX IF NOT EXISTS messages_sent_at ON messages (sent_at);

-- Messages are now deleted, which cascades to their ciphertexts by
-- (conversation_id, seq). The key of message_ciphertexts starts with the
-- device, so without this index every deleted message would scan the whole
-- table (what 0001 warned about). PurgeAcked also uses it to see whether a
-- message has any ciphertext left.
CREATE INDEX IF NOT EXISTS message_ciphertexts_message ON message_ciphertexts (conversation_id, seq);
