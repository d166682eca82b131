// Package nginx holds the NGINX configuration that fronts several
// switchboard nodes (switchboard.conf, the file to deploy) and renders it
// for a private instance: the tests (internal/testenv) and
// scripts/bench-cluster.sh run the deployed directives, not a copy of them.
package nginx

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Conf is deploy/nginx/switchboard.conf as shipped.
//
//go:embed switchboard.conf
var Conf string

// Private says what a private instance changes in Conf; everything else
// (routing, headers, timeouts, limits) stays as deployed.
type Private struct {
	Dir       string   // absolute folder for pid, logs and temp files
	Listen    string   // host:port to listen on, e.g. 127.0.0.1:18080
	Upstreams []string // the nodes, host:port or http://host:port
	Workers   int      // worker_processes; 0 keeps Conf's
	User      string   // user the workers run as (only when the master is root); "" drops the directive

	// ShutdownTimeout is worker_shutdown_timeout: how long the old workers
	// keep their WebSockets after a reload. 0 keeps Conf's (10s); tests
	// that reload shorten it to wait less.
	ShutdownTimeout time.Duration
	// BindAddrs are the source addresses of the connections to the nodes
	// for sockets ($switchboard_bind, split evenly by device), e.g.
	// 127.0.0.11..127.0.0.14 on one box. Empty keeps Conf's: no bind.
	BindAddrs []string
}

// Render returns Conf rewritten for p, with `daemon off;` so that the
// master stays the child of whoever started it. It fails when Conf no
// longer has a directive it must rewrite, so a change to the deployed file
// that the renderer does not follow shows in the tests.
func Render(p Private) ([]byte, error) {
	if !filepath.IsAbs(p.Dir) {
		return nil, fmt.Errorf("nginx: Dir %q is not absolute", p.Dir)
	}
	if len(p.Upstreams) == 0 {
		return nil, errors.New("nginx: no upstreams")
	}
	ups := make([]string, len(p.Upstreams))
	for i, u := range p.Upstreams {
		hp, err := hostPort(u)
		if err != nil {
			return nil, err
		}
		ups[i] = hp
	}
	for _, v := range append([]string{p.Dir, p.Listen, p.User}, ups...) {
		if strings.ContainsAny(v, " \t\n;{}#'\"") {
			return nil, fmt.Errorf("nginx: %q cannot go into a config file", v)
		}
	}
	if p.Listen == "" {
		return nil, errors.New("nginx: no listen address")
	}
	if p.ShutdownTimeout < 0 || p.ShutdownTimeout%time.Millisecond != 0 {
		return nil, fmt.Errorf("nginx: ShutdownTimeout %v is not a positive number of milliseconds", p.ShutdownTimeout)
	}
	for _, a := range p.BindAddrs {
		// An address alone: with a port, every connection would need that
		// one port, and NGINX would not let the kernel pick it per node.
		if ip, err := netip.ParseAddr(a); err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("nginx: bind address %q is not an IP address (no port)", a)
		}
	}

	r := renderer{p: p, ups: ups, seen: map[string]int{}}
	var out strings.Builder
	out.WriteString("# Rendered from deploy/nginx/switchboard.conf for a private instance (deploy/nginx/render.go).\n")
	out.WriteString("daemon off;\n")
	for _, line := range strings.Split(strings.TrimSuffix(Conf, "\n"), "\n") {
		for _, l := range r.line(line) {
			out.WriteString(l)
			out.WriteByte('\n')
		}
	}
	if len(r.stack) != 0 {
		return nil, fmt.Errorf("nginx: switchboard.conf: unclosed block %v", r.stack)
	}
	for _, need := range []string{"user", "worker_processes", "worker_shutdown_timeout", "pid", "error_log", "http", "access_log",
		"upstream server", "split_clients $switchboard_bind", "proxy_bind", "listen", "proxy_cache_path"} {
		if r.seen[need] == 0 {
			return nil, fmt.Errorf("nginx: switchboard.conf has no %s directive for the renderer to rewrite", need)
		}
	}
	return []byte(out.String()), nil
}

// renderer rewrites Conf line by line, knowing which block it is in.
type renderer struct {
	p     Private
	ups   []string
	stack []string // enclosing blocks, by directive name ("http", "upstream", ...)
	seen  map[string]int
	// upServers counts the server lines of the current upstream block: the
	// first stands for all of them, in every upstream block.
	upServers int
	// bindBlock is set inside split_clients ... $switchboard_bind, and
	// bindLines counts its lines (the first stands for all of them).
	bindBlock bool
	bindLines int
}

func (r *renderer) line(line string) []string {
	code, _, _ := strings.Cut(line, "#")
	code = strings.TrimSpace(code)
	if code == "" {
		return []string{line}
	}
	if code == "}" {
		if len(r.stack) > 0 {
			r.stack = r.stack[:len(r.stack)-1]
		}
		r.bindBlock = false
		return []string{line}
	}
	fields := strings.Fields(strings.TrimSuffix(code, ";"))
	name, args := fields[0], fields[1:]
	indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
	if strings.HasSuffix(code, "{") {
		r.stack = append(r.stack, name)
		if name == "upstream" {
			r.upServers = 0
		}
		if name == "split_clients" && len(args) >= 2 && args[1] == "$switchboard_bind" {
			r.seen["split_clients $switchboard_bind"]++
			r.bindBlock, r.bindLines = true, 0
		}
		if name == "http" && len(r.stack) == 1 {
			r.seen["http"]++
			// Conf leaves these to the distribution's defaults (/var/lib/nginx);
			// a private instance keeps everything in its folder.
			in := indent + "    "
			lines := []string{line}
			for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
				lines = append(lines, fmt.Sprintf("%s%s_temp_path %s;", in, t, filepath.Join(r.p.Dir, t+"_temp")))
			}
			return lines
		}
		return []string{line}
	}
	ctx := strings.Join(r.stack, " ")
	switch {
	case ctx == "" && name == "user":
		r.seen[name]++
		if r.p.User == "" {
			return nil
		}
		return []string{indent + "user " + r.p.User + ";"}
	case ctx == "" && name == "worker_processes":
		r.seen[name]++
		if r.p.Workers > 0 {
			return []string{indent + "worker_processes " + strconv.Itoa(r.p.Workers) + ";"}
		}
	case ctx == "" && name == "worker_shutdown_timeout":
		r.seen[name]++
		if d := r.p.ShutdownTimeout; d > 0 {
			return []string{indent + "worker_shutdown_timeout " + strconv.FormatInt(d.Milliseconds(), 10) + "ms;"}
		}
	case r.bindBlock:
		if len(r.p.BindAddrs) == 0 {
			return []string{line}
		}
		if r.bindLines++; r.bindLines > 1 {
			return nil // the block's first line stands for all of them
		}
		return bindBuckets(indent, r.p.BindAddrs)
	case ctx == "http server location" && name == "proxy_bind":
		r.seen[name]++
	case ctx == "" && name == "pid":
		r.seen[name]++
		return []string{indent + "pid " + filepath.Join(r.p.Dir, "nginx.pid") + ";"}
	case ctx == "" && name == "error_log":
		r.seen[name]++
		return []string{indent + directive("error_log", filepath.Join(r.p.Dir, "error.log"), args)}
	case ctx == "http" && name == "access_log":
		r.seen[name]++
		return []string{indent + directive("access_log", filepath.Join(r.p.Dir, "access.log"), args)}
	case ctx == "http" && name == "proxy_cache_path":
		r.seen[name]++
		return []string{indent + directive("proxy_cache_path", filepath.Join(r.p.Dir, "media_cache"), args)}
	case ctx == "http upstream" && name == "server":
		r.seen["upstream server"]++
		if r.upServers++; r.upServers > 1 {
			return nil // the block's first server line stands for all of them
		}
		var lines []string
		for _, u := range r.ups {
			lines = append(lines, indent+directive("server", u, args))
		}
		return lines
	case ctx == "http server" && name == "listen":
		r.seen[name]++
		if r.seen[name] > 1 {
			return nil // one address is enough for a private instance
		}
		return []string{indent + directive("listen", r.p.Listen, args)}
	}
	return []string{line}
}

// bindBuckets splits the devices evenly over addrs: split_clients takes
// percentages with two decimals, and the last bucket (*) takes the rest.
func bindBuckets(indent string, addrs []string) []string {
	share := 10000 / len(addrs) // hundredths of a percent
	lines := make([]string, len(addrs))
	for i, a := range addrs {
		pct := "*"
		if i < len(addrs)-1 {
			pct = fmt.Sprintf("%d.%02d%%", share/100, share%100)
		}
		lines[i] = indent + pct + " " + a + ";"
	}
	return lines
}

// directive writes name, then value in place of the first argument, then
// the other arguments as they were.
func directive(name, value string, args []string) string {
	parts := append([]string{name, value}, args[min(1, len(args)):]...)
	return strings.Join(parts, " ") + ";"
}

// hostPort accepts host:port or an http:// URL of a node.
func hostPort(s string) (string, error) {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return "", fmt.Errorf("nginx: upstream %q is not http://host:port", s)
		}
		s = u.Host
	}
	if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
		return "", fmt.Errorf("nginx: upstream %q is not host:port", s)
	}
	return s, nil
}
