package calls_test

import (
	"testing"

	"github.com/switchboard-chat/switchboard/internal/calls"
	"github.com/switchboard-chat/switchboard/internal/calls/kvtest"
)

func TestMemoryKV(t *testing.T) {
	kvtest.Run(t, func(*testing.T) calls.KV { return &calls.MemoryKV{} })
}
