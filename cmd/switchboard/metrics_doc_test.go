package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// metricRow is one row of docs/runbook.md's metrics table.
type metricRow struct{ typ, unit, labels string }

// runbookMetrics reads the metrics table of docs/runbook.md.
func runbookMetrics(t *testing.T) map[string]metricRow {
	doc, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]metricRow{}
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 8 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`switchboard_") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if _, dup := rows[name]; dup {
			t.Errorf("runbook.md lists %s twice", name)
		}
		rows[name] = metricRow{strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3]), strings.TrimSpace(cells[4])}
	}
	if len(rows) < 20 {
		t.Fatalf("found only %d metric rows in runbook.md: has the table moved?", len(rows))
	}
	return rows
}

// scraped is what one /metrics page says of the switchboard_ names: type
// and label names (le of histograms left out).
func scrape(t *testing.T, url string) map[string]metricRow {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]metricRow{}
	labels := map[string]map[string]bool{}
	sample := regexp.MustCompile(`^(switchboard_[a-z_]+?)(_bucket|_sum|_count)?(\{[^}]*\})? `)
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[1] == "TYPE" && strings.HasPrefix(f[2], "switchboard_") {
			out[f[2]] = metricRow{typ: f[3]}
			labels[f[2]] = map[string]bool{}
			continue
		}
		m := sample.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := m[1]
		if _, ok := out[name]; !ok { // a counter or gauge whose name ends in _count or _sum
			name = m[1] + m[2]
		}
		for _, kv := range strings.Split(strings.Trim(m[3], "{}"), ",") {
			if k, _, ok := strings.Cut(kv, "="); ok && k != "le" && labels[name] != nil {
				labels[name][k] = true
			}
		}
	}
	for name, r := range out {
		var ls []string
		for l := range labels[name] {
			ls = append(ls, l)
		}
		sort.Strings(ls)
		r.labels = strings.Join(ls, ", ")
		out[name] = r
	}
	return out
}

// unitSuffixes are the units a metric's name must end with, as Prometheus's
// naming conventions ask (counters then add _total).
var unitSuffixes = map[string]string{"ms": "_ms", "bytes": "_bytes", "percent": "_percent", "seconds": "_seconds"}

// TestRunbookMetricsTable runs two nodes on PostgreSQL and Redis, sends a
// message from a device on one to a device on the other, and checks
// docs/runbook.md's metrics table against their /metrics: every
// switchboard_ name served is in the table with its type, labels and unit,
// and every row is served. It also checks the cross-node fan-out was
// measured (the bus carried the commit time).
func TestRunbookMetricsTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := startNodes(t, ctx, 2, testenv.Postgres(t), testenv.Redis(t).URL())
	admins := []string{nodes[0].AdminURL(), nodes[1].AdminURL()}
	alice, bob := testenv.SignupLogin(ctx, t, nodes[0].URL(), "metrics-alice"), testenv.SignupLogin(ctx, t, nodes[1].URL(), "metrics-bob")
	conv, err := alice.CreateConversation(ctx, "direct", []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	bobWS, err := client.Connect(ctx, bob, client.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bobWS.Close()
	<-bobWS.Synced()
	if _, err := alice.SendHTTP(ctx, client.SendRequest{ID: "m1", Conversation: conv,
		Ciphertexts: map[string][]byte{bob.DeviceID: []byte("ciphertext")}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bobWS.Messages():
	case <-ctx.Done():
		t.Fatal("bob got no message")
	}

	doc := runbookMetrics(t)
	// Poll: the fan-out is observed on bob's node just after the write.
	var got map[string]metricRow
	for {
		got = scrape(t, admins[1])
		body := fetch(t, admins[1]+"/metrics")
		if strings.Contains(body, "switchboard_message_fan_out_latency_ms_count 1") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the fan-out to bob's node was not measured:\n%s", grep(body, "fan_out"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for name, g := range got {
		d, ok := doc[name]
		if !ok {
			t.Errorf("%s (%s, labels %q) is served but not in runbook.md's metrics table", name, g.typ, g.labels)
			continue
		}
		if d.typ != g.typ {
			t.Errorf("%s: runbook.md says %s, /metrics serves a %s", name, d.typ, g.typ)
		}
		if d.labels != g.labels {
			t.Errorf("%s: runbook.md says labels %q, /metrics has %q", name, d.labels, g.labels)
		}
	}
	for name, d := range doc {
		if _, ok := got[name]; !ok {
			t.Errorf("runbook.md lists %s, which the node does not serve", name)
		}
		if suffix, ok := unitSuffixes[d.unit]; ok && !strings.HasSuffix(strings.TrimSuffix(name, "_total"), suffix) {
			t.Errorf("%s: unit %s, so its name must end in %s", name, d.unit, suffix)
		}
		for unit, suffix := range unitSuffixes {
			if strings.HasSuffix(strings.TrimSuffix(name, "_total"), suffix) && d.unit != unit {
				t.Errorf("%s: the name says %s, runbook.md says %s", name, unit, d.unit)
			}
		}
		if d.typ == "counter" && !strings.HasSuffix(name, "_total") {
			t.Errorf("%s is a counter: its name must end in _total", name)
		}
		if !slices.Contains([]string{"counter", "gauge", "histogram"}, d.typ) {
			t.Errorf("%s: type %q", name, d.typ)
		}
	}
}

func fetch(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
