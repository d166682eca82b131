package inmem_test

import (
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/presencetest"
)

func TestPresenceConformance(t *testing.T) {
	presencetest.Run(t, func(t *testing.T, ttl time.Duration) presencetest.Backend {
		p := inmem.NewPresence(ttl, nil)
		return presencetest.Backend{Node: func(t *testing.T, name string) switchboard.Presence { return p.Node(name) }}
	})
}
