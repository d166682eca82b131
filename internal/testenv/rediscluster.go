package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RedisCluster is a private Redis Cluster for one test: three primaries,
// each with one replica, on free loopback ports in the test's temp folder,
// with a 2 s node timeout so that a killed primary's replica takes over
// within seconds.
type RedisCluster struct {
	nodes []*clusterNode
	cli   string
}

type clusterNode struct {
	Addr   string
	port   int
	dir    string
	cmd    *exec.Cmd
	exited <-chan struct{}
}

// NewRedisCluster starts a 3-primary Redis Cluster (Redis 7 or later: sharded
// pub/sub) for t, stopped when t ends. Without redis-server it fails, or
// skips with SWITCHBOARD_SKIP_REDIS=1, as Redis does.
func NewRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	if os.Getenv(envSkipRedis) == "1" {
		t.Skipf("%s=1: skipping a test that needs Redis", envSkipRedis)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testenv: this test needs redis-server (Debian package redis-server): %v\n(set %s=1 to skip)", err, envSkipRedis)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("testenv: this test needs redis-cli (Debian package redis-tools): %v", err)
	}
	c := &RedisCluster{cli: cli}
	t.Cleanup(c.stop)
	root := t.TempDir()
	for i := range 6 {
		n := &clusterNode{dir: filepath.Join(root, fmt.Sprint("node", i))}
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var lastErr error
		for range 3 { // a free port can be taken before redis binds it
			n.port = FreePort()
			n.Addr = fmt.Sprintf("127.0.0.1:%d", n.port)
			if lastErr = n.start(bin); lastErr == nil {
				break
			}
		}
		if lastErr != nil {
			t.Fatalf("testenv: start a cluster node: %v", lastErr)
		}
		c.nodes = append(c.nodes, n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.Addr)
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	// Ready when every node sees the cluster ok and three primaries have a
	// replica each that finished its first sync (replicas attach a moment
	// after create returns).
	c.waitFor(t, "the cluster to be ok with a synced replica per primary", func() bool {
		synced := 0
		for _, n := range c.nodes {
			if !strings.Contains(c.query(n.Addr, "cluster", "info"), "cluster_state:ok") {
				return false
			}
			if strings.Contains(c.query(n.Addr, "info", "replication"), "master_link_status:up") {
				synced++
			}
		}
		return synced == 3 && len(c.primaries(true)) == 3
	})
	return c
}

func (n *clusterNode) start(bin string) error {
	n.cmd = exec.Command(bin, "--port", fmt.Sprint(n.port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-port", fmt.Sprint(FreePort()),
		"--cluster-config-file", filepath.Join(n.dir, "nodes.conf"), "--cluster-node-timeout", "2000",
		// A replica that never finished its first sync cannot take over:
		// send it at once rather than after the default 5 s wait for more
		// replicas.
		"--repl-diskless-sync-delay", "0",
		"--save", "", "--appendonly", "no", "--dir", n.dir, "--logfile", filepath.Join(n.dir, "redis.log"))
	exited, err := startChild(n.cmd, syscall.SIGKILL)
	if err != nil {
		return err
	}
	n.exited = exited
	deadline := time.Now().Add(10 * time.Second)
	for pingRedis(n.Addr) != nil {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
			return fmt.Errorf("redis-server on %s exited:\n%s", n.Addr, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.kill()
			return fmt.Errorf("redis-server on %s did not answer PING", n.Addr)
		}
	}
	return nil
}

func (n *clusterNode) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
		<-n.exited
		n.cmd = nil
	}
}

func (c *RedisCluster) stop() {
	for _, n := range c.nodes {
		n.kill()
	}
}

// Addrs are the seed addresses of every node (host:port), for
// --redis-cluster.
func (c *RedisCluster) Addrs() []string {
	var out []string
	for _, n := range c.nodes {
		if n.cmd != nil {
			out = append(out, n.Addr)
		}
	}
	return out
}

func (c *RedisCluster) query(addr string, args ...string) string {
	host, port, _ := strings.Cut(addr, ":")
	out, _ := exec.Command(c.cli, append([]string{"-h", host, "-p", port}, args...)...).Output()
	return string(out)
}

// shard is one primary in CLUSTER NODES: its address and slot ranges.
type shard struct {
	addr       string
	id         string
	slots      [][2]int
	hasReplica bool
}

// primaries reads CLUSTER NODES from a live node: the primaries that are
// not failed (with a connected replica only, if withReplica).
func (c *RedisCluster) primaries(withReplica bool) []shard {
	var text string
	for _, n := range c.nodes {
		if n.cmd != nil {
			if text = c.query(n.Addr, "cluster", "nodes"); text != "" {
				break
			}
		}
	}
	var out []shard
	replicated := make(map[string]bool)
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		flags := f[2]
		if strings.Contains(flags, "fail") {
			continue
		}
		if strings.Contains(flags, "slave") && f[7] == "connected" {
			replicated[f[3]] = true
			continue
		}
		if !strings.Contains(flags, "master") || len(f) < 9 {
			continue
		}
		s := shard{addr: strings.Split(f[1], "@")[0], id: f[0]}
		for _, r := range f[8:] {
			lo, hi, ok := strings.Cut(r, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				continue
			}
			b := a
			if ok {
				b, _ = strconv.Atoi(hi)
			}
			s.slots = append(s.slots, [2]int{a, b})
		}
		if len(s.slots) > 0 {
			out = append(out, s)
		}
	}
	if withReplica {
		out = slices.DeleteFunc(out, func(s shard) bool { return !replicated[s.id] })
	}
	return out
}

// PrimaryOf is the address of the primary that holds slot now.
func (c *RedisCluster) PrimaryOf(slot int) string {
	for _, s := range c.primaries(false) {
		for _, r := range s.slots {
			if slot >= r[0] && slot <= r[1] {
				return s.addr
			}
		}
	}
	return ""
}

// Primaries are the addresses of the primaries holding slots now.
func (c *RedisCluster) Primaries() []string {
	var out []string
	for _, s := range c.primaries(false) {
		out = append(out, s.addr)
	}
	return out
}

// KillPrimaryOf kills (kill -9) the primary that holds slot and returns
// its address; its replica takes the slot over after the node timeout
// (WaitFailover).
func (c *RedisCluster) KillPrimaryOf(slot int) string {
	addr := c.PrimaryOf(slot)
	for _, n := range c.nodes {
		if n.Addr == addr {
			n.kill()
		}
	}
	return addr
}

// WaitFailover waits until a primary other than old holds slot and the
// cluster is ok there: the shard's failover is done.
func (c *RedisCluster) WaitFailover(t testing.TB, slot int, old string) {
	t.Helper()
	c.waitFor(t, "a replica to take over slot "+fmt.Sprint(slot), func() bool {
		p := c.PrimaryOf(slot)
		return p != "" && p != old && strings.Contains(c.query(p, "cluster", "info"), "cluster_state:ok")
	})
}

func (c *RedisCluster) waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("testenv: waited 60 s for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Slot is Redis Cluster's hash slot of key (CRC-16/XMODEM of its hash tag,
// or of the whole key), for tests that place keys on shards.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % 16384)
}
