package nginx

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	out, err := Render(Private{Dir: "/tmp/x", Listen: "127.0.0.1:18080",
		Upstreams: []string{"http://127.0.0.1:9001", "127.0.0.1:9002"}, Workers: 3, User: "root"})
	if err != nil {
		t.Fatal(err)
	}
	conf := string(out)
	for _, want := range []string{
		"daemon off;",
		"user root;",
		"worker_processes 3;",
		"pid /tmp/x/nginx.pid;",
		"error_log /tmp/x/error.log warn;",
		"access_log /tmp/x/access.log switchboard buffer=64k flush=5s;",
		"proxy_temp_path /tmp/x/proxy_temp;",
		"client_body_temp_path /tmp/x/client_body_temp;",
		"server 127.0.0.1:9001 max_fails=0;",
		"server 127.0.0.1:9002 max_fails=0;",
		"server 127.0.0.1:9001 max_fails=1 fail_timeout=5s;",
		"server 127.0.0.1:9002 max_fails=1 fail_timeout=5s;",
		"listen 127.0.0.1:18080 reuseport backlog=65535;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("rendered config lacks %q:\n%s", want, conf)
		}
	}
	code := regexp.MustCompile(`#.*`).ReplaceAllString(conf, "")
	for _, gone := range []string{"/run/nginx.pid", "/var/log/nginx", "127.0.0.1:8080", "listen 80"} {
		if strings.Contains(code, gone) {
			t.Errorf("rendered config still has %q", gone)
		}
	}
	// Only what Render must change differs: the rest is the deployed file.
	for _, kept := range []string{"hash $switchboard_route consistent;", "location = /v1/ws {", "proxy_buffering off;",
		"proxy_read_timeout 120s;", "worker_rlimit_nofile 20000;", "worker_connections 19800;"} {
		if !strings.Contains(conf, kept) {
			t.Errorf("rendered config lost %q", kept)
		}
	}

	t.Run("an empty user drops the directive", func(t *testing.T) {
		out, err := Render(Private{Dir: "/tmp/x", Listen: "127.0.0.1:1", Upstreams: []string{"127.0.0.1:2"}})
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(?m)^\s*user `).Match(out) || !strings.Contains(string(out), "worker_processes auto;") {
			t.Fatalf("rendered:\n%s", out)
		}
	})
	t.Run("bind addresses split the devices evenly, the last bucket taking the rest", func(t *testing.T) {
		for _, tc := range []struct {
			addrs []string
			want  string
		}{
			{[]string{"127.0.0.11"}, "* 127.0.0.11;"},
			{[]string{"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"},
				"25.00% 127.0.0.11;\n25.00% 127.0.0.12;\n25.00% 127.0.0.13;\n* 127.0.0.14;"},
			{[]string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, "33.33% 10.0.0.1;\n33.33% 10.0.0.2;\n* 10.0.0.3;"},
			{[]string{"::1", "fd00::2"}, "50.00% ::1;\n* fd00::2;"},
		} {
			out, err := Render(Private{Dir: "/tmp/x", Listen: "127.0.0.1:1", Upstreams: []string{"127.0.0.1:2"}, BindAddrs: tc.addrs})
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`(?m)^\s*split_clients \$switchboard_route \$switchboard_bind \{\n((?:.*\n)*?)\s*\}`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("no split_clients block:\n%s", out)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(string(m[1])), "\n") {
				got = append(got, strings.TrimSpace(l))
			}
			if strings.Join(got, "\n") != tc.want {
				t.Errorf("%v: buckets\n%s\nwant\n%s", tc.addrs, strings.Join(got, "\n"), tc.want)
			}
			if !strings.Contains(string(out), "proxy_bind $switchboard_bind;") {
				t.Error("the socket location lost proxy_bind")
			}
		}
		// Without BindAddrs the block is the deployed one: no bind.
		out, _ := Render(Private{Dir: "/tmp/x", Listen: "127.0.0.1:1", Upstreams: []string{"127.0.0.1:2"}})
		if !regexp.MustCompile(`\$switchboard_bind \{\n\s*\* "";\n\s*\}`).Match(out) {
			t.Errorf("rendered without BindAddrs, the split_clients block is not the deployed `* \"\";`:\n%s", out)
		}
	})

	t.Run("a shutdown timeout replaces the deployed one", func(t *testing.T) {
		out, err := Render(Private{Dir: "/tmp/x", Listen: "127.0.0.1:1", Upstreams: []string{"127.0.0.1:2"}, ShutdownTimeout: 2500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "\nworker_shutdown_timeout 2500ms;") || strings.Contains(string(out), "worker_shutdown_timeout 10s") {
			t.Fatalf("rendered:\n%s", out)
		}
	})

	for _, bad := range []Private{
		{Dir: "relative", Listen: "127.0.0.1:1", Upstreams: []string{"127.0.0.1:2"}},
		{Dir: "/tmp/x", Listen: "127.0.0.1:1"},
		{Dir: "/tmp/x", Listen: "127.0.0.1:1", Upstreams: []string{"127.0.0.1"}},
		{Dir: "/tmp/x", Listen: "127.0.0.1:1", Upstreams: []string{"https://h:1"}},
		{Dir: "/tmp/x", Listen: "127.0.0.1:1; evil", Upstreams: []string{"127.0.0.1:2"}},
		{Dir: "/tmp/x", Listen: "127.0.0.1:1", Upstreams: []string{"127.0.0.1:2"}, BindAddrs: []string{"127.0.0.11:9000"}},
		{Dir: "/tmp/x", Listen: "127.0.0.1:1", Upstreams: []string{"127.0.0.1:2"}, BindAddrs: []string{"proxy.local"}},
		{Dir: "/tmp/x", Listen: "127.0.0.1:1", Upstreams: []string{"127.0.0.1:2"}, BindAddrs: []string{"127.0.0.11; evil"}},
		{Dir: "/tmp/x", Listen: "127.0.0.1:1", Upstreams: []string{"127.0.0.1:2"}, ShutdownTimeout: time.Microsecond},
	} {
		if _, err := Render(bad); err == nil {
			t.Errorf("Render(%+v) accepted", bad)
		}
	}
}

// TestDeployedLimits keeps the numbers of switchboard.conf consistent with
// each other and with the node.
func TestDeployedLimits(t *testing.T) {
	num := func(directive string) int {
		t.Helper()
		m := regexp.MustCompile(`(?m)^\s*` + directive + `\s+(\d+)s?;`).FindStringSubmatch(Conf)
		if m == nil {
			t.Fatalf("switchboard.conf has no %s", directive)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if rl, wc := num("worker_rlimit_nofile"), num("worker_connections"); wc >= rl || wc < rl*9/10 {
		t.Errorf("worker_connections %d against worker_rlimit_nofile %d: want a little under it", wc, rl)
	}
	// The node closes an idle HTTP connection after 30 s (--request-timeout).
	if kt := num("keepalive_timeout"); kt >= 30 {
		t.Errorf("upstream keepalive_timeout %ds: NGINX would reuse connections the node is closing", kt)
	}
	// The node pings every 30 s and closes a socket silent for 60 s.
	if rt := num("proxy_read_timeout"); rt <= 60 {
		t.Errorf("proxy_read_timeout %ds: a quiet socket would be cut before the node's ping keeps it alive", rt)
	}
	// Sockets must never mark a node down: a WebSocket completes only when
	// it closes, so a node's trial request after fail_timeout would keep it
	// half-disabled for as long as that socket lives (issue 16).
	ws := regexp.MustCompile(`(?s)upstream switchboard_ws \{(.*?)\n    \}`).FindStringSubmatch(Conf)
	if ws == nil {
		t.Fatal("switchboard.conf has no upstream switchboard_ws")
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s.*;`).FindAllString(ws[1], -1) {
		if !strings.Contains(m, "max_fails=0") {
			t.Errorf("socket upstream line %q: want max_fails=0", strings.TrimSpace(m))
		}
	}
	if !strings.Contains(Conf, "proxy_pass http://switchboard_ws;") {
		t.Error("location = /v1/ws does not use the socket upstream")
	}
	// Sockets leave from $switchboard_bind, which binds nothing as shipped
	// (an empty proxy_bind value): an address listed here must be the
	// proxy host's own, so it is the operator's to add (README.md).
	loc := regexp.MustCompile(`(?s)location = /v1/ws \{(.*?)\n        \}`).FindStringSubmatch(Conf)
	if loc == nil || !strings.Contains(loc[1], "proxy_bind $switchboard_bind;") {
		t.Error("location = /v1/ws does not bind to $switchboard_bind")
	}
	if !regexp.MustCompile(`split_clients \$switchboard_route \$switchboard_bind \{\n\s*\* "";\n\s*\}`).MatchString(Conf) {
		t.Error(`switchboard.conf's split_clients $switchboard_bind is not the one empty bucket * ""`)
	}
	// Tests that reload (testenv.NGINXServer.Reload) and the runbook
	// count on the old workers closing their sockets at this timeout.
	if st := num("worker_shutdown_timeout"); st <= 0 || st > 60 {
		t.Errorf("worker_shutdown_timeout %ds: want a bound, under a minute", st)
	}
	for _, want := range []string{"hash $switchboard_route consistent;", "default $arg_device;",
		"proxy_set_header Upgrade $http_upgrade;", "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
		"proxy_set_header X-Real-IP $remote_addr;"} {
		if !strings.Contains(Conf, want) {
			t.Errorf("switchboard.conf lacks %q", want)
		}
	}
}
