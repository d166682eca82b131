package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Process collector names every node serves on GET /metrics.
const (
	metricRSS        = "process_resident_memory_bytes"
	metricCPU        = "process_cpu_seconds_total"
	metricFDs        = "process_open_fds"
	metricGoroutines = "go_goroutines"
	metricHeapInuse  = "go_memstats_heap_inuse_bytes"
)

// NodeSample is what one scrape of one node's /metrics says.
type NodeSample struct {
	URL        string    `json:"url"`
	At         time.Time `json:"at"`
	RSS        int64     `json:"rss_bytes"`
	CPUSeconds float64   `json:"cpu_seconds"`
	OpenFDs    int64     `json:"open_fds,omitempty"`
	Goroutines int64     `json:"goroutines,omitempty"`
	HeapInuse  int64     `json:"heap_inuse_bytes,omitempty"`
	Err        string    `json:"error,omitempty"`
}

// Sample is one scrape of every node at the same moment; RSS and CPU are
// the sums over the nodes (a run through NGINX drives several).
type Sample struct {
	At         time.Time    `json:"at"`
	RSS        int64        `json:"rss_bytes"`
	CPUSeconds float64      `json:"cpu_seconds"`
	Nodes      []NodeSample `json:"nodes"`
}

// complete says every node answered: a sum with a missing node is no
// measurement.
func (s Sample) complete() bool {
	for _, n := range s.Nodes {
		if n.Err != "" {
			return false
		}
	}
	return len(s.Nodes) > 0
}

// scraper reads the nodes' Prometheus text endpoints.
type scraper struct {
	urls []string
	hc   *http.Client
}

func newScraper(urls []string) *scraper {
	return &scraper{urls: urls, hc: &http.Client{Timeout: 5 * time.Second}}
}

// sample scrapes every node. A node that does not answer is recorded with
// its error, not fatal: a run measures what it can.
func (s *scraper) sample(ctx context.Context) Sample {
	out := Sample{At: time.Now().UTC()}
	for _, u := range s.urls {
		n := s.one(ctx, u)
		out.RSS += n.RSS
		out.CPUSeconds += n.CPUSeconds
		out.Nodes = append(out.Nodes, n)
	}
	return out
}

func (s *scraper) one(ctx context.Context, url string) NodeSample {
	n := NodeSample{URL: url, At: time.Now().UTC()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		n.Err = err.Error()
		return n
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		n.Err = err.Error()
		return n
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		n.Err = fmt.Sprintf("GET %s: %s", url, resp.Status)
		return n
	}
	vals, err := parseMetrics(resp.Body)
	if err != nil {
		n.Err = err.Error()
		return n
	}
	if _, ok := vals[metricRSS]; !ok {
		n.Err = "no " + metricRSS + " in /metrics"
	}
	n.RSS = int64(vals[metricRSS])
	n.CPUSeconds = vals[metricCPU]
	n.OpenFDs = int64(vals[metricFDs])
	n.Goroutines = int64(vals[metricGoroutines])
	n.HeapInuse = int64(vals[metricHeapInuse])
	return n
}

// parseMetrics reads the Prometheus text format and keeps the samples
// without labels (the process and Go collectors' gauges).
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		val, _, _ = strings.Cut(strings.TrimSpace(val), " ") // drop a timestamp
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		out[name] = f
	}
	return out, sc.Err()
}
