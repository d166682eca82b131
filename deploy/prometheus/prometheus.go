// Package prometheus holds the Prometheus and Alertmanager configuration of
// a switchboard cluster (prometheus.yml, rules/, nodes/, alertmanager.yml:
// the files to deploy) and renders it for a private instance, so that the
// tests run the shipped rules against real nodes rather than a copy.
// docs/runbook.md explains each alert.
package prometheus

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"time"
)

// Files are the shipped files, by path relative to deploy/prometheus.
//
//go:embed prometheus.yml alertmanager.yml rules/*.yml nodes/*.example tests/*.yml
var Files embed.FS

// Private says what a private instance changes in the shipped files.
type Private struct {
	Nodes        []string      // admin addresses (host:port) of the nodes to scrape
	Alertmanager string        // host:port of the Alertmanager
	Interval     time.Duration // scrape and evaluation interval (the shipped one is 15 s)
	For          time.Duration // every alert's `for`, so that a test need not wait minutes
}

// Render returns prometheus.yml and the rule files, rewritten for p: the
// names the config reads its rule files by, mapped to their content. It
// fails when a shipped file no longer has what it rewrites, so a change the
// renderer does not follow shows in the tests.
func Render(p Private) (config string, files map[string]string, err error) {
	b, err := fs.ReadFile(Files, "prometheus.yml")
	if err != nil {
		return "", nil, err
	}
	config = string(b)
	quote := func(addrs []string) string { return `["` + strings.Join(addrs, `", "`) + `"]` }
	iv := fmt.Sprintf("%ds", max(int(p.Interval.Seconds()), 1))
	for _, r := range []struct{ old, new string }{
		{"scrape_interval: 15s", "scrape_interval: " + iv},
		{"evaluation_interval: 15s", "evaluation_interval: " + iv},
		{"scrape_timeout: 5s", "scrape_timeout: " + iv},
		{`targets: ["127.0.0.1:9464"]`, "targets: " + quote(p.Nodes)},
		{`targets: ["127.0.0.1:9093"]`, "targets: " + quote([]string{p.Alertmanager})},
	} {
		if !strings.Contains(config, r.old) {
			return "", nil, fmt.Errorf("prometheus.yml has no %q to rewrite", r.old)
		}
		config = strings.Replace(config, r.old, r.new, 1)
	}
	files = map[string]string{}
	forRe := regexp.MustCompile(`(?m)^(\s+)for: \S+$`)
	intervalRe := regexp.MustCompile(`(?m)^(\s+)interval: \S+$`)
	for _, name := range []string{"rules/recording.yml", "rules/alerts.yml"} {
		b, err := fs.ReadFile(Files, name)
		if err != nil {
			return "", nil, err
		}
		s := forRe.ReplaceAllString(string(b), fmt.Sprintf("${1}for: %ds", int(p.For.Seconds())))
		files[name] = intervalRe.ReplaceAllString(s, "${1}interval: "+iv)
	}
	return config, files, nil
}
