package load

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
)

// PrintTable prints one row per summary file: the memory-per-connection
// table of scripts/bench-memory.sh.
func PrintTable(w io.Writer, files []string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "conns\tconnected\terrors\tRSS at 0 (MiB)\tRSS at N (MiB)\tbytes/conn\tslope/conn\theap/conn\tgoroutines 0→N\tconnect p50 (ms)\tp99 (ms)\tnode cpu ms/connect\tsbload peak RSS/conn\tsbload ramp cpu %\t")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var s Summary
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t%d→%d\t%.2f\t%.2f\t%.2f\t%.0f\t%.0f\t\n",
			s.Conns.Wanted, s.Conns.AtEnd, s.ErrorsTotal,
			float64(s.Server.RSSAt0)/(1<<20), float64(s.Server.RSSAtN)/(1<<20), s.Server.BytesPerConn, s.Server.RSSSlope, s.Server.HeapBytesPerConn, s.Server.GoroutinesAt0, s.Server.GoroutinesAtN,
			s.ConnectLatency.P50, s.ConnectLatency.P99, s.Server.CPUPerConnectMS, s.LoadGen.PeakRSSPerConn, s.LoadGen.RampCPUPercent)
	}
	return tw.Flush()
}

// BroadcastRow is one line of the broadcast table: the same client run
// against the bare broadcast server and against a node.
type BroadcastRow struct {
	Conns      int               `json:"conns"`
	Bare       *BroadcastSummary `json:"bare"`
	Full       *BroadcastSummary `json:"full"`
	BareFile   string            `json:"bare_summary"`
	FullFile   string            `json:"full_summary"`
	Ratio      float64           `json:"ratio"` // full / bare deliveries per second
	BareErrors int64             `json:"bare_errors"`
	FullErrors int64             `json:"full_errors"`
}

// BroadcastRows reads pairs of summaries (bare, full, bare, full, ...).
func BroadcastRows(files []string) ([]BroadcastRow, error) {
	if len(files) == 0 || len(files)%2 != 0 {
		return nil, fmt.Errorf("want pairs of summaries: bare.json full.json ...")
	}
	var rows []BroadcastRow
	for i := 0; i < len(files); i += 2 {
		var sums [2]Summary
		for j := range sums {
			b, err := os.ReadFile(files[i+j])
			if err != nil {
				return nil, err
			}
			if err := json.Unmarshal(b, &sums[j]); err != nil {
				return nil, fmt.Errorf("%s: %w", files[i+j], err)
			}
			if sums[j].Broadcast == nil {
				return nil, fmt.Errorf("%s: not a broadcast summary", files[i+j])
			}
		}
		r := BroadcastRow{Conns: sums[1].Conns.Wanted, Bare: sums[0].Broadcast, Full: sums[1].Broadcast,
			BareFile: files[i], FullFile: files[i+1], BareErrors: sums[0].ErrorsTotal, FullErrors: sums[1].ErrorsTotal}
		if r.Bare.DeliveriesPerSecond > 0 {
			r.Ratio = round3(r.Full.DeliveriesPerSecond / r.Bare.DeliveriesPerSecond)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// PrintBroadcastTable prints the table of scripts/bench-broadcast.sh from
// pairs of summaries (bare, full, ...).
func PrintBroadcastTable(w io.Writer, files []string) error {
	rows, err := BroadcastRows(files)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tbare deliveries/s\tfull deliveries/s\tfull/bare\tbare round ms\tfull round ms\tbare p95 ms\tfull p95 ms\tfull p99 ms\tfull sent ms p50\tzero loss bare/full\terrors bare/full\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f %%\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%v/%v\t%d/%d\t\n",
			r.Conns, r.Bare.DeliveriesPerSecond, r.Full.DeliveriesPerSecond, r.Ratio*100, r.Bare.RoundMillis, r.Full.RoundMillis,
			r.Bare.DeliveryLatency.P95, r.Full.DeliveryLatency.P95, r.Full.DeliveryLatency.P99, r.Full.CommitLatency.P50,
			r.Bare.ZeroLoss, r.Full.ZeroLoss, r.BareErrors, r.FullErrors)
	}
	return tw.Flush()
}
