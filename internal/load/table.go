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
