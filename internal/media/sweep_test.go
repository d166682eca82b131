package media

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSweepDeletesAttachmentsPastRetention: an attachment lives until the
// retention period has passed since the last send that named it (or since
// its upload, if it was never sent); then its bytes and facts go.
func TestSweepDeletesAttachmentsPastRetention(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	s := &Attachments{Blobs: &Dir{Path: filepath.Join(dir, "blobs")}, Path: filepath.Join(dir, "attachments"), Now: func() time.Time { return now }}
	exists := func(id string) bool {
		_, err := s.Get(id)
		f, oerr := s.Blobs.Open(ctx, id+".bin")
		if oerr == nil {
			f.Close()
		}
		if (err == nil) != (oerr == nil) {
			t.Fatalf("%s: facts %v but bytes %v", id, err, oerr)
		}
		return err == nil
	}
	create := func() string {
		a, err := s.Create(ctx, "usr_a", []byte("ciphertext"))
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	neverSent := create()
	sentEarly := create()
	if err := s.Grant(sentEarly, "cnv_1"); err != nil {
		t.Fatal(err)
	}
	forwarded := create()
	if err := s.Grant(forwarded, "cnv_1"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * 24 * time.Hour)
	if err := s.Grant(forwarded, "cnv_2"); err != nil { // forwarded ten days later
		t.Fatal(err)
	}
	resent := create()
	if err := s.Grant(resent, "cnv_1"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(5 * 24 * time.Hour)
	if err := s.Grant(resent, "cnv_1"); err != nil { // the same conversation again
		t.Fatal(err)
	}

	t.Run("nothing goes before its period", func(t *testing.T) {
		n, err := s.Sweep(ctx, now.Add(-30*24*time.Hour))
		if err != nil || n != 0 {
			t.Fatalf("deleted %d, %v", n, err)
		}
	})
	t.Run("the uploads last used before the cutoff go, the others stay", func(t *testing.T) {
		cutoff := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC).Add(time.Hour) // after the first day's uploads and sends
		n, err := s.Sweep(ctx, cutoff)
		if err != nil || n != 2 {
			t.Fatalf("deleted %d, %v; want 2", n, err)
		}
		for id, want := range map[string]bool{neverSent: false, sentEarly: false, forwarded: true, resent: true} {
			if exists(id) != want {
				t.Errorf("%s exists: %v, want %v", id, !want, want)
			}
		}
	})
	t.Run("a send again keeps it from its own time", func(t *testing.T) {
		n, err := s.Sweep(ctx, now.Add(-time.Hour)) // after the forward, before the resend
		if err != nil || n != 1 || exists(forwarded) || !exists(resent) {
			t.Fatalf("deleted %d, %v; forwarded %v, resent %v", n, err, exists(forwarded), exists(resent))
		}
	})
	t.Run("a swept attachment is gone for Grant too", func(t *testing.T) {
		if err := s.Grant(neverSent, "cnv_1"); !errors.Is(err, ErrNoAttachment) {
			t.Fatalf("grant: %v", err)
		}
	})
	t.Run("facts from before the times existed use their file's time", func(t *testing.T) {
		old := create()
		p, _ := s.file(old)
		if err := os.WriteFile(p, []byte(`{"id":"`+old+`","owner":"usr_a","bytes":10}`), 0o644); err != nil {
			t.Fatal(err)
		}
		mod := now.Add(-48 * time.Hour)
		os.Chtimes(p, mod, mod)
		if n, _ := s.Sweep(ctx, mod.Add(-time.Minute)); n != 0 || !exists(old) {
			t.Fatalf("deleted %d before its file time", n)
		}
		if n, _ := s.Sweep(ctx, mod.Add(time.Minute)); n != 1 || exists(old) {
			t.Fatalf("deleted %d after its file time", n)
		}
	})
	t.Run("a sweep of an empty or missing folder is no error", func(t *testing.T) {
		e := &Attachments{Blobs: &Dir{Path: filepath.Join(dir, "x")}, Path: filepath.Join(dir, "none")}
		if n, err := e.Sweep(ctx, now); err != nil || n != 0 {
			t.Fatalf("%d %v", n, err)
		}
	})
	t.Run("bytes whose facts are gone are deleted with no error", func(t *testing.T) {
		if err := s.Blobs.Delete(ctx, resent+".bin"); err != nil {
			t.Fatal(err)
		}
		if err := s.Blobs.Delete(ctx, resent+".bin"); err != nil {
			t.Fatalf("deleting twice: %v", err)
		}
		if _, err := s.Blobs.Open(ctx, resent+".bin"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("open after delete: %v", err)
		}
	})
}
