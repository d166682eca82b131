package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/redisstate"
)

// sharedLimiter fits redisstate's limits to chat.Limiter.
type sharedLimiter struct{ *redisstate.State }

func (l sharedLimiter) Take(ctx context.Context, name, key string, b chat.Bucket, n float64) (time.Duration, error) {
	return l.State.Take(ctx, name, key, b.Rate, b.Burst, n)
}

var (
	_ chat.Limiter      = sharedLimiter{}
	_ chat.SessionCache = (*redisstate.State)(nil)
)

// openShared connects the state nodes share in Redis (--redis) or a Redis
// Cluster (--redis-cluster): the abuse limits count across the cluster (on
// this node while Redis fails) and token lookups are cached there. It sets
// cc's Limiter and Sessions and registers the metrics.
func openShared(ctx context.Context, rc redisstate.Config, cc *chat.Config, reg prometheus.Registerer, log *slog.Logger) (*redisstate.State, error) {
	st, err := redisstate.OpenConfig(ctx, rc)
	if err != nil {
		return nil, err
	}
	limiter := chat.NewFallbackLimiter(sharedLimiter{st}, log)
	cc.Limiter, cc.Sessions = limiter, st
	err = st.Register(reg)
	if err == nil {
		err = reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "switchboard_limiter_fallbacks_total",
			Help: "Limit decisions counted on this node only because Redis failed (limits then hold per node)."},
			func() float64 { return float64(limiter.Fallbacks()) }))
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("shared state metrics: %w", err)
	}
	return st, nil
}

// registerSessionCache adds the session cache's hit and miss counters.
func registerSessionCache(reg prometheus.Registerer, svc *chat.Service) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "switchboard_session_cache_hits_total",
			Help: "Token lookups answered by the session cache in Redis."},
			func() float64 { h, _ := svc.SessionCacheStats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "switchboard_session_cache_misses_total",
			Help: "Token lookups that read the store (not cached, or the cache failed)."},
			func() float64 { _, m := svc.SessionCacheStats(); return float64(m) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
