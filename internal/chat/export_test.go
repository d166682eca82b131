package chat

// HookArgon2 makes every argon2id hash run as around(hash) until the
// returned func is called, so that a test can count and hold the hashes in
// flight. Not for parallel tests: it swaps a package variable.
func HookArgon2(around func(hash func())) (restore func()) {
	old := argon2IDKey
	argon2IDKey = func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
		var key []byte
		around(func() { key = old(password, salt, time, memory, threads, keyLen) })
		return key
	}
	return func() { argon2IDKey = old }
}
