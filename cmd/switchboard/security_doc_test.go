package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSecurityDocMatchesFlags keeps docs/security.md's tables of limits true:
// every flag they name exists, a single flag's documented default is the
// real one, and every limit flag of the node is documented there.
func TestSecurityDocMatchesFlags(t *testing.T) {
	doc, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	defaults := flagDefaults(t)
	flagRe := regexp.MustCompile("`--([a-z0-9-]+)`")
	rows := 0
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.Contains(cells[2], "`--") {
			continue
		}
		rows++
		flags := flagRe.FindAllStringSubmatch(cells[2], -1)
		for _, f := range flags {
			if _, ok := defaults[f[1]]; !ok {
				t.Errorf("security.md names --%s, which is not a flag", f[1])
			}
		}
		def := strings.TrimSpace(cells[3])
		if len(flags) == 1 && strings.Count(def, "`") == 2 && strings.HasPrefix(def, "`") && strings.HasSuffix(def, "`") {
			if got := defaults[flags[0][1]]; strings.Trim(def, "`") != got {
				t.Errorf("security.md: --%s defaults to %s; the flag's default is %q", flags[0][1], def, got)
			}
		}
	}
	if rows < 10 {
		t.Fatalf("found only %d limit rows in security.md: has the table moved?", rows)
	}
	for _, name := range []string{"login-rate-account", "login-rate-ip", "signup-rate-ip", "send-rate", "send-burst",
		"send-rate-conversation", "frame-rate", "device-bytes", "max-conns-per-ip", "max-conns-per-user", "max-devices",
		"limit-exempt", "trusted-proxies", "allowed-origins", "request-timeout", "max-body", "max-frame", "max-queued",
		"ping-interval", "session-ttl", "max-members", "argon2-time", "argon2-memory", "pprof",
		"conversation-rate-device", "conversation-rate-ip", "history-bytes", "history-reads-per-device", "history-reads",
		"max-assisted-bytes", "max-assisted-recipients", "hash-slots", "hash-wait"} {
		if _, ok := defaults[name]; !ok {
			t.Errorf("--%s is not a flag any more", name)
		}
		if !strings.Contains(string(doc), "`--"+name+"`") {
			t.Errorf("--%s is not documented in security.md", name)
		}
	}
}

// flagDefaults returns every flag of the node with its default as --help prints it ("" for none).
func flagDefaults(t *testing.T) map[string]string {
	m := NewMain()
	var out bytes.Buffer
	m.Stderr = &out
	if err := m.ParseFlags([]string{"--help"}, func(string) string { return "" }); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	defaults := map[string]string{}
	var name string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "  -") {
			name = strings.Fields(strings.TrimPrefix(line, "  -"))[0]
			defaults[name] = ""
		}
		if i := strings.LastIndex(line, "(default "); i >= 0 && name != "" {
			defaults[name] = strings.Trim(strings.TrimSuffix(line[i+len("(default "):], ")"), `"`)
		}
	}
	return defaults
}
