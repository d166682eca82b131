package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// requests ends the context of an HTTP request when its connection closes
// before its handler returns, or when the handler has run for the request
// timeout. nbhttp hands handlers a context that never ends, so a handler
// could not tell that nobody would read its answer: a login whose client
// gave up went on to create a device whose token nobody received (enough
// of them lock the user out with too_many_devices). With this, the
// handlers' own context checks (chat.Service.Login's, before its commit)
// see the caller gone.
//
// nbhttp runs a connection's close callback on the connection's executor,
// after the handler in flight returns, so it cannot tell the handler. The
// poller marks the connection closed at once, though: watch looks at the
// connections of the requests in flight every watchInterval.
type requests struct {
	timeout time.Duration
	m       sync.Map // *inflight → *nbio.Conn, while its handler runs
}

type inflight struct{ cancel context.CancelFunc }

// watchInterval is how soon a handler's context ends after its connection
// closed.
const watchInterval = 100 * time.Millisecond

// wrap gives each request of next a context that ends as above.
func (q *requests) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), q.timeout)
		defer cancel()
		if c := pollerConn(w); c != nil {
			f := &inflight{cancel}
			q.m.Store(f, c)
			defer q.m.Delete(f)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// watch ends the contexts of requests whose connection closed, until done
// is closed.
func (q *requests) watch(done <-chan struct{}) {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			q.m.Range(func(k, v any) bool {
				if closed, _ := v.(*nbio.Conn).IsClosed(); closed {
					k.(*inflight).cancel()
					q.m.Delete(k)
				}
				return true
			})
		}
	}
}

// pollerConn is the nbio connection a response goes to: nbhttp wraps the
// accepted connection in its own Conn.
func pollerConn(w http.ResponseWriter) *nbio.Conn {
	res, ok := w.(*nbhttp.Response)
	if !ok || res.Parser == nil {
		return nil
	}
	c := res.Parser.Conn
	if hc, ok := c.(*nbhttp.Conn); ok {
		c = hc.Conn
	}
	nc, _ := c.(*nbio.Conn)
	return nc
}
