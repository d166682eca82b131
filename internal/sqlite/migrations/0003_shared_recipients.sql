-- Recipient epochs: a message with a shared ciphertext no longer writes a
-- row per recipient device. Its recipients are those of its conversation's
-- epoch: the latest epoch whose from_seq is at or below the message's seq.
-- A shared message whose recipient set (with its sender: see append.go)
-- hashes like the conversation's current epoch's writes only its messages
-- row; another set starts a new epoch at its seq, with one row per device.
--
-- Shared messages stored before this migration keep their per-device rows
-- in message_ciphertexts and are read through them: every epoch starts
-- after them.

CREATE TABLE shared_epochs (
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	from_seq        INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, from_seq)
) STRICT, WITHOUT ROWID;

-- The key starts with the device, so that a device's epochs in a
-- conversation are one index range (Messages starts from it).
CREATE TABLE shared_recipients (
	conversation_id TEXT NOT NULL,
	from_seq        INTEGER NOT NULL,
	device_id       TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	PRIMARY KEY (device_id, conversation_id, from_seq),
	FOREIGN KEY (conversation_id, from_seq) REFERENCES shared_epochs (conversation_id, from_seq) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- The cascade from a deleted epoch, and PurgeAcked's walk of an epoch's devices.
CREATE INDEX shared_recipients_epoch ON shared_recipients (conversation_id, from_seq);

-- The current epoch: the SHA-256 of its sorted device ids, each followed by
-- a 0x00 byte (which no id holds), NULL before the first; and its from_seq,
-- 0 before the first.
ALTER TABLE conversations ADD COLUMN shared_set_hash BLOB;
ALTER TABLE conversations ADD COLUMN shared_from_seq INTEGER NOT NULL DEFAULT 0;
