package load

import (
	"math"
	"math/bits"
	"slices"
	"sync/atomic"
	"time"
)

// Histogram counts durations in microseconds in log-linear buckets: exact
// below 128 µs, then 64 buckets per power of two (at most 1.6 % wide), the
// way HdrHistogram does. Record is lock-free, so the pollers of one worker can
// share a Histogram; histograms of several workers merge exactly.
type Histogram struct {
	counts [histBuckets]atomic.Int64
	n      atomic.Int64
	sum    atomic.Int64
	max    atomic.Int64
}

const histBuckets = 58*64 + 128

func histIndex(v int64) int {
	if v < 128 {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 7
	return shift*64 + int(v>>shift)
}

// histUpper is the largest value that falls in bucket i.
func histUpper(i int) int64 {
	if i < 128 {
		return int64(i)
	}
	shift := i/64 - 1
	m := int64(i - shift*64)
	return (m+1)<<shift - 1
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	h.counts[histIndex(us)].Add(1)
	h.n.Add(1)
	h.sum.Add(us)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return h.n.Load() }

// HistogramData is a Histogram on the wire between worker and coordinator:
// only the buckets that are not empty.
type HistogramData struct {
	Buckets map[int]int64 `json:"buckets,omitempty"`
	Count   int64         `json:"count"`
	SumUS   int64         `json:"sum_us"`
	MaxUS   int64         `json:"max_us"`
}

// Data returns a snapshot.
func (h *Histogram) Data() HistogramData {
	d := HistogramData{Buckets: map[int]int64{}, Count: h.n.Load(), SumUS: h.sum.Load(), MaxUS: h.max.Load()}
	for i := range h.counts {
		if c := h.counts[i].Load(); c != 0 {
			d.Buckets[i] = c
		}
	}
	return d
}

// Merge adds a snapshot into d.
func (d *HistogramData) Merge(o HistogramData) {
	if d.Buckets == nil {
		d.Buckets = map[int]int64{}
	}
	for i, c := range o.Buckets {
		d.Buckets[i] += c
	}
	d.Count += o.Count
	d.SumUS += o.SumUS
	d.MaxUS = max(d.MaxUS, o.MaxUS)
}

// Latency is the summary's view of a histogram, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Latency computes the percentiles. A percentile is the upper edge of the
// bucket holding it (so it errs high by at most 1.6 %), capped at the max.
func (d HistogramData) Latency() Latency {
	if d.Count == 0 {
		return Latency{}
	}
	idx := make([]int, 0, len(d.Buckets))
	for i := range d.Buckets {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	q := func(p float64) float64 {
		rank := int64(math.Ceil(p * float64(d.Count)))
		var seen int64
		for _, i := range idx {
			seen += d.Buckets[i]
			if seen >= rank {
				return ms(min(histUpper(i), d.MaxUS))
			}
		}
		return ms(d.MaxUS)
	}
	return Latency{
		Count: d.Count,
		Mean:  round3(float64(d.SumUS) / float64(d.Count) / 1000),
		P50:   q(0.50),
		P95:   q(0.95),
		P99:   q(0.99),
		P999:  q(0.999),
		Max:   ms(d.MaxUS),
	}
}

func ms(us int64) float64 { return round3(float64(us) / 1000) }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
