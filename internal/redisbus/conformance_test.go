package redisbus_test

import (
	"testing"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/bustest"
	"github.com/switchboard-chat/switchboard/internal/redisbus"
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

// TestConformanceCluster runs the suite on a 3-primary Redis Cluster, room.
// topics sharded (SPUBLISH/SSUBSCRIBE) as conv. topics are in a node. One
// cluster serves every case (each opens its own buses).
func TestConformanceCluster(t *testing.T) {
	cluster := testenv.NewRedisCluster(t)
	bustest.Run(t, func(t *testing.T) bustest.Backend {
		return bustest.Backend{
			Open: func(t *testing.T) switchboard.Bus {
				return openCluster(t, cluster, "room.")
			},
			NoRestart: "a cluster is not restarted whole; TestShardFailover kills one shard's primary",
		}
	})
}

func openCluster(t testing.TB, c *testenv.RedisCluster, sharded ...string) *redisbus.Bus {
	t.Helper()
	b, err := redisbus.OpenConfig(ctx, redisbus.Config{Cluster: c.Addrs(), Sharded: sharded})
	if err != nil {
		t.Fatalf("OpenConfig: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
