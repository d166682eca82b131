// Package rediscore holds what the two Redis adapters, internal/redisbus
// and internal/redisstate, do alike: turn the node's --redis URL or its
// --redis-cluster seed addresses into one rueidis client's options. Like
// internal/sqlcore for the SQL stores, it lets each adapter stay on its own
// while the shared part is written once.
package rediscore

import "github.com/redis/rueidis"

// Options returns the client options for the Redis Cluster whose seed
// addresses (host:port) are cluster, or, when cluster is empty, for the
// Redis at url (redis://[user:password@]host:port/db). Client-side caching
// is off: the adapters only publish, subscribe and run scripts. On a
// cluster rueidis routes each command to its slot's primary (following
// MOVED after a failover) and splits a pipeline by slot.
func Options(url string, cluster []string) (rueidis.ClientOption, error) {
	var opt rueidis.ClientOption
	if len(cluster) > 0 {
		opt = rueidis.ClientOption{InitAddress: cluster, ShuffleInit: true}
	} else {
		var err error
		if opt, err = rueidis.ParseURL(url); err != nil {
			return opt, err
		}
	}
	opt.DisableCache = true
	return opt, nil
}
