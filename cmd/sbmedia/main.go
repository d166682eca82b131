// Command sbmedia measures the media pipeline on image files: for each
// file, the bytes in and out, the SSIM of the output against the original
// resized the same way, the time and the process's peak memory. It is the
// engine of scripts/bench-media.sh; docs/benchmarks.md has its numbers.
//
//	sbmedia [--side 2048] [--quality 80] FILE...          # one JSON line per file
//	sbmedia --ssim ORIGINAL OUTPUT.webp                   # the SSIM of another encoder's output
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/switchboard-chat/switchboard/internal/media"
)

type row struct {
	File      string  `json:"file"`
	InBytes   int64   `json:"in_bytes"`
	OutBytes  int64   `json:"out_bytes"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	SSIM      float64 `json:"ssim"`
	Seconds   float64 `json:"seconds"`
	MaxRSSMiB float64 `json:"max_rss_mib"` // of this process so far: run one file per process for a per-image peak
	Error     string  `json:"error,omitempty"`
}

func main() {
	side := flag.Int("side", 2048, "long side of the output")
	quality := flag.Int("quality", 80, "lossy WebP quality")
	ssimOnly := flag.Bool("ssim", false, "print the SSIM of OUTPUT.webp against ORIGINAL resized to its size")
	flag.Parse()
	if *ssimOnly {
		if flag.NArg() != 2 {
			fmt.Fprintln(os.Stderr, "usage: sbmedia --ssim ORIGINAL OUTPUT.webp")
			os.Exit(2)
		}
		s, err := media.CompareFiles(flag.Arg(0), flag.Arg(1))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%.4f\n", s)
		return
	}
	dir, err := os.MkdirTemp("", "sbmedia-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	p := media.New(&media.Dir{Path: dir}, media.Config{MaxSide: *side, Quality: *quality, MaxBytes: 64 << 20, MaxPixels: 100_000_000})
	enc := json.NewEncoder(os.Stdout)
	for _, f := range flag.Args() {
		r := row{File: f}
		b, err := os.ReadFile(f)
		if err == nil {
			r.InBytes = int64(len(b))
			start := time.Now()
			var res *media.Result
			res, err = p.Process(context.Background(), b)
			r.Seconds = time.Since(start).Seconds()
			if err == nil {
				r.OutBytes, r.Width, r.Height = res.Bytes, res.Width, res.Height
				r.SSIM, err = media.CompareBlob(b, p.Blobs(), res.Name)
			}
		}
		if err != nil {
			r.Error = err.Error()
		}
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			r.MaxRSSMiB = float64(ru.Maxrss) / 1024
		}
		enc.Encode(r)
	}
}
