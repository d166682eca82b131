package redisbus_test

import (
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/presencetest"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestPresenceConformance(t *testing.T) {
	presencetest.Run(t, func(t *testing.T, ttl time.Duration) presencetest.Backend {
		srv := testenv.Redis(t)
		return presencetest.Backend{Node: func(t *testing.T, name string) switchboard.Presence {
			return open(t, srv.URL()).Presence(name, ttl)
		}}
	})
}
