package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/switchboard-chat/switchboard"

// adapters are the packages that talk to one outside system each; they
// meet only in cmd/ (doc.go).
var adapters = []string{
	module + "/internal/sqlite",
	module + "/internal/postgres",
	module + "/internal/redisbus",
	module + "/internal/redisstate",
	module + "/internal/inmem",
}

// storesAndBuses are the adapters and what they share.
var storesAndBuses = append(slices.Clone(adapters), module+"/internal/sqlcore", module+"/internal/rediscore")

// core are the packages that run the live path over the Store and Bus
// interfaces: stores and buses must not reach them, and they no adapter.
var core = []string{
	module + "/internal/gateway",
	module + "/internal/server",
	module + "/internal/chat",
	module + "/internal/calls",
}

// pkg is what go list says of a package.
type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string // the packages it imports itself
	Deps       []string // every package it imports, directly or not
	Module     *struct{ Path string }
}

// rule forbids the packages it applies to some dependencies.
type rule struct {
	name    string
	applies func(p *pkg) bool
	// forbids returns why p may not depend on dep, or "".
	forbids func(p *pkg, dep string, std bool) string
}

var rules = []rule{{
	name:    "the root package imports only the standard library",
	applies: func(p *pkg) bool { return p.ImportPath == module },
	forbids: func(_ *pkg, dep string, std bool) string {
		if !std {
			return "not in the standard library"
		}
		return ""
	},
}, {
	name:    "a store or a bus imports neither the gateway, the server nor chat",
	applies: func(p *pkg) bool { return slices.Contains(storesAndBuses, p.ImportPath) },
	forbids: func(_ *pkg, dep string, _ bool) string {
		if slices.Contains(core, dep) {
			return "part of the live path, which uses stores and buses through their interfaces"
		}
		return ""
	},
}, {
	name:    "the gateway, the server, chat and calls import no adapter",
	applies: func(p *pkg) bool { return slices.Contains(core, p.ImportPath) },
	forbids: func(_ *pkg, dep string, _ bool) string {
		if slices.Contains(adapters, dep) {
			return "an adapter: adapters meet only in cmd/, and each registers its own metrics"
		}
		return ""
	},
}, {
	name:    "the SDK imports nothing internal",
	applies: func(p *pkg) bool { return under(p.ImportPath, module+"/client") },
	forbids: func(_ *pkg, dep string, _ bool) string {
		if under(dep, module+"/internal") {
			return "internal: the SDK is public and must build alone"
		}
		return ""
	},
}, {
	name:    "only cmd/ imports two adapters",
	applies: func(p *pkg) bool { return !under(p.ImportPath, module+"/cmd") },
	forbids: func(p *pkg, dep string, _ bool) string {
		if !slices.Contains(adapters, dep) {
			return ""
		}
		for _, other := range adapters {
			if other < dep && slices.Contains(p.Deps, other) {
				return "a second adapter, after " + other
			}
		}
		return ""
	},
}, {
	// The WebRTC stack proves the call signalling in a test
	// (cmd/switchboard/webrtc_test.go); the node relays and never speaks it.
	name:    "pion (WebRTC) is for tests only",
	applies: func(*pkg) bool { return true },
	forbids: func(_ *pkg, dep string, _ bool) string {
		if under(dep, "github.com/pion") {
			return "a test-only dependency: the server relays signalling, it runs no WebRTC"
		}
		return ""
	},
}}

// under reports whether path is dir or a package below it.
func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// violations checks every package of the module against the rules.
func violations(pkgs map[string]*pkg) []string {
	var out []string
	for _, p := range pkgs {
		if p.Module == nil || p.Module.Path != module {
			continue
		}
		for _, r := range rules {
			if !r.applies(p) {
				continue
			}
			for _, dep := range p.Deps {
				d, known := pkgs[dep]
				std := known && d.Standard
				if why := r.forbids(p, dep, std); why != "" {
					how := "imports"
					if !slices.Contains(p.Imports, dep) {
						how = "imports, through another package,"
					}
					out = append(out, fmt.Sprintf("%s: %s %s %s (%s)", r.name, p.ImportPath, how, dep, why))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// list runs go list -deps -json on the module's packages (no tests).
func list(t *testing.T) map[string]*pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs := make(map[string]*pkg)
	dec := json.NewDecoder(bytes.NewReader(outb))
	for {
		p := new(pkg)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	if pkgs[module] == nil {
		t.Fatalf("go list did not list %s", module)
	}
	return pkgs
}

func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for _, v := range violations(list(t)) {
		t.Error(v)
	}
}

// TestRules checks each rule catches what it is for, on a made-up graph.
func TestRules(t *testing.T) {
	ours := &struct{ Path string }{module}
	m := func(s string) string { return module + s }
	tests := []struct {
		name string
		pkgs []*pkg
		want int
	}{
		{"the server importing the Redis bus (for its metrics) is caught",
			[]*pkg{{ImportPath: m("/internal/server"), Deps: []string{m("/internal/redisbus"), "context"}}}, 1},
		{"the root package importing a module outside the standard library is caught",
			[]*pkg{{ImportPath: module, Deps: []string{"context", "github.com/jackc/pgx/v5"}}}, 1},
		{"a store importing chat is caught",
			[]*pkg{{ImportPath: m("/internal/sqlcore"), Deps: []string{m("/internal/chat")}}}, 1},
		{"the SDK importing an internal package is caught",
			[]*pkg{{ImportPath: m("/client/x"), Deps: []string{m("/internal/load")}}}, 1},
		{"a package importing two adapters is caught, once",
			[]*pkg{{ImportPath: m("/internal/load"), Deps: []string{m("/internal/sqlite"), m("/internal/postgres")}}}, 1},
		{"the node importing pion/webrtc is caught",
			[]*pkg{{ImportPath: m("/cmd/switchboard"), Deps: []string{"github.com/pion/webrtc/v4"}}}, 1},
		{"cmd/ may import every adapter",
			[]*pkg{{ImportPath: m("/cmd/switchboard"), Deps: slices.Clone(adapters)}}, 0},
		{"a package outside the module is not checked",
			[]*pkg{{ImportPath: "example.com/x", Deps: slices.Clone(adapters)}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkgs := map[string]*pkg{"context": {ImportPath: "context", Standard: true}}
			for _, p := range tt.pkgs {
				if strings.HasPrefix(p.ImportPath, module) {
					p.Module = ours
				}
				pkgs[p.ImportPath] = p
			}
			if got := violations(pkgs); len(got) != tt.want {
				t.Fatalf("violations %q, want %d", got, tt.want)
			}
		})
	}
}
