//go:build race

package load_test

// raceEnabled: the test binary runs under the race detector, so the sbload
// it builds does too (its workers are where the concurrency is).
const raceEnabled = true
