package chat

import "github.com/switchboard-chat/switchboard/e2e"

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

// HookSeal makes every server-assisted seal run as around(seal) until the
// returned func is called. Not for parallel tests.
func HookSeal(around func(seal func())) (restore func()) {
	old := sealAssisted
	sealAssisted = func(kem string, pub []byte, c e2e.Context, plaintext []byte) ([]byte, error) {
		var ct []byte
		var err error
		around(func() { ct, err = old(kem, pub, c, plaintext) })
		return ct, err
	}
	return func() { sealAssisted = old }
}
