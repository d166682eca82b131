package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/deploy/prometheus"
	"github.com/switchboard-chat/switchboard/internal/report"
)

// report renders the performance report of a run:
//
//	sbload report RUN.json [--series RUN.series.jsonl] [--prometheus URL | --prometheus-data F]
//	    [--html OUT.html] [--md OUT.md]
//
// With --prometheus it reads the run's window from that Prometheus and
// saves what it read as RUN.prometheus.json beside RUN.json (so the report
// can be made again from the files alone, with --prometheus-data).
func (m *Main) report(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	series := fs.String("series", "", "sbload's --series file of the run (default RUN.series.jsonl when it exists)")
	promURL := fs.String("prometheus", "", "base URL of a Prometheus that scraped the nodes during the run")
	promData := fs.String("prometheus-data", "", "what an earlier --prometheus saved (default RUN.prometheus.json when it exists and --prometheus is not given)")
	htmlOut := fs.String("html", "", "HTML report to write (default RUN.html)")
	mdOut := fs.String("md", "", "Markdown summary to write (default RUN.md)")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(m.Stderr, "usage: sbload report RUN.json [flags]")
		fs.PrintDefaults()
		return flag.ErrHelp
	}
	run := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	base := strings.TrimSuffix(run, ".json")
	or := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	in := report.Input{}
	var err error
	if in.Summary, err = report.ReadSummary(run); err != nil {
		return err
	}
	if p := or(*series, base+".series.jsonl"); *series != "" || exists(p) {
		if in.Series, err = report.ReadSeries(p); err != nil {
			return err
		}
	}
	switch saved := or(*promData, base+".prometheus.json"); {
	case *promURL != "":
		start, end := report.Window(in.Summary)
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if in.Prom, err = report.Fetch(fctx, strings.TrimSuffix(*promURL, "/"), start, end); err != nil {
			return err
		}
		if err := in.Prom.Save(saved); err != nil {
			return err
		}
		fmt.Fprintf(m.Stderr, "report: saved the Prometheus data in %s\n", saved)
	case *promData != "" || exists(saved):
		if in.Prom, err = report.LoadProm(saved); err != nil {
			return err
		}
	}
	r := report.Build(in)
	htmlPath, mdPath := or(*htmlOut, base+".html"), or(*mdOut, base+".md")
	write := func(path string, f func(*os.File) error) error {
		out, err := os.Create(path)
		if err != nil {
			return err
		}
		return errors.Join(f(out), out.Close())
	}
	if err := write(htmlPath, func(f *os.File) error { return r.HTML(f) }); err != nil {
		return err
	}
	rel, _ := filepath.Rel(filepath.Dir(mdPath), htmlPath)
	if err := write(mdPath, func(f *os.File) error { return r.Markdown(f, rel) }); err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "report: %s, %s\n", htmlPath, mdPath)
	return nil
}

// prometheusConf writes the shipped Prometheus config and rules, rendered
// for a private instance scraping the given admin addresses, into dir:
//
//	sbload prometheus-conf --dir DIR [--interval 2s] ADMIN_ADDR...
func (m *Main) prometheusConf(args []string) error {
	fs := flag.NewFlagSet("prometheus-conf", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	dir := fs.String("dir", "", "folder for prometheus.yml and rules/")
	interval := fs.Duration("interval", 2*time.Second, "scrape and rule evaluation interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() == 0 {
		return fmt.Errorf("prometheus-conf: --dir and at least one node admin address (host:port) are required")
	}
	var nodes []string
	for _, a := range fs.Args() {
		nodes = append(nodes, strings.TrimSuffix(strings.TrimPrefix(a, "http://"), "/metrics"))
	}
	// No Alertmanager here: alerts are evaluated and shown by Prometheus.
	config, files, err := prometheus.Render(prometheus.Private{Nodes: nodes, Alertmanager: "127.0.0.1:9", Interval: *interval, For: *interval})
	if err != nil {
		return err
	}
	files["prometheus.yml"] = config
	for name, content := range files {
		p := filepath.Join(*dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
