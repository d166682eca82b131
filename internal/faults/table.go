package faults

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// The table in docs/reliability.md lies between these markers; the suite
// rewrites it (go test ./internal/faults -faults.update) and a test checks
// that its rows name exactly the suite's scenarios.
const (
	tableBegin = "<!-- faults:table:begin (written by internal/faults; do not edit by hand) -->"
	tableEnd   = "<!-- faults:table:end -->"
)

var tableHeader = []string{"scenario", "devices", "acknowledged", "expected deliveries", "delivered",
	"lost", "duplicated", "out of order", "holes on the wire", "time to recover", "command"}

// Row formats r as a table row, with the command that produced it.
func (r Result) Row(command string) string {
	rec := r.Recover.Round(10 * time.Millisecond).String()
	if !r.Recovered {
		rec = "not within " + rec
	}
	cells := []string{r.Scenario, fmt.Sprint(r.Devices), fmt.Sprint(r.Acknowledged), fmt.Sprint(r.Expected),
		fmt.Sprint(r.Delivered), fmt.Sprint(r.Lost), fmt.Sprint(r.Duplicated), fmt.Sprint(r.OutOfOrder),
		fmt.Sprint(r.Holes), rec, "`" + command + "`"}
	return "| " + strings.Join(cells, " | ") + " |"
}

// TableRows returns the rows of the table in doc, keyed by scenario, and
// the scenarios in the order they appear.
func TableRows(doc string) (rows map[string]string, order []string, err error) {
	_, rest, ok := strings.Cut(doc, tableBegin)
	body, _, ok2 := strings.Cut(rest, tableEnd)
	if !ok || !ok2 {
		return nil, nil, errors.New("no table markers")
	}
	rows = map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "| scenario") || strings.HasPrefix(line, "|---") {
			continue
		}
		name := strings.TrimSpace(strings.Split(line, "|")[1])
		rows[name] = line
		order = append(order, name)
	}
	return rows, order, nil
}

// UpdateTable rewrites the table of the file at path: the rows of results
// replace those of the same scenarios; the rows come in the order of names.
func UpdateTable(path string, names []string, results map[string]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(b)
	old, _, err := TableRows(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var t strings.Builder
	t.WriteString(tableBegin + "\n")
	t.WriteString("| " + strings.Join(tableHeader, " | ") + " |\n")
	t.WriteString("|" + strings.Repeat("---|", len(tableHeader)) + "\n")
	for _, n := range names {
		row := results[n]
		if row == "" {
			row = old[n]
		}
		if row == "" {
			row = "| " + n + " |" + strings.Repeat(" |", len(tableHeader)-1)
		}
		t.WriteString(row + "\n")
	}
	t.WriteString(tableEnd)
	before, rest, _ := strings.Cut(doc, tableBegin)
	_, after, _ := strings.Cut(rest, tableEnd)
	return os.WriteFile(path, []byte(before+t.String()+after), 0o644)
}
