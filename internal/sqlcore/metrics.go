package sqlcore

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// commitBuckets are batch sizes: one send alone up to MaxBatch and the ack
// queue's 2048.
var commitBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048}

// latencyBuckets are milliseconds, as the node's other latency histograms.
var latencyBuckets = []float64{0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// RegisterQueues adds the group-commit metrics of a store's queues to reg:
// batch sizes and commit latency, labelled by queue ("append": messages,
// every lane together; "ack": device cursors). The store calls it from its
// own Register: the queues are its.
func RegisterQueues(reg prometheus.Registerer, appends []*AppendQueue, acks *AckQueue) error {
	size := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "switchboard_commit_batch_size",
		Help: "Jobs per group commit (one transaction, one fsync), by queue.", Buckets: commitBuckets}, []string{"queue"})
	took := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "switchboard_commit_latency_ms",
		Help: "How long one group commit took (read, decide, write, commit), by queue, in milliseconds.", Buckets: latencyBuckets}, []string{"queue"})
	for _, c := range []prometheus.Collector{size, took} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	observer := func(queue string) func(int, time.Duration) {
		s, t := size.WithLabelValues(queue), took.WithLabelValues(queue)
		return func(jobs int, d time.Duration) {
			s.Observe(float64(jobs))
			t.Observe(float64(d) / float64(time.Millisecond))
		}
	}
	for _, q := range appends {
		q.Observe(observer("append"))
	}
	acks.q.Observe(observer("ack"))
	return nil
}
