package testenv

import (
	"fmt"
	"path/filepath"
	"testing"
)

// ClusterConfig says what StartCluster starts; zero values get the
// defaults in brackets.
type ClusterConfig struct {
	Nodes    int      // switchboard nodes [3]
	Bin      string   // the cmd/switchboard binary [built with Build]
	NodeArgs []string // more flags for every node (after the cluster's own)
}

// Cluster is a whole local deployment on loopback: a PostgreSQL primary
// with one streaming replica, Redis, switchboard node processes on both
// (--db, --db-replica, --redis) and NGINX running the shipped
// configuration (deploy/nginx) in front of them. cmd/sbcluster starts one
// for people; tests start the same.
type Cluster struct {
	Postgres   *PostgresPair
	PrimaryURL string // the database on the primary (--db)
	ReplicaURL string // the same database on the replica (--db-replica)
	Redis      *RedisServer
	Nodes      []*Node
	NGINX      *NGINXServer

	t   testing.TB
	cfg ClusterConfig
	dir string
}

// StartCluster starts a cluster for t; everything stops when t ends (for a
// program, when its Program closes).
func StartCluster(t testing.TB, cfg ClusterConfig) *Cluster {
	t.Helper()
	if cfg.Nodes <= 0 {
		cfg.Nodes = 3
	}
	if cfg.Bin == "" {
		cfg.Bin = Build(t, "github.com/switchboard-chat/switchboard/cmd/switchboard")
	}
	c := &Cluster{t: t, cfg: cfg, dir: t.TempDir()}
	c.Postgres, c.PrimaryURL, c.ReplicaURL = PostgresWithReplicaDB(t, "switchboard")
	c.Redis = Redis(t)
	for range cfg.Nodes {
		c.AddNode() // one after the other: the first applies the migrations
	}
	c.NGINX = NGINX(t, c.Upstreams())
	return c
}

// AddNode starts one more node; a caller with NGINX running reloads it
// with the longer Upstreams.
func (c *Cluster) AddNode() *Node {
	i := len(c.Nodes)
	args := append([]string{"--data-dir", filepath.Join(c.dir, fmt.Sprintf("node%d", i)),
		"--db", c.PrimaryURL, "--db-replica", c.ReplicaURL, "--redis", c.Redis.URL(),
		"--shutdown-timeout", "5s"}, c.cfg.NodeArgs...)
	n := StartNode(c.t, c.cfg.Bin, args...)
	c.Nodes = append(c.Nodes, n)
	return n
}

// Upstreams are the nodes' base URLs, NGINX's upstream list.
func (c *Cluster) Upstreams() []string {
	var u []string
	for _, n := range c.Nodes {
		u = append(u, n.URL())
	}
	return u
}

// URL is where clients connect: NGINX.
func (c *Cluster) URL() string { return c.NGINX.URL() }
