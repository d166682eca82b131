package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Blobs stores immutable named blobs: processed images and encrypted
// attachments. A name is written once and never changes meaning (it is a
// content hash or a random id), which is what lets every cache keep it
// forever. Dir is the default; an object store fits the same interface.
type Blobs interface {
	// Put stores data under name, atomically: a reader sees all of it or
	// nothing. Putting a name that exists is a no-op (same content).
	Put(ctx context.Context, name string, data []byte) error
	// Open returns the blob for reading, or an error wrapping fs.ErrNotExist.
	Open(ctx context.Context, name string) (Blob, error)
	// Delete removes a blob; one that does not exist is no error.
	Delete(ctx context.Context, name string) error
}

// Blob is an open stored blob.
type Blob interface {
	io.ReadSeekCloser
	Size() int64
	ModTime() time.Time
}

// validName is every name Blobs takes: lower-case hex, an optional
// extension, no separator and no dot-dot, so no name can leave the folder.
var validName = regexp.MustCompile(`^[0-9a-f]{32,64}(\.[a-z]{1,5})?$`)

// ValidName reports whether name is a blob name (the edge checks it first,
// so that a traversal attempt is a plain 404 and never reaches a path).
func ValidName(name string) bool { return validName.MatchString(name) }

// ErrBadName is returned for a name that fails ValidName.
var ErrBadName = errors.New("media: bad blob name")

// Dir is Blobs in a local folder, two levels of fan-out by name prefix
// (ab/cd/abcd...) so no folder grows past a few thousand entries.
type Dir struct {
	Path string
}

var _ Blobs = (*Dir)(nil)

func (d *Dir) path(name string) (string, error) {
	if !ValidName(name) {
		return "", fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return filepath.Join(d.Path, name[0:2], name[2:4], name), nil
}

// Put writes to a temporary file in the target folder and renames it into
// place after an fsync, so a crash leaves the old state or the whole blob.
func (d *Dir) Put(ctx context.Context, name string, data []byte) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("media: put %s: %w", name, err)
	}
	return nil
}

// Open opens a stored blob.
func (d *Dir) Open(ctx context.Context, name string) (Blob, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("media: %w", err)
	}
	return &fileBlob{File: f, size: st.Size(), mod: st.ModTime()}, nil
}

// Delete removes a stored blob.
func (d *Dir) Delete(ctx context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("media: %w", err)
	}
	return nil
}

type fileBlob struct {
	*os.File
	size int64
	mod  time.Time
}

func (b *fileBlob) Size() int64        { return b.size }
func (b *fileBlob) ModTime() time.Time { return b.mod }
