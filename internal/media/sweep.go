package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Sweep deletes every attachment last used (uploaded, or named by a send)
// before cutoff, its bytes first and then its facts, so that a crash in
// between leaves facts that the next sweep deletes again; it returns how
// many it deleted. The node calls it with now minus the retention period
// (cmd/switchboard), when chat's retention has purged every message that
// could name such an attachment; an upload never sent is deleted after
// the same period. Images (POST /v1/media) are not swept: what refers to
// them (a profile, an end-to-end-encrypted message) is out of the node's
// sight, and their URLs are promised immutable.
func (s *Attachments) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	deleted := 0
	err := filepath.WalkDir(s.Path, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // no attachment yet, or a folder a sweep on another node just emptied
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		id, ok := strings.CutSuffix(d.Name(), ".json")
		if d.IsDir() || !ok {
			return nil
		}
		gone, err := s.sweepOne(ctx, id, cutoff)
		if err != nil {
			return err
		}
		if gone {
			deleted++
		}
		return nil
	})
	if err != nil {
		return deleted, fmt.Errorf("media: sweep: %w", err)
	}
	return deleted, nil
}

// sweepOne deletes attachment id if it was last used before cutoff. It
// holds the lock, so a Grant on this node either comes first (and keeps
// it) or finds it gone.
func (s *Attachments) sweepOne(ctx context.Context, id string, cutoff time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.file(id)
	if err != nil {
		return false, nil // not a facts file of ours
	}
	st, err := os.Stat(p)
	if err != nil {
		return false, nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return false, nil
	}
	var a Attachment
	if err := json.Unmarshal(b, &a); err != nil {
		return false, nil // unreadable: left for a human, never guessed at
	}
	if !a.lastUsed(st.ModTime()).Before(cutoff) {
		return false, nil
	}
	if err := s.Blobs.Delete(ctx, id+".bin"); err != nil {
		return false, err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// sweepMargin is how long after its last message expired an attachment is
// kept: Grant runs just before the send it names, so the message's own
// time is a little later than LastSent, and chat's retention runs on its
// own clock.
const sweepMargin = time.Hour

// RunSweep sweeps every interval, deleting the attachments last used more
// than period (chat's retention period) plus sweepMargin ago, until ctx
// ends. Nodes sharing the folder may all run it: deleting twice is harmless.
func (s *Attachments) RunSweep(ctx context.Context, period, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.Sweep(ctx, s.now().Add(-period-sweepMargin))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("media: attachment sweep failed", "deleted", n, "err", err)
		case n > 0:
			log.Info("media: attachments deleted after retention", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
