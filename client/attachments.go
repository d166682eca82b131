package client

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Attachments (docs/crypto.md, "Attachments"): the device shrinks an image,
// encrypts the bytes with a fresh AES-256-GCM key, uploads the ciphertext
// (POST /v1/attachments) and sends the key inside the message's end-to-end
// ciphertext. The server stores and serves bytes it cannot read.

// Attachment is what a recipient needs to fetch and open an attachment.
// It holds the key: it must travel only inside an end-to-end-encrypted
// message ([Secure.SendContent] puts it there), never in the clear.
type Attachment struct {
	ID     string `json:"id"`     // the server's attachment id
	Key    []byte `json:"key"`    // AES-256-GCM key, fresh for this attachment
	SHA256 []byte `json:"sha256"` // digest of the uploaded ciphertext
	Type   string `json:"type"`   // MIME type of the content, e.g. image/jpeg
	Name   string `json:"name,omitempty"`
	Size   int64  `json:"size"` // bytes of the content, after shrinking
	// Width and Height are set for an image that was shrunk or re-encoded.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
}

// AttachmentOptions tune [Session.UploadAttachment]. The zero value shrinks
// JPEG and PNG images to fit 2048 px and sends everything else as it is.
type AttachmentOptions struct {
	Name string // a file name for the recipients; never sent to the server
	// Type is the content's MIME type; empty: sniffed from the bytes.
	Type string
	// Original sends the bytes as they are, an image included (a "file").
	Original bool
	// MaxSide is the long side an image is shrunk to fit (default 2048);
	// Quality is the JPEG quality it is encoded at (default 80).
	MaxSide int
	Quality int
}

// attachmentVersion starts every attachment ciphertext: version, nonce, sealed bytes.
const attachmentVersion = 1

// attachmentAD binds the ciphertext to its purpose: a key is never used twice, but a
// ciphertext of this format must not open as anything else.
var attachmentAD = []byte("switchboard attachment v1")

// ErrAttachmentCorrupt is returned when a downloaded attachment does not
// match its digest or does not open with its key.
var ErrAttachmentCorrupt = errors.New("client: attachment does not match its key or digest")

// SealAttachment encrypts content with a new random key and returns the
// ciphertext to upload and the key. [Session.UploadAttachment] does this
// for you; it is exported for applications that store attachments elsewhere.
func SealAttachment(content []byte) (ciphertext, key []byte) {
	key = make([]byte, 32)
	rand.Read(key)
	aead := newAttachmentAEAD(key)
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(content)+aead.Overhead())
	out[0] = attachmentVersion
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], content, attachmentAD), key
}

// OpenAttachment decrypts what SealAttachment made.
func OpenAttachment(key, ciphertext []byte) ([]byte, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("client: attachment key of %d bytes, want 32", len(key))
	}
	aead := newAttachmentAEAD(key)
	if len(ciphertext) < 1+aead.NonceSize()+aead.Overhead() || ciphertext[0] != attachmentVersion {
		return nil, ErrAttachmentCorrupt
	}
	nonce := ciphertext[1 : 1+aead.NonceSize()]
	pt, err := aead.Open(nil, nonce, ciphertext[1+aead.NonceSize():], attachmentAD)
	if err != nil {
		return nil, ErrAttachmentCorrupt
	}
	return pt, nil
}

func newAttachmentAEAD(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // the key is 32 bytes: checked or made here
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// UploadAttachment prepares content on this device and uploads it: a JPEG
// or PNG image is shrunk to fit opts.MaxSide, turned upright and
// re-encoded without its metadata (GPS, camera) unless opts.Original; the
// result is encrypted with a fresh key ([SealAttachment]) and the
// ciphertext is uploaded. The server learns the ciphertext's size and who
// uploaded it, nothing else. Send the returned Attachment with
// [Secure.SendContent], which names its id in the send (so the
// conversation's members may download it) and carries its key inside the
// end-to-end ciphertext.
func (s *Session) UploadAttachment(ctx context.Context, content []byte, opts AttachmentOptions) (Attachment, error) {
	if s.client == nil {
		return Attachment{}, errUnbound
	}
	a := Attachment{Name: opts.Name, Type: opts.Type}
	if a.Type == "" {
		a.Type = http.DetectContentType(content)
	}
	if !opts.Original {
		if img, ok, err := shrinkImage(content, opts.MaxSide, opts.Quality); err != nil {
			return Attachment{}, err
		} else if ok {
			content, a.Type, a.Width, a.Height = img.data, img.typ, img.width, img.height
		}
	}
	a.Size = int64(len(content))
	ct, key := SealAttachment(content)
	a.Key = key
	sum := sha256.Sum256(ct)
	a.SHA256 = sum[:]
	var out struct {
		ID string `json:"attachment_id"`
	}
	if err := s.raw(ctx, http.MethodPost, s.client.url(nil, "v1", "attachments"), ct, &out, 0); err != nil {
		return Attachment{}, err
	}
	a.ID = out.ID
	return a, nil
}

// DownloadAttachment fetches a's ciphertext, checks its digest and opens
// it. The server answers only the uploader and members of a conversation
// the attachment was sent in; to anyone else it is an *Error with Code
// [CodeNotFound].
func (s *Session) DownloadAttachment(ctx context.Context, a Attachment) ([]byte, error) {
	if s.client == nil {
		return nil, errUnbound
	}
	var ct []byte
	limit := a.Size + 1 + 12 + 16 // version, nonce, tag
	if err := s.raw(ctx, http.MethodGet, s.client.url(nil, "v1", "attachments", a.ID), nil, &ct, limit); err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(ct); !bytes.Equal(sum[:], a.SHA256) {
		return nil, ErrAttachmentCorrupt
	}
	return OpenAttachment(a.Key, ct)
}

// raw sends body (if not nil) as opaque bytes. A 2xx answer is decoded as
// JSON into out, or read whole into *[]byte (at most limit bytes; more is
// corrupt).
func (s *Session) raw(ctx context.Context, method, url string, body []byte, out any, limit int64) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := s.client.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp)
	}
	if b, ok := out.(*[]byte); ok {
		data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return fmt.Errorf("client: %s %s: %w", method, req.URL.Path, err)
		}
		if int64(len(data)) > limit {
			return ErrAttachmentCorrupt
		}
		*b = data
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: %s %s: decoding answer: %w", method, req.URL.Path, err)
	}
	return nil
}
