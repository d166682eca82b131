-- Retention: PurgeBefore and PurgeAcked delete messages and ciphertexts,
-- so the indexes that deleting needs.

-- PurgeBefore: the oldest messages first, without reading the newer ones.
CREATE INDEX messages_sent_at ON messages (sent_at);

-- Messages are now deleted, which cascades to their ciphertexts by
-- (conversation_id, seq). The key of message_ciphertexts starts with the
-- device, so without this index every deleted message would scan the whole
-- table (what 0001 warned about). PurgeAcked also uses it to see whether a
-- message has any ciphertext left.
CREATE INDEX message_ciphertexts_message ON message_ciphertexts (conversation_id, seq);
