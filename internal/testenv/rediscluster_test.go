package testenv_test

import (
	"testing"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestRedisClusterFailover: the cluster starts with three primaries, and a
// killed primary's replica takes its slots over.
func TestRedisClusterFailover(t *testing.T) {
	c := testenv.NewRedisCluster(t)
	if got := len(c.Primaries()); got != 3 {
		t.Fatalf("%d primaries, want 3", got)
	}
	slot := testenv.Slot("conv.x")
	before := c.PrimaryOf(slot)
	killed := c.KillPrimaryOf(slot)
	c.WaitFailover(t, slot, killed)
	if killed != before {
		t.Fatalf("killed %s, the primary of slot %d was %s", killed, slot, before)
	}
	if after := c.PrimaryOf(slot); after == "" || after == before {
		t.Fatalf("slot %d is on %q after the failover", slot, after)
	}
}
