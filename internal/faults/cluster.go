package faults

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// Cluster is a private deployment: PostgreSQL and Redis from testenv, node
// processes of cmd/switchboard (real processes: kill -9 and SIGTERM are
// real), and NGINX running deploy/nginx/switchboard.conf in front of them.
type Cluster struct {
	DB    string // the database URL
	Redis *testenv.RedisServer
	Nodes []*testenv.Node
	NGINX *testenv.NGINXServer

	t   testing.TB
	bin string
	dir string
}

// StartCluster starts a cluster of n nodes for t; everything stops when t ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, dir: t.TempDir(),
		bin: testenv.Build(t, "github.com/switchboard-chat/switchboard/cmd/switchboard")}
	c.DB, c.Redis = testenv.Postgres(t), testenv.Redis(t)
	for range n {
		c.startNode() // one after the other: the first applies the migrations
	}
	c.NGINX = testenv.NGINX(t, c.upstreams())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log (end):\n%s", c.NGINX.ErrorLog())
		}
	})
	return c
}

func (c *Cluster) startNode() *testenv.Node {
	i := len(c.Nodes)
	n := testenv.StartNode(c.t, c.bin, "--data-dir", filepath.Join(c.dir, fmt.Sprintf("node%d", i)),
		"--db", c.DB, "--redis", c.Redis.URL(),
		"--argon2-time", "1", "--argon2-memory", "64",
		// Busy groups of the suite send faster than one conversation's
		// default limit; the per-device limits stay as deployed.
		"--send-rate-conversation", "0",
		"--shutdown-timeout", "5s", "--log-level", "warn")
	c.Nodes = append(c.Nodes, n)
	return n
}

// AddNode starts one more node and reloads NGINX with the longer upstream
// list.
func (c *Cluster) AddNode() {
	c.startNode()
	c.NGINX.Reload(c.t, c.upstreams())
}

func (c *Cluster) upstreams() []string {
	var u []string
	for _, n := range c.Nodes {
		u = append(u, n.URL())
	}
	return u
}
