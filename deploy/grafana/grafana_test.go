package grafana

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/deploy/prometheus"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

type dashboard struct {
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct{ X, Y, W, H int }
	Targets    []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
}

func load(t *testing.T) dashboard {
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(Dashboard))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("switchboard.json: %v", err)
	}
	return d
}

// TestDashboardLint checks what Grafana would only show when the dashboard
// is imported: unique panel ids, every panel and query on the datasource
// variable, the node variable in every query of a node's series, no
// hard-coded instance, and a panel for every metric of docs/runbook.md.
func TestDashboardLint(t *testing.T) {
	d := load(t)
	if d.UID == "" {
		t.Error("the dashboard has no uid (provisioning needs one to update it in place)")
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["node"] != "query" {
		t.Errorf("variables %v: want datasource (type datasource) and node (type query)", vars)
	}
	ids := map[int]string{}
	hardcoded := regexp.MustCompile(`instance=~?"[^$]|\d+\.\d+\.\d+\.\d+|localhost`)
	exprs := ""
	for _, p := range d.Panels {
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q is wider than the grid", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v; want uid ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.Datasource == nil || q.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s: datasource %+v; want uid ${datasource}", p.Title, q.RefID, q.Datasource)
			}
			if !strings.Contains(q.Expr, `instance=~"$node"`) {
				t.Errorf("panel %q query %s does not select instance=~\"$node\": %s", p.Title, q.RefID, q.Expr)
			}
			if hardcoded.MatchString(q.Expr) {
				t.Errorf("panel %q query %s names an instance or address: %s", p.Title, q.RefID, q.Expr)
			}
			exprs += q.Expr + "\n"
		}
	}
	for _, name := range runbookMetrics(t) {
		if !regexp.MustCompile(`\b` + name + `(_bucket|_sum|_count)?\{`).MatchString(exprs) {
			t.Errorf("no panel shows %s (docs/runbook.md's metrics table)", name)
		}
	}
}

// runbookMetrics are the names in docs/runbook.md's metrics table.
func runbookMetrics(t *testing.T) []string {
	doc, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile("(?m)^\\| `(switchboard_[a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1)
	if len(names) < 20 {
		t.Fatalf("found %d metrics in runbook.md", len(names))
	}
	var out []string
	for _, n := range names {
		out = append(out, n[1])
	}
	return out
}

// TestDashboardQueriesAnswerOnALiveCluster runs two nodes on PostgreSQL
// and Redis under a small load, with a real Prometheus scraping them (the
// shipped config, 1 s intervals), and evaluates every query of every panel
// with its variables substituted as Grafana would (all nodes selected): a
// query that errors or returns no series fails, so does a node variable
// that does not list both nodes.
func TestDashboardQueriesAnswerOnALiveCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, redis := testenv.Postgres(t), testenv.Redis(t)
	bin := testenv.Build(t, "github.com/switchboard-chat/switchboard/cmd/switchboard")
	var nodes []*testenv.Node
	for range 2 {
		nodes = append(nodes, testenv.StartNode(t, bin, "--db", db, "--redis", redis.URL(), "--max-conns", "1000",
			"--argon2-memory", "64", "--argon2-time", "1"))
	}
	config, files, err := prometheus.Render(prometheus.Private{Nodes: []string{nodes[0].AdminAddr, nodes[1].AdminAddr},
		Alertmanager: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort()), Interval: time.Second, For: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	prom := testenv.Prometheus(t, config, files)

	// Load: alice on node 0 and bob on node 1 talk over a few seconds.
	login := func(n *testenv.Node, name string) (*client.Session, *client.Conn) {
		s := testenv.SignupLogin(ctx, t, n.URL(), name)
		conn, err := client.Connect(ctx, s, client.ConnOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return s, conn
	}
	alice, aliceWS := login(nodes[0], "dash-alice")
	bob, bobWS := login(nodes[1], "dash-bob")
	conv, err := alice.CreateConversation(ctx, "direct", []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		from, to, toWS := aliceWS, bob, bobWS
		if i%2 == 1 {
			from, to, toWS = bobWS, alice, aliceWS
		}
		if _, err := from.Send(ctx, client.SendRequest{ID: fmt.Sprintf("m%d", i), Conversation: conv,
			Ciphertexts: map[string][]byte{to.DeviceID: []byte("ciphertext")}}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-toWS.Messages():
		case <-ctx.Done():
			t.Fatal("a message was not delivered")
		}
		time.Sleep(100 * time.Millisecond) // spread over a few scrapes
	}

	api := func(path string, v url.Values) (json.RawMessage, error) {
		resp, err := http.Get(prom.URL() + path + "?" + v.Encode())
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var r struct {
			Status string          `json:"status"`
			Error  string          `json:"error"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return nil, err
		}
		if r.Status != "success" {
			return nil, fmt.Errorf("%s", r.Error)
		}
		return r.Data, nil
	}
	// The node variable, as Grafana's label_values asks for it.
	var instances []string
	for {
		data, err := api("/api/v1/label/instance/values", url.Values{"match[]": {"switchboard_ws_connections"}})
		if err == nil {
			_ = json.Unmarshal(data, &instances)
		}
		if len(instances) == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("node variable: %v %v; want both nodes\n%s", instances, err, prom.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Grafana's multi-value regex, escaped again for a PromQL string.
	quote := func(s string) string { return strings.ReplaceAll(regexp.QuoteMeta(s), `\`, `\\`) }
	node := "(" + quote(instances[0]) + "|" + quote(instances[1]) + ")"
	substitute := strings.NewReplacer("$node", node, "$__rate_interval", "1m", "${datasource}", "prometheus")

	d := load(t)
	for {
		var failed []string
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				data, err := api("/api/v1/query", url.Values{"query": {substitute.Replace(q.Expr)}})
				var r struct {
					Result []json.RawMessage `json:"result"`
				}
				if err == nil {
					err = json.Unmarshal(data, &r)
				}
				if err == nil && len(r.Result) == 0 {
					err = fmt.Errorf("no series")
				}
				if err != nil {
					failed = append(failed, fmt.Sprintf("panel %q query %s: %v\n  %s", p.Title, q.RefID, err, q.Expr))
				}
			}
		}
		if len(failed) == 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%d queries fail against the live cluster:\n%s", len(failed), strings.Join(failed, "\n"))
		}
		time.Sleep(time.Second) // a rate needs two scrapes of a series
	}
}
