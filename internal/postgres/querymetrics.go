package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// queryOps are the values of the op label: the statement's verb, a batch
// or a COPY; anything else is "other". A fixed list, never the SQL text.
var queryOps = []string{"select", "insert", "update", "delete", "with", "begin", "commit", "rollback", "batch", "copy", "other"}

// queryTimer is the pool's pgx tracer: it times every query, batch and
// COPY into switchboard_store_query_latency_ms{op, pool}. pgx calls it
// around each statement; the start time and op travel in the context (one
// small allocation per statement, next to pgx's own).
type queryTimer struct {
	vec  *prometheus.HistogramVec
	byOp map[string]prometheus.Observer // read-only after newQueryTimer
}

func newQueryTimer(pool string) *queryTimer {
	t := &queryTimer{
		vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "switchboard_store_query_latency_ms",
			Help:        "PostgreSQL statements (and batches, COPYs) by operation, in milliseconds: from sending to the last row read.",
			Buckets:     []float64{0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000},
			ConstLabels: prometheus.Labels{"pool": pool}}, []string{"op"}),
		byOp: map[string]prometheus.Observer{},
	}
	for _, op := range queryOps {
		t.byOp[op] = t.vec.WithLabelValues(op)
	}
	return t
}

type timing struct {
	start time.Time
	op    string
}

type timingKey struct{}

func (t *queryTimer) start(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, timingKey{}, &timing{time.Now(), op})
}

func (t *queryTimer) end(ctx context.Context) {
	if tm, ok := ctx.Value(timingKey{}).(*timing); ok {
		t.byOp[tm.op].Observe(float64(time.Since(tm.start)) / float64(time.Millisecond))
	}
}

// verbs are the statement verbs with their own op.
var verbs = map[string]bool{"select": true, "insert": true, "update": true, "delete": true, "with": true,
	"begin": true, "commit": true, "rollback": true}

// opOf is the statement's first word if it is a known verb.
func opOf(sql string) string {
	sql = strings.TrimLeft(sql, " \t\r\n(")
	i := strings.IndexAny(sql, " \t\r\n;(")
	if i < 0 {
		i = len(sql)
	}
	if verb := strings.ToLower(sql[:i]); verbs[verb] {
		return verb
	}
	return "other"
}

func (t *queryTimer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return t.start(ctx, opOf(data.SQL))
}

func (t *queryTimer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	t.end(ctx)
}

func (t *queryTimer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return t.start(ctx, "batch")
}

func (t *queryTimer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t *queryTimer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	t.end(ctx)
}

func (t *queryTimer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return t.start(ctx, "copy")
}

func (t *queryTimer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	t.end(ctx)
}
