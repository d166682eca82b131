// Package deptest holds the dependency rules of the module as a test (as
// tailscale's tstest/deptest does): which package may import which, so
// that the layout doc.go describes is checked, not only written down.
//
// It has no code; run it with go test ./internal/deptest.
package deptest
