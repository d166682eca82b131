package chat

import (
	"context"
	"time"
)

// RetentionConfig says what stored ciphertext the node deletes, and how often it looks.
type RetentionConfig struct {
	Period   time.Duration // delete messages older than this [30 days]
	OnAck    bool          // also delete a device's ciphertext once that device acked it
	Interval time.Duration // pause between passes [1 minute]
	Batch    int           // rows per transaction, so sends are never blocked for long [500]
}

// RunRetention deletes expired (and, with OnAck, acked) ciphertexts in
// batches until ctx ends. Each pass loops until a batch comes back short.
func (s *Service) RunRetention(ctx context.Context, cfg RetentionConfig) {
	cfg.setDefaults()
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		s.Purge(ctx, cfg)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (cfg *RetentionConfig) setDefaults() {
	if cfg.Period == 0 {
		cfg.Period = 30 * 24 * time.Hour
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Batch == 0 {
		cfg.Batch = 500
	}
}

// Purge is one retention pass: batches until none comes back full.
func (s *Service) Purge(ctx context.Context, cfg RetentionConfig) {
	cfg.setDefaults()
	purge := func(what string, f func() (int, error)) {
		total := 0
		for ctx.Err() == nil {
			n, err := f()
			if err != nil {
				s.cfg.Logger.Warn("retention: purge failed", "what", what, "err", err)
				return
			}
			total += n
			if n < cfg.Batch {
				break
			}
		}
		if total > 0 {
			s.cfg.Logger.Info("retention: purged", "what", what, "rows", total)
		}
	}
	cutoff := s.cfg.Now().Add(-cfg.Period)
	purge("expired messages", func() (int, error) { return s.store.PurgeBefore(ctx, cutoff, cfg.Batch) })
	if cfg.OnAck {
		purge("acked ciphertexts", func() (int, error) { return s.store.PurgeAcked(ctx, cfg.Batch) })
	}
}
