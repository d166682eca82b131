package prometheus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func run(t *testing.T, bin string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
}

// TestShippedConfigIsValid runs promtool check config on prometheus.yml
// (which checks the rule files it names) and amtool check-config on
// alertmanager.yml.
func TestShippedConfigIsValid(t *testing.T) {
	run(t, testenv.Promtool(t), "check", "config", "prometheus.yml")
	run(t, testenv.Amtool(t), "check-config", "alertmanager.yml")
}

// TestNodesExampleIsAFileSDTargetList: the example of nodes/ is what
// Prometheus's file-based discovery reads (a list of target groups).
func TestNodesExampleIsAFileSDTargetList(t *testing.T) {
	b, err := Files.ReadFile("nodes/nodes.json.example")
	if err != nil {
		t.Fatal(err)
	}
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&groups); err != nil || len(groups) == 0 || len(groups[0].Targets) == 0 {
		t.Fatalf("nodes.json.example: %v %+v", err, groups)
	}
}

// TestAlertRulesFireOnlyPastTheirThresholds runs promtool test rules:
// each alert has a node over its threshold, which fires, and nodes under
// it, which do not (tests/alerts_test.yml).
func TestAlertRulesFireOnlyPastTheirThresholds(t *testing.T) {
	run(t, testenv.Promtool(t), "test", "rules", "tests/alerts_test.yml")
}

// TestEveryAlertHasATestAndARunbookEntry keeps the rules, their promtool
// cases and docs/runbook.md's alert table together.
func TestEveryAlertHasATestAndARunbookEntry(t *testing.T) {
	rules, _ := Files.ReadFile("rules/alerts.yml")
	tests, _ := Files.ReadFile("tests/alerts_test.yml")
	runbook, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(rules), "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "- alert: ")
		if !ok {
			continue
		}
		n++
		if strings.Count(string(tests), "alertname: "+name+",")+strings.Count(string(tests), "alertname: "+name+"\n") < 2 {
			t.Errorf("%s has no firing and quiet cases in tests/alerts_test.yml", name)
		}
		if !strings.Contains(string(runbook), "| `"+name+"` |") {
			t.Errorf("%s has no row in docs/runbook.md's alert table", name)
		}
	}
	if n < 11 {
		t.Fatalf("found %d alerts in rules/alerts.yml", n)
	}
}

// notification is the part of Alertmanager's webhook payload the test reads.
type notification struct {
	Status string `json:"status"`
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// TestAlertFiresAndResolves drives a real node over a threshold with real
// Prometheus and Alertmanager watching it: three sockets on a node capped
// at three (--max-conns) fire SwitchboardConnectionsNearLimit, which
// reaches a webhook through Alertmanager; the node refuses a fourth socket
// (503, Retry-After) and fails /readyz; closing the sockets resolves the
// alert, and the webhook gets the all-clear. The shipped rules run with
// 1 s intervals and a 2 s `for`.
func TestAlertFiresAndResolves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := testenv.Build(t, "github.com/switchboard-chat/switchboard/cmd/switchboard")
	node := testenv.StartNode(t, bin, "--data-dir", t.TempDir(), "--max-conns", "3",
		"--argon2-memory", "64", "--argon2-time", "1")

	wait := watch(ctx, t, node.AdminAddr)

	var conns []*client.Conn
	for i := range 3 {
		name := "full-" + string(rune('a'+i))
		s := testenv.SignupLogin(ctx, t, node.URL(), name)
		conn, err := client.Connect(ctx, s, client.ConnOptions{})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	// Full: /readyz says so once the node has registered the three (a
	// client has its 101 a moment before), and a fourth upgrade is shed
	// before its token is read.
	for {
		resp, err := http.Get(node.URL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("/readyz of a full node: %s; want 503", resp.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(node.URL() + "/v1/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
		t.Errorf("an upgrade to a full node: %d, Retry-After %q; want 503 with Retry-After 5", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	wait("SwitchboardConnectionsNearLimit", "firing")

	for _, c := range conns {
		c.Close()
	}
	wait("SwitchboardConnectionsNearLimit", "resolved")
	// And the node takes sockets again.
	if resp, err := http.Get(node.URL() + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz once the sockets closed: %v %v; want 200", resp.Status, err)
	}
}

// watch starts a webhook receiver, Alertmanager routing every alert to it
// (1 s grouping, resolutions sent), and Prometheus running the shipped
// rules (1 s intervals, a 2 s `for`) against the node at admin. The
// function it returns waits until the webhook has had the alert in status
// ("firing" or "resolved") for that node.
func watch(ctx context.Context, t *testing.T, admin string) func(alert, status string) {
	var mu sync.Mutex
	var got []notification
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			t.Errorf("webhook: %v", err)
		}
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	am := testenv.Alertmanager(t, `route:
  receiver: hook
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: `+hook.URL+`/alerts
        send_resolved: true
`)
	config, files, err := Render(Private{Nodes: []string{admin}, Alertmanager: am.Addr, Interval: time.Second, For: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	prom := testenv.Prometheus(t, config, files)
	return func(alert, status string) {
		t.Helper()
		for {
			mu.Lock()
			for _, n := range got {
				for _, a := range n.Alerts {
					if a.Status == status && a.Labels["alertname"] == alert && a.Labels["instance"] == admin {
						mu.Unlock()
						return
					}
				}
			}
			seen := fmt.Sprintf("%+v", got)
			mu.Unlock()
			if ctx.Err() != nil {
				t.Fatalf("no %s %s at the webhook; it got %s\nprometheus:\n%s\nalertmanager:\n%s",
					status, alert, seen, prom.Log(), am.Log())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestRedisAlertFiresAndResolves stops the Redis a node's bus runs on:
// SwitchboardRedisUnreachable reaches the webhook through Alertmanager, and
// resolves once Redis is back and the node answers its ping again.
func TestRedisAlertFiresAndResolves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	redis := testenv.Redis(t)
	bin := testenv.Build(t, "github.com/switchboard-chat/switchboard/cmd/switchboard")
	node := testenv.StartNode(t, bin, "--data-dir", t.TempDir(), "--redis", redis.URL())
	wait := watch(ctx, t, node.AdminAddr)
	redis.Kill()
	wait("SwitchboardRedisUnreachable", "firing")
	redis.Start(t)
	wait("SwitchboardRedisUnreachable", "resolved")
}
