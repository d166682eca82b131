package media

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Attachment is what the node knows of an end-to-end-encrypted attachment:
// never its content (opaque ciphertext in Blobs under ID + ".bin"), only
// who uploaded it and which conversations it was sent in.
type Attachment struct {
	ID            string   `json:"id"`
	Owner         string   `json:"owner"` // the uploader's user id
	Bytes         int64    `json:"bytes"`
	Conversations []string `json:"conversations,omitempty"`
	// Created is when it was uploaded; LastSent when a send last named it
	// (Grant). Sweep deletes it once the later of the two is older than the
	// retention period: by then retention has purged every message that
	// named it. Facts written before these fields existed have neither, and
	// their file's time stands in (it is rewritten by every Grant).
	Created  time.Time `json:"created,omitzero"`
	LastSent time.Time `json:"last_sent,omitzero"`
}

// lastUsed is the later of Created and LastSent, or else mod.
func (a *Attachment) lastUsed(mod time.Time) time.Time {
	t := a.Created
	if a.LastSent.After(t) {
		t = a.LastSent
	}
	if t.IsZero() {
		return mod
	}
	return t
}

// BlobName is the name of the attachment's bytes in Blobs.
func (a *Attachment) BlobName() string { return a.ID + ".bin" }

// Attachments stores attachments' bytes in Blobs and their facts in a
// local folder (one small JSON file each, replaced atomically). The access
// rule lives at the edge (internal/server): the owner, or a current member
// of a conversation the attachment was sent in.
type Attachments struct {
	Blobs Blobs
	Path  string           // folder of the facts files
	Now   func() time.Time // nil: time.Now
	mu    sync.Mutex
}

func (s *Attachments) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// NewID returns a random attachment id (128 bits, hex): unguessable, and
// unrelated to the content, so equal ciphertexts of two users never meet.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrNoAttachment is returned for an unknown attachment id.
var ErrNoAttachment = errors.New("media: no such attachment")

// Create stores data as a new attachment of owner.
func (s *Attachments) Create(ctx context.Context, owner string, data []byte) (*Attachment, error) {
	a := &Attachment{ID: NewID(), Owner: owner, Bytes: int64(len(data)), Created: s.now().UTC()}
	if err := s.Blobs.Put(ctx, a.BlobName(), data); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(a); err != nil {
		return nil, err
	}
	return a, nil
}

// Get returns an attachment's facts, or ErrNoAttachment.
func (s *Attachments) Get(id string) (*Attachment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read(id)
}

// Grant records that id is being sent in conversation conv, now: the
// conversation's members may read it, and Sweep keeps it for a retention
// period from now.
func (s *Attachments) Grant(id, conv string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.read(id)
	if err != nil {
		return err
	}
	if !slices.Contains(a.Conversations, conv) {
		a.Conversations = append(a.Conversations, conv)
	}
	a.LastSent = s.now().UTC()
	return s.write(a)
}

func (s *Attachments) file(id string) (string, error) {
	if len(id) != 32 || !ValidName(id) {
		return "", ErrNoAttachment
	}
	return filepath.Join(s.Path, id[:2], id+".json"), nil
}

func (s *Attachments) read(id string) (*Attachment, error) {
	p, err := s.file(id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoAttachment
	}
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	var a Attachment
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("media: attachment %s: %w", id, err)
	}
	return &a, nil
}

func (s *Attachments) write(a *Attachment) error {
	p, err := s.file(a.ID)
	if err != nil {
		return err
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	return nil
}
