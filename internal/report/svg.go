package report

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
)

// Chart is a line chart over the run's seconds.
type Chart struct {
	Title string
	Unit  string // appended to the y labels
	Lines []Line
}

// Line is one series of a chart: (seconds since the run's start, value).
type Line struct {
	Name   string
	Points [][2]float64
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// charts gathers the time charts from what the run has: sbload's series
// (sockets, RSS) and Prometheus's (per node).
func charts(in Input) []Chart {
	var out []Chart
	if len(in.Series) > 0 {
		var conns, rss, perConn []([2]float64)
		rss0 := float64(in.Series[0].RSS)
		for _, p := range in.Series {
			conns = append(conns, [2]float64{p.T, float64(p.Connected)})
			rss = append(rss, [2]float64{p.T, float64(p.RSS)})
			if p.Connected >= 100 {
				perConn = append(perConn, [2]float64{p.T, (float64(p.RSS) - rss0) / float64(p.Connected)})
			}
		}
		out = append(out, Chart{Title: "Sockets connected (sbload)", Lines: []Line{{"connected", conns}}},
			Chart{Title: "Nodes' resident memory, summed (sbload's scrapes)", Unit: " B", Lines: []Line{{"RSS", rss}}})
		if len(perConn) > 0 {
			out = append(out, Chart{Title: "Memory per connection: (RSS - RSS at start) / sockets (from 100 sockets)", Unit: " B",
				Lines: []Line{{"bytes per socket", perConn}}})
		}
	}
	if p := in.Prom; p != nil {
		t0 := float64(p.Start.UnixMilli()) / 1000
		lines := func(key, label string) []Line {
			var ls []Line
			for _, s := range p.Range[key] {
				name := s.Metric[label]
				if name == "" {
					name = key
				}
				l := Line{Name: name}
				for _, pt := range s.Values {
					if !math.IsNaN(pt[1]) && !math.IsInf(pt[1], 0) {
						l.Points = append(l.Points, [2]float64{pt[0] - t0, pt[1]})
					}
				}
				ls = append(ls, l)
			}
			sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
			return ls
		}
		rates := append(lines("sent_rate", ""), lines("delivered_rate", "")...)
		for i := range rates {
			rates[i].Name = strings.TrimSuffix(rates[i].Name, "_rate")
		}
		out = append(out,
			Chart{Title: "WebSocket connections per node (Prometheus)", Lines: lines("connections", "instance")},
			Chart{Title: "Memory per connection per node (Prometheus)", Unit: " B", Lines: lines("mem_per_conn", "instance")},
			Chart{Title: "CPU per node, % of the host (Prometheus)", Unit: " %", Lines: lines("cpu", "instance")},
			Chart{Title: "Messages per second, cluster (Prometheus)", Unit: "/s", Lines: rates},
			Chart{Title: "Fan-out p95, commit to socket (Prometheus)", Unit: " ms", Lines: lines("fanout_p95", "")},
		)
	}
	return out
}

// SVG draws c as an inline SVG element.
func (c Chart) SVG() string {
	const w, h, left, right, top, bottom = 760.0, 240.0, 78.0, 16.0, 26.0, 30.0
	xmax, ymax := 1.0, 0.0
	for _, l := range c.Lines {
		for _, p := range l.Points {
			xmax, ymax = math.Max(xmax, p[0]), math.Max(ymax, p[1])
		}
	}
	ymax = nice(ymax)
	x := func(v float64) float64 { return left + v/xmax*(w-left-right) }
	y := func(v float64) float64 { return h - bottom - v/ymax*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s">`,
		w, h, w, h, html.EscapeString(c.Title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%.0f" height="%.0f" fill="#fff"/>`, w, h)
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, left, w-right, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end" font-family="sans-serif">%s%s</text>`,
			left-4, y(v)+4, short(v), html.EscapeString(c.Unit))
	}
	for i := 0; i <= 4; i++ {
		v := xmax * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle" font-family="sans-serif">%.0f s</text>`, x(v), h-10, v)
	}
	for i, l := range c.Lines {
		color := palette[i%len(palette)]
		var pts []string
		for _, p := range l.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%.1f" y="6" width="10" height="10" fill="%s"/><text x="%.1f" y="15" font-size="11" font-family="sans-serif">%s</text>`,
			left+float64(i)*150, color, left+14+float64(i)*150, html.EscapeString(l.Name))
	}
	if len(c.Lines) == 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="13" text-anchor="middle" font-family="sans-serif">no data</text>`, w/2, h/2)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// BarsSVG draws horizontal bars, labelled with their values formatted by f.
func BarsSVG(bars []Bar, f func(float64) string) string {
	const w, rowH, left, right = 760.0, 22.0, 120.0, 90.0
	h := rowH*float64(len(bars)) + 8
	vmax := 0.0
	for _, b := range bars {
		vmax = math.Max(vmax, b.Value)
	}
	if vmax <= 0 {
		vmax = 1
	}
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img">`, w, h, w, h)
	for i, b := range bars {
		y := 4 + float64(i)*rowH
		bw := b.Value / vmax * (w - left - right)
		fmt.Fprintf(&s, `<text x="%.0f" y="%.1f" font-size="12" text-anchor="end" font-family="sans-serif">%s</text>`, left-6, y+14, html.EscapeString(b.Label))
		fmt.Fprintf(&s, `<rect x="%.0f" y="%.1f" width="%.1f" height="%.0f" fill="%s"/>`, left, y+2, bw, rowH-6, palette[0])
		fmt.Fprintf(&s, `<text x="%.1f" y="%.1f" font-size="12" font-family="sans-serif">%s</text>`, left+bw+6, y+14, html.EscapeString(f(b.Value)))
	}
	s.WriteString(`</svg>`)
	return s.String()
}

// nice rounds v up to 1, 2 or 5 times a power of ten.
func nice(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// short writes v with k/M/G suffixes.
func short(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return trim(v/1e9) + "G"
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e3:
		return trim(v/1e3) + "k"
	}
	return trim(v)
}

func trim(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
