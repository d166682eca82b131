package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// HTML writes the report as one self-contained page: styles inline,
// charts as inline SVG, no script and nothing fetched.
func (r *Report) HTML(w io.Writer) error {
	return page.Execute(w, r)
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"svg": func(c Chart) template.HTML { return template.HTML(c.SVG()) }, // #nosec: built from numbers and escaped names
	"latency": func(b []Bar) template.HTML {
		return template.HTML(BarsSVG(b, func(v float64) string { return fmt.Sprintf("%.1f ms", v) }))
	},
	"share": func(b []Bar) template.HTML {
		return template.HTML(BarsSVG(b, func(v float64) string { return fmt.Sprintf("%.1f %%", 100*v) }))
	},
	"num": func(v float64) string { return num(v) },
	"md":  func(s string) template.HTML { return template.HTML(boldOnly(s)) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:sans-serif;max-width:820px;margin:2em auto;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f4f4f4}.pass{color:#1a7f37;font-weight:bold}.fail{color:#c62828;font-weight:bold}.na{color:#777}
code{background:#f4f4f4;padding:1px 4px}h2{margin-top:2em;border-bottom:1px solid #ddd}
</style></head><body>
<h1>{{.Title}}</h1>
<p>Run of {{.Date.Format "2006-01-02 15:04:05 UTC"}} on {{.Machine.Hostname}} ({{.Machine.NProc}} cores, {{.Machine.CPUModel}}, open-file limit {{.Machine.FileLimit}}); {{.Nodes}} node(s).</p>
<p><code>{{.Command}}</code></p>
<h2>Definition of Done</h2>
<table><tr><th>figure</th><th>target</th><th>measured</th><th>verdict</th><th>from</th></tr>
{{range .Rows}}<tr><td>{{.What}}</td><td>{{.Target}}</td><td>{{.Measured}}</td><td class="{{if eq .Verdict "pass" "fail"}}{{.Verdict}}{{else}}na{{end}}">{{.Verdict}}</td><td>{{.Source}}</td></tr>
{{end}}</table>
<h2>Recommendations</h2>
<ol>{{range .Recs}}<li>{{md .}}</li>{{end}}</ol>
{{if .Latency}}<h2>Latency distribution (send to receive, sbload)</h2>{{latency .Latency}}{{end}}
{{if .FanOut}}<h2>Fan-out latency, commit to socket (nodes, share of messages)</h2>{{share .FanOut}}{{end}}
<h2>Over time</h2>
{{range .Charts}}<h3>{{.Title}}</h3>{{svg .}}{{end}}
{{if .PerNode}}<h2>Per node</h2>
<table><tr><th>node</th><th>max sockets</th><th>sent</th><th>delivered</th><th>max CPU %</th><th>memory per socket (median)</th><th>fan-out p95 ms</th></tr>
{{range .PerNode}}<tr><td>{{.Instance}}</td><td>{{num .MaxConns}}</td><td>{{num .Sent}}</td><td>{{num .Delivered}}</td><td>{{num .MaxCPU}}</td><td>{{num .MemPerConn}}</td><td>{{num .FanP95}}</td></tr>
{{end}}</table>{{end}}
<h2>Errors</h2>
{{if .Errors}}<table><tr><th>kind</th><th>count</th></tr>{{range .Errors}}<tr><td>{{.Key}}</td><td>{{num .Value}}</td></tr>{{end}}</table>{{else}}<p>None.</p>{{end}}
{{if .Notes}}<h2>Notes</h2><ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p style="color:#777;font-size:12px">Made by <code>sbload report</code>; targets are the seed's per node.</p>
</body></html>
`))

// boldOnly escapes s and turns **x** into <b>x</b>, the only markup the
// recommendations use.
func boldOnly(s string) string {
	s = template.HTMLEscapeString(s)
	for {
		i := strings.Index(s, "**")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i+2:], "**")
		if j < 0 {
			return s
		}
		s = s[:i] + "<b>" + s[i+2:i+2+j] + "</b>" + s[i+4+j:]
	}
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return thousands(v)
	}
	return fmt.Sprintf("%.1f", v)
}

// Markdown writes the summary: the DoD table, the recommendations, the
// latency percentiles, per-node split and errors (the charts are in the HTML).
func (r *Report) Markdown(w io.Writer, htmlName string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	fmt.Fprintf(&b, "Run of %s on %s (%d cores, open-file limit %d), %d node(s). Charts: [%s](%s).\n\n",
		r.Date.Format("2006-01-02 15:04:05 UTC"), r.Machine.Hostname, r.Machine.NProc, r.Machine.FileLimit, r.Nodes, htmlName, htmlName)
	fmt.Fprintf(&b, "```\n%s\n```\n\n", r.Command)
	b.WriteString("## Definition of Done\n\n| figure | target | measured | verdict | from |\n|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", row.What, row.Target, row.Measured, row.Verdict, row.Source)
	}
	b.WriteString("\n## Recommendations\n\n")
	for i, rec := range r.Recs {
		fmt.Fprintf(&b, "%d. %s\n", i+1, rec)
	}
	if len(r.Latency) > 0 {
		b.WriteString("\n## Latency, send to receive (sbload)\n\n|")
		for _, l := range r.Latency {
			fmt.Fprintf(&b, " %s |", l.Label)
		}
		b.WriteString("\n|" + strings.Repeat("---|", len(r.Latency)) + "\n|")
		for _, l := range r.Latency {
			fmt.Fprintf(&b, " %.1f ms |", l.Value)
		}
		b.WriteString("\n")
	}
	if len(r.PerNode) > 0 {
		b.WriteString("\n## Per node (Prometheus)\n\n| node | max sockets | sent | delivered | max CPU % | memory per socket (median) | fan-out p95 ms |\n|---|---|---|---|---|---|---|\n")
		for _, n := range r.PerNode {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", n.Instance, num(n.MaxConns), num(n.Sent), num(n.Delivered), num(n.MaxCPU), num(n.MemPerConn), num(n.FanP95))
		}
	}
	b.WriteString("\n## Errors\n\n")
	if len(r.Errors) == 0 {
		b.WriteString("None.\n")
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "- %s: %s\n", e.Key, num(e.Value))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
