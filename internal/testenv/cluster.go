package testenv

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// ClusterConfig says what StartCluster starts; zero values get the
// defaults in brackets.
type ClusterConfig struct {
	Nodes    int      // switchboard nodes [3]
	Bin      string   // the cmd/switchboard binary [built with Build]
	NodeArgs []string // more flags for every node (after the cluster's own)
	// RedisCluster starts a 3-primary Redis Cluster (NewRedisCluster)
	// instead of one Redis, and gives the nodes --redis-cluster instead of
	// --redis: the bus, the limits and the session cache go on it.
	RedisCluster bool
}

// Cluster is a whole local deployment on loopback: a PostgreSQL primary
// with one streaming replica, Redis (or a Redis Cluster), switchboard node
// processes on both (--db, --db-replica, --redis or --redis-cluster) and
// NGINX running the shipped configuration (deploy/nginx) in front of them.
// cmd/sbcluster starts one for people; tests start the same.
type Cluster struct {
	Postgres     *PostgresPair
	PrimaryURL   string        // the database on the primary (--db)
	ReplicaURL   string        // the same database on the replica (--db-replica)
	Redis        *RedisServer  // one Redis (--redis); nil with RedisCluster
	RedisCluster *RedisCluster // the Redis Cluster (--redis-cluster); nil without
	Nodes        []*Node
	NGINX        *NGINXServer

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
	if cfg.RedisCluster {
		c.RedisCluster = NewRedisCluster(t)
	} else {
		c.Redis = Redis(t)
	}
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
		"--db", c.PrimaryURL, "--db-replica", c.ReplicaURL}, c.RedisArgs()...)
	args = append(append(args, "--shutdown-timeout", "5s"), c.cfg.NodeArgs...)
	n := StartNode(c.t, c.cfg.Bin, args...)
	c.Nodes = append(c.Nodes, n)
	return n
}

// RedisArgs are the nodes' flags naming the cluster's Redis: --redis URL,
// or --redis-cluster HOST:PORT,... with RedisCluster.
func (c *Cluster) RedisArgs() []string {
	if c.RedisCluster != nil {
		return []string{"--redis-cluster", strings.Join(c.RedisCluster.Addrs(), ",")}
	}
	return []string{"--redis", c.Redis.URL()}
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
