package redisbus_test

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/switchboard-chat/switchboard/internal/redisbus"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// BenchmarkReconnectStorm measures the Redis work of a reconnect storm on
// one node: 19,500 devices, each in 3 of 19,500 conversations, subscribe
// their conversations at once (19,500 concurrent Adds of 3 topics, as the
// syncs of a node's sockets do after the node restarts, when nothing is
// subscribed yet). It reports how long until every Add returned (every
// topic live), the SUBSCRIBE commands sent and the channels subscribed per
// second, on one Redis and on a 3-primary Redis Cluster (SSUBSCRIBE):
//
//	go test -run '^$' -bench ReconnectStorm -benchtime 1x -count 3 ./internal/redisbus
//
// A storm of sockets that reconnect while their node keeps running costs
// no Redis command at all: their conversations stay subscribed for the
// linger (chat.Interest), which this benchmark's second phase shows at the
// bus's level (Adds of topics already live send nothing).
func BenchmarkReconnectStorm(b *testing.B) {
	const devices, convs, each = 19_500, 19_500, 3
	run := func(b *testing.B, open func(b *testing.B) (*redisbus.Bus, func() (calls, usec int64))) {
		for range b.N {
			bus, redisStats := open(b)
			set, err := bus.SubscribeTopics(func(string, []byte) {}, nil)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			topics := make([][]string, devices)
			for d := range topics {
				for range each {
					topics[d] = append(topics[d], fmt.Sprint("conv.c", rng.IntN(convs)))
				}
			}
			storm := func() time.Duration {
				start := time.Now()
				var wg sync.WaitGroup
				for d := range devices {
					wg.Go(func() {
						if err := set.Add(ctx, topics[d]...); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				return time.Since(start)
			}
			calls0, usec0 := redisStats()
			cold := storm()
			s := bus.Stats()
			calls1, usec1 := redisStats()
			warm := storm()
			s2 := bus.Stats()
			b.ReportMetric(float64(cold.Milliseconds()), "cold-ms")
			b.ReportMetric(float64(s.SubscribeCmds), "subscribe-cmds")
			b.ReportMetric(float64(s.Topics)/cold.Seconds(), "channels/s")
			b.ReportMetric(float64(s.SubscribeCmds)/cold.Seconds(), "cmds/s")
			b.ReportMetric(float64(calls1-calls0), "redis-subscribe-calls")
			b.ReportMetric(float64(usec1-usec0)/1000, "redis-subscribe-ms")
			b.ReportMetric(float64(warm.Milliseconds()), "warm-ms")
			b.ReportMetric(float64(s2.SubscribeCmds-s.SubscribeCmds), "warm-subscribe-cmds")
			b.Logf("%d devices, %d distinct topics: cold storm %s, %d SUBSCRIBE commands (Redis counted %d, %d µs of its CPU); warm storm %s, %d commands",
				devices, s.Topics, cold, s.SubscribeCmds, calls1-calls0, usec1-usec0, warm, s2.SubscribeCmds-s.SubscribeCmds)
			set.Close()
		}
	}
	b.Run("redis", func(b *testing.B) {
		srv := testenv.Redis(b)
		run(b, func(b *testing.B) (*redisbus.Bus, func() (int64, int64)) {
			return open(b, srv.URL()), func() (int64, int64) { return commandStats(b, []string{srv.Addr}, "subscribe") }
		})
	})
	b.Run("cluster", func(b *testing.B) {
		c := testenv.NewRedisCluster(b)
		run(b, func(b *testing.B) (*redisbus.Bus, func() (int64, int64)) {
			bus, err := redisbus.OpenConfig(ctx, redisbus.Config{Cluster: c.Addrs(), Sharded: []string{"conv."}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { bus.Close() })
			return bus, func() (int64, int64) { return commandStats(b, c.Primaries(), "ssubscribe") }
		})
	})
}

// commandStats sums Redis's own count of cmd calls and their CPU time
// (INFO commandstats) over addrs.
func commandStats(b *testing.B, addrs []string, cmd string) (calls, usec int64) {
	re := regexp.MustCompile(`cmdstat_` + cmd + `:calls=(\d+),usec=(\d+)`)
	for _, a := range addrs {
		c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{a}, DisableCache: true, ForceSingleClient: true})
		if err != nil {
			b.Fatal(err)
		}
		info, err := c.Do(ctx, c.B().Info().Section("commandstats").Build()).ToString()
		c.Close()
		if err != nil {
			b.Fatal(err)
		}
		if m := re.FindStringSubmatch(strings.ReplaceAll(info, "\r", "")); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			u, _ := strconv.ParseInt(m[2], 10, 64)
			calls, usec = calls+n, usec+u
		}
	}
	return calls, usec
}

// BenchmarkPublishTopics measures messages/s through the bus on exact
// topics, as nodes with interest-based fan-out use it: one publishing bus,
// 64 conversation topics round robin, a subscriber bus (another node) that
// holds them all, on one Redis and on a 3-primary Redis Cluster (sharded
// pub/sub spreads the topics over the shards):
//
//	go test -run '^$' -bench PublishTopics -benchtime 200000x -count 3 ./internal/redisbus
func BenchmarkPublishTopics(b *testing.B) {
	payload := make([]byte, 300)
	const topics = 64
	run := func(b *testing.B, open func(b *testing.B) *redisbus.Bus) {
		pub, sub := open(b), open(b)
		var got sync.WaitGroup
		got.Add(b.N)
		set, err := sub.SubscribeTopics(func(string, []byte) { got.Done() }, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(set.Close)
		names := make([]string, topics)
		for i := range names {
			names[i] = fmt.Sprint("conv.bench", i)
		}
		if err := set.Add(ctx, names...); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			pub.Publish(ctx, names[i%topics], payload)
		}
		done := make(chan struct{})
		go func() { got.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatalf("not every publish arrived in a minute: %+v", pub.Stats())
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	}
	b.Run("redis", func(b *testing.B) {
		srv := testenv.Redis(b)
		run(b, func(b *testing.B) *redisbus.Bus { return open(b, srv.URL()) })
	})
	b.Run("cluster", func(b *testing.B) {
		c := testenv.NewRedisCluster(b)
		run(b, func(b *testing.B) *redisbus.Bus {
			bus, err := redisbus.OpenConfig(ctx, redisbus.Config{Cluster: c.Addrs(), Sharded: []string{"conv."}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { bus.Close() })
			return bus
		})
	})
}
