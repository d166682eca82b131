package inmem_test

import (
	"testing"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/bustest"
	"github.com/switchboard-chat/switchboard/internal/inmem"
)

func TestConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Backend {
		// One process, one bus: every "node" of the suite is the same bus.
		b := &inmem.Bus{}
		t.Cleanup(func() { b.Close() })
		return bustest.Backend{
			Open:      func(*testing.T) switchboard.Bus { return b },
			NoRestart: "an in-process bus has no connection to lose",
		}
	})
}
