package redisbus_test

import (
	"testing"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/bustest"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestConformance(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Backend {
		srv := testenv.Redis(t)
		return bustest.Backend{
			Open:    func(t *testing.T) switchboard.Bus { return open(t, srv.URL()) },
			Restart: func(t *testing.T) { srv.Restart(t) },
		}
	})
}
