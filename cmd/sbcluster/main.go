// Command sbcluster starts a whole switchboard cluster on this machine, for
// trying it out: a PostgreSQL primary with one streaming replica, Redis
// (or, with --redis-cluster, a Redis Cluster of three primaries with a
// replica each), three nodes (cmd/switchboard, built first) and NGINX running the shipped
// configuration in front of them, all on free loopback ports in temp
// folders. It prints the URL to use and stops everything on Ctrl-C (or
// after --for). It starts them with internal/testenv, exactly as the tests
// do.
//
//	go run ./cmd/sbcluster                         # 3 nodes, until Ctrl-C
//	go run ./cmd/sbcluster --nodes 5 -- --log-level debug   # flags after -- go to every node
//	go run ./cmd/sbcluster --redis-cluster         # nodes on a 3-primary Redis Cluster (--redis-cluster)
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil)) }

// run starts the cluster, prints where it is, and waits for a signal, for
// --for, or for stop to be closed (a test); it returns the exit code.
func run(args []string, stdout, stderr io.Writer, stop <-chan struct{}) int {
	fs := flag.NewFlagSet("sbcluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.Int("nodes", 3, "switchboard nodes behind NGINX")
	lifetime := fs.Duration("for", 0, "stop by itself after this long (0: on Ctrl-C only)")
	redisCluster := fs.Bool("redis-cluster", false, "start a Redis Cluster (3 primaries, a replica each) instead of one Redis; nodes get --redis-cluster")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sbcluster [--nodes N] [--redis-cluster] [--for D] [-- node flags...]\n\n"+
			"Starts PostgreSQL (primary + streaming replica), Redis (or a Redis Cluster), N switchboard\n"+
			"nodes and NGINX on loopback, prints the URL, and stops everything on Ctrl-C.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)

	p := testenv.NewProgram("sbcluster", stderr)
	defer p.Close()
	redis := "Redis"
	if *redisCluster {
		redis = "a Redis Cluster"
	}
	fmt.Fprintf(stderr, "sbcluster: building cmd/switchboard and starting PostgreSQL, its replica, %s, %d nodes and NGINX...\n", redis, *nodes)
	var c *testenv.Cluster
	if err := p.Run(func() {
		// Built into the run's own folder (testenv.Build's outlives it).
		bin := filepath.Join(p.TempDir(), "switchboard")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/switchboard-chat/switchboard/cmd/switchboard").CombinedOutput(); err != nil {
			p.Fatalf("go build ./cmd/switchboard: %v\n%s", err, out)
		}
		c = testenv.StartCluster(p, testenv.ClusterConfig{Nodes: *nodes, Bin: bin, NodeArgs: fs.Args(), RedisCluster: *redisCluster})
	}); err != nil {
		fmt.Fprintf(stderr, "sbcluster: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "switchboard cluster: %s\n\n", c.URL())
	for i, n := range c.Nodes {
		fmt.Fprintf(stdout, "  node %d      %s   metrics %s/metrics   log %s\n", i+1, n.URL(), n.AdminURL(), n.LogPath())
	}
	fmt.Fprintf(stdout, "  NGINX       %s   (deploy/nginx/switchboard.conf; folder %s)\n", c.URL(), c.NGINX.Dir)
	fmt.Fprintf(stdout, "  PostgreSQL  %s   (--db)\n", c.PrimaryURL)
	fmt.Fprintf(stdout, "  replica     %s   (--db-replica)\n", c.ReplicaURL)
	if c.RedisCluster != nil {
		fmt.Fprintf(stdout, "  Redis       %s   (--redis-cluster: 3 primaries, a replica each)\n\n", strings.Join(c.RedisCluster.Addrs(), ","))
	} else {
		fmt.Fprintf(stdout, "  Redis       %s   (--redis)\n\n", c.Redis.URL())
	}
	fmt.Fprintf(stdout, "Ctrl-C stops everything and removes its folders.\n")

	var timeout <-chan time.Time
	if *lifetime > 0 {
		timeout = time.After(*lifetime)
	}
	select {
	case s := <-signals:
		fmt.Fprintf(stderr, "sbcluster: %v: stopping\n", s)
	case <-timeout:
		fmt.Fprintf(stderr, "sbcluster: --for %v is over: stopping\n", *lifetime)
	case <-stop:
	}
	return 0
}
