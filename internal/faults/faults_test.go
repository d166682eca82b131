package faults

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/testenv"
)

var (
	sizeFlag   = flag.String("faults.size", envOr("SWITCHBOARD_FAULTS_SIZE", "ci"), "traffic size: ci or large (docs/reliability.md)")
	updateFlag = flag.Bool("faults.update", false, "rewrite the table of docs/reliability.md with this run's rows")
)

const docPath = "../../docs/reliability.md"

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// env is what a scenario's fault acts on.
type env struct {
	t testing.TB
	c *Cluster
	w *world
}

type scenario struct {
	name string
	// bound: from the fault's end until every message acknowledged before
	// it is delivered, and from the end of the traffic until everything is.
	bound time.Duration
	// after: how long traffic goes on once the fault is over (default 4 s).
	after time.Duration
	// fault injects the fault, waits it out, and returns when it was over
	// (the start of the time to recover).
	fault func(e env) time.Time
	// check is an extra assertion, run before the traffic stops.
	check func(e env) error
}

// scenarios are the suite, in the order of the table in docs/reliability.md.
func scenarios(size Size) []scenario {
	return []scenario{
		{name: "kill -9 of a node", fault: func(e env) time.Time {
			n := e.c.Nodes[1]
			n.Kill()
			over := time.Now() // its devices redial at once, to other nodes
			time.Sleep(3 * time.Second)
			if err := n.Start(); err != nil {
				e.t.Fatal(err)
			}
			return over
		}},
		{name: "rolling SIGTERM restart of every node", fault: func(e env) time.Time {
			for _, n := range e.c.Nodes {
				n.Stop(10 * time.Second)
				time.Sleep(time.Second)
				if err := n.Start(); err != nil {
					e.t.Fatal(err)
				}
				time.Sleep(2 * time.Second)
			}
			return time.Now()
		}},
		{name: "Redis killed 10 s", fault: func(e env) time.Time {
			e.c.Redis.Kill()
			time.Sleep(size.RedisShort)
			e.c.Redis.Start(e.t)
			return time.Now()
		}},
		{name: "Redis killed 35 s, traffic stops 2 s after it returns", after: 2 * time.Second, bound: 90 * time.Second,
			fault: func(e env) time.Time {
				e.c.Redis.Kill()
				time.Sleep(size.RedisLong)
				e.c.Redis.Start(e.t)
				return time.Now()
			}},
		{name: "Redis paused 10 s (SIGSTOP, SIGCONT)", fault: func(e env) time.Time {
			e.c.Redis.Pause()
			time.Sleep(size.RedisShort)
			e.c.Redis.Resume()
			return time.Now()
		}},
		{name: "PostgreSQL restarted", fault: func(e env) time.Time {
			testenv.RestartPostgres(e.t, 2*time.Second)
			return time.Now()
		}},
		{name: "a reader stalls in a busy group of 8 KB and 16 KB messages", fault: func(e env) time.Time {
			members := e.w.convs[e.w.big]
			last := members[len(members)-1]
			victim := last.devs[len(last.devs)-1]
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { e.w.bigTraffic(20, stop, map[*device]bool{victim: true}); close(done) }()
			victim.stallUntil.Store(time.Now().Add(size.Stall).UnixNano())
			time.Sleep(size.Stall)
			close(stop)
			<-done
			return time.Now()
		}},
		{name: "six devices offline with multi-MB backlogs reconnect at once", fault: func(e env) time.Time {
			var offline []*device
			skip := map[*device]bool{}
			members := e.w.convs[e.w.big]
			for i := len(members) - 1; i >= 0 && len(offline) < 6; i-- {
				for _, d := range members[i].devs {
					if len(offline) < 6 {
						offline = append(offline, d)
						skip[d] = true
					}
				}
			}
			for _, d := range offline {
				d.offline()
			}
			// 25 messages a second of 12 KB on average into their group.
			const rate, avg = 25, 12 << 10
			stop, done := make(chan struct{}), make(chan struct{})
			go func() { e.w.bigTraffic(rate, stop, skip); close(done) }()
			time.Sleep(time.Duration(size.Backlog/(rate*avg)+1) * time.Second)
			close(stop)
			<-done // every message of the backlog is stored
			var wg sync.WaitGroup
			over := time.Now()
			for _, d := range offline {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					if err := d.connect(ctx); err != nil {
						e.w.problem("%v", err)
					}
				})
			}
			wg.Wait()
			return over
		}},
		{name: "all sockets dropped at once", fault: func(e env) time.Time {
			for _, d := range e.w.devs {
				go d.tap.dropAll()
			}
			return time.Now()
		}},
		{name: "a node added under traffic (NGINX reloaded)", bound: 90 * time.Second, fault: func(e env) time.Time {
			e.c.AddNode()
			return time.Now()
		}, check: func(e env) error {
			// The consistent hash moves about a quarter of the devices to
			// the new node; NGINX's old workers close their sockets at
			// worker_shutdown_timeout, and those devices reconnect there.
			n := e.c.Nodes[len(e.c.Nodes)-1]
			deadline := time.Now().Add(60 * time.Second)
			for {
				if v, err := gauge(n.AdminURL(), "switchboard_ws_connections"); err == nil && v > 0 {
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("the added node holds no socket 60 s after the reload")
				}
				time.Sleep(250 * time.Millisecond)
			}
		}},
	}
}

// TestFaults is the fault suite (docs/reliability.md): for each scenario a
// private cluster (PostgreSQL, Redis, three node processes, the shipped
// NGINX configuration), steady chat traffic through NGINX with the Go SDK,
// one fault, and a check of every acknowledged message against what every
// device's application and socket got and against the store.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters of real processes")
	}
	size, ok := Sizes[*sizeFlag]
	if !ok {
		t.Fatalf("-faults.size=%q: want ci or large", *sizeFlag)
	}
	command := "go test ./internal/faults -run TestFaults -faults.update"
	if size.Name != "ci" {
		command = "go test ./internal/faults -run TestFaults -timeout 60m -faults.size=" + size.Name + " -faults.update"
	} else if raceEnabled {
		command = "go test -race ./internal/faults -run TestFaults -faults.update"
	}
	var names []string
	rows := map[string]string{}
	for _, sc := range scenarios(size) {
		names = append(names, sc.name)
		t.Run(sc.name, func(t *testing.T) {
			r := runScenario(t, sc, size)
			rows[sc.name] = r.Row(command)
			t.Logf("%s", rows[sc.name])
			for _, p := range r.Problems {
				t.Log(p)
			}
			if r.Failed() {
				t.Errorf("%s: lost %d, duplicated %d, out of order %d, holes on the wire %d, missing from the store %d, "+
					"sends never answered %d, delivered and not seen on the wire %d, recovered within the bound %v (%v)", sc.name, r.Lost, r.Duplicated, r.OutOfOrder,
					r.Holes, r.StoreMissing, r.Unacked, r.NotOnWire, r.Recovered, r.Recover.Round(100*time.Millisecond))
			}
		})
	}
	if *updateFlag {
		if err := UpdateTable(docPath, names, rows); err != nil {
			t.Fatal(err)
		}
	}
}

func runScenario(t *testing.T, sc scenario, size Size) Result {
	if sc.bound == 0 {
		sc.bound = 60 * time.Second
	}
	if sc.after == 0 {
		sc.after = 4 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := StartCluster(t, 3)
	w := newWorld(t, c, size)
	w.populate(ctx)
	defer w.close()
	e := env{t: t, c: c, w: w}

	w.startTraffic()
	time.Sleep(3 * time.Second)
	over := sc.fault(e)
	var rec time.Duration
	var recovered bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Messages acknowledged in the second after the fault count too:
		// they need the devices back on sockets, which the ones before the
		// fault may not (after a drop of every socket, say).
		rec, recovered = w.waitDelivered(over.Add(time.Second), over, sc.bound)
	}()
	time.Sleep(sc.after)
	var extra error
	if sc.check != nil {
		extra = sc.check(e)
	}
	w.stopTraffic()
	<-done
	_, settled := w.waitDelivered(time.Time{}, time.Now(), sc.bound)

	r := w.check(ctx, c.DB)
	r.Scenario, r.Recover, r.Recovered = sc.name, rec, recovered && settled && extra == nil
	if !settled {
		r.Problems = append(r.Problems, fmt.Sprintf("not every acknowledged message delivered within %v of the traffic's end", sc.bound))
	}
	if extra != nil {
		r.Problems = append(r.Problems, extra.Error())
	}
	return r
}

// gauge reads one unlabelled sample from a node's /metrics.
func gauge(url, name string) (float64, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.Fields(v)[0], 64)
		}
	}
	return 0, fmt.Errorf("no %s", name)
}

// TestReliabilityDocNamesTheScenarios keeps docs/reliability.md's table in
// step with the suite: one row per scenario, in the suite's order, nothing
// else.
func TestReliabilityDocNamesTheScenarios(t *testing.T) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	_, order, err := TableRows(string(b))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, sc := range scenarios(Sizes["ci"]) {
		want = append(want, sc.name)
	}
	if strings.Join(order, "\n") != strings.Join(want, "\n") {
		t.Errorf("docs/reliability.md's table names\n  %q\nwant the suite's scenarios\n  %q", order, want)
	}
}
