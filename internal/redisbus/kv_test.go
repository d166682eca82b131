package redisbus_test

import (
	"testing"

	"github.com/switchboard-chat/switchboard/internal/calls"
	"github.com/switchboard-chat/switchboard/internal/calls/kvtest"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestKV runs the call records' KV suite on a real Redis; each case gets a
// Redis of its own, so keys never meet.
func TestKV(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) calls.KV { return open(t, testenv.Redis(t).URL()) })
}
