package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"io"
	"runtime"
	"time"

	"github.com/gen2brain/webp"
	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// Config is the pipeline's settings; zero values get the defaults in brackets.
type Config struct {
	MaxBytes  int64 // largest upload [20 MiB]
	MaxPixels int64 // largest width x height decoded: a decompression bomb's bound [50 MP]
	MaxSide   int   // the long side of the main output [2048]
	ThumbSide int   // the long side of the thumbnail [320]
	// Quality of lossy WebP [80]: on the benchmark corpus (docs/benchmarks.md)
	// 80 keeps SSIM against the resized original above 0.95 at about a fifth
	// of the JPEG's bytes; 90 costs ~50 % more bytes for ~0.01 SSIM.
	Quality int
	// Workers is how many images are processed at once [GOMAXPROCS-1, at
	// least 1]: one core is left to the sockets, which on 2 cores cut chat
	// p95 under uploads several-fold for ~15 % fewer uploads/s
	// (docs/benchmarks.md, "Mixed uploads and chat").
	Workers int
	Waiting int // uploads that may wait for a worker; one more gets ErrBusy [2 x Workers]
	// RetryAfter is what a refused upload is told to wait [2s].
	RetryAfter time.Duration
}

func (c *Config) defaults() {
	if c.MaxBytes <= 0 {
		c.MaxBytes = 20 << 20
	}
	if c.MaxPixels <= 0 {
		c.MaxPixels = 50_000_000
	}
	if c.MaxSide <= 0 {
		c.MaxSide = 2048
	}
	if c.ThumbSide <= 0 {
		c.ThumbSide = 320
	}
	if c.Quality <= 0 || c.Quality > 100 {
		c.Quality = 80
	}
	if c.Workers <= 0 {
		c.Workers = max(1, runtime.GOMAXPROCS(0)-1)
	}
	if c.Waiting <= 0 {
		c.Waiting = 2 * c.Workers
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 2 * time.Second
	}
}

// Result describes a processed image. Name and ThumbName are blob names
// (hash.webp) in the pipeline's Blobs.
type Result struct {
	ID            string // the SHA-256 (hex) of the main output
	Name          string
	ThumbName     string
	Width, Height int   // of the main output, upright
	Bytes         int64 // of the main output
	OriginalBytes int64
	Lossless      bool
}

// Pipeline processes uploads into Blobs with a bounded pool.
type Pipeline struct {
	cfg   Config
	blobs Blobs
	// admit holds a token for every upload in the pipeline (reading,
	// waiting or working); work one for every upload being processed.
	admit chan struct{}
	work  chan struct{}
}

// New returns a pipeline writing to blobs.
func New(blobs Blobs, cfg Config) *Pipeline {
	cfg.defaults()
	return &Pipeline{cfg: cfg, blobs: blobs,
		admit: make(chan struct{}, cfg.Workers+cfg.Waiting), work: make(chan struct{}, cfg.Workers)}
}

// Config returns the pipeline's settings, defaults filled in.
func (p *Pipeline) Config() Config { return p.cfg }

// Blobs returns the store the pipeline writes to.
func (p *Pipeline) Blobs() Blobs { return p.blobs }

// Admit reserves a place for one upload, or refuses at once with an
// unavailable error carrying RetryAfter: a full pipeline never queues
// without bound. Call the returned release when the upload is done.
func (p *Pipeline) Admit() (release func(), err error) {
	select {
	case p.admit <- struct{}{}:
		return func() { <-p.admit }, nil
	default:
		e := sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable,
			"the node is processing as many images as it takes (%d); retry later", cap(p.admit))
		e.RetryAfter = p.cfg.RetryAfter
		return nil, e
	}
}

// ReadLimited reads r to the end, stopping with a too_large error as soon
// as it passes max bytes (the rest is never read).
func ReadLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		if isMaxBytes(err) {
			return nil, tooLarge(max)
		}
		return nil, fmt.Errorf("media: read upload: %w", err)
	}
	if int64(len(b)) > max {
		return nil, tooLarge(max)
	}
	return b, nil
}

func isMaxBytes(err error) bool {
	var mbe interface{ Limit() int64 } // *http.MaxBytesError, without importing net/http
	return errors.As(err, &mbe)
}

func tooLarge(max int64) error {
	return sb.Errorf(sb.ETOOLARGE, wire.CodeTooLarge, "upload over %d bytes", max)
}

// Process turns an upload's bytes into a stored WebP and its thumbnail.
// Call it between Admit and release; it waits for a worker (or ctx).
// Nothing is stored unless everything succeeded.
func (p *Pipeline) Process(ctx context.Context, b []byte) (*Result, error) {
	if len(b) == 0 {
		return nil, sb.Errorf(sb.EINVALID, wire.CodeInvalidImage, "the upload is empty")
	}
	if int64(len(b)) > p.cfg.MaxBytes {
		return nil, tooLarge(p.cfg.MaxBytes)
	}
	f := sniff(b)
	if f == "" {
		return nil, sb.Errorf(sb.EMEDIATYPE, wire.CodeUnsupportedMedia,
			"not a JPEG, PNG, GIF or WebP image (the bytes decide, not the name or Content-Type)")
	}
	cfg, err := decodeConfig(f, b)
	if err != nil {
		return nil, sb.Errorf(sb.EINVALID, wire.CodeInvalidImage, "unreadable %s header: %v", f, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, sb.Errorf(sb.EINVALID, wire.CodeInvalidImage, "%s of %dx%d pixels", f, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > p.cfg.MaxPixels {
		return nil, sb.Errorf(sb.ETOOLARGE, wire.CodeTooManyPixels,
			"%dx%d is %d pixels, over the limit of %d", cfg.Width, cfg.Height, px, p.cfg.MaxPixels)
	}
	select {
	case p.work <- struct{}{}:
		defer func() { <-p.work }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	main, thumb, lossless, err := p.render(f, b)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(main)
	id := hex.EncodeToString(sum[:])
	tsum := sha256.Sum256(thumb)
	res := &Result{ID: id, Name: id + ".webp", ThumbName: hex.EncodeToString(tsum[:]) + ".webp",
		Bytes: int64(len(main)), OriginalBytes: int64(len(b)), Lossless: lossless}
	c, err := webp.DecodeConfig(bytes.NewReader(main))
	if err != nil {
		return nil, fmt.Errorf("media: reading our own output: %w", err)
	}
	res.Width, res.Height = c.Width, c.Height
	if err := p.blobs.Put(ctx, res.ThumbName, thumb); err != nil {
		return nil, err
	}
	if err := p.blobs.Put(ctx, res.Name, main); err != nil {
		return nil, err
	}
	return res, nil
}

// render decodes, orients, converts and encodes: the CPU-heavy part.
func (p *Pipeline) render(f Format, b []byte) (main, thumb []byte, lossless bool, err error) {
	defer func() {
		// The decoders are fuzzed upstream, but an image library's panic
		// must cost one upload, never the node.
		if v := recover(); v != nil {
			err = sb.Errorf(sb.EINVALID, wire.CodeInvalidImage, "the %s image could not be decoded", f)
		}
	}()
	orientation, icc := 1, []byte(nil)
	switch f {
	case JPEG:
		orientation, icc = jpegMeta(b)
	case PNG:
		icc = pngICC(b)
	}
	src, err := decode(f, b)
	if err != nil {
		return nil, nil, false, sb.Errorf(sb.EINVALID, wire.CodeInvalidImage, "the %s image is damaged or truncated: %v", f, err)
	}
	w, h := fit(src.Bounds().Dx(), src.Bounds().Dy(), p.cfg.MaxSide)
	img := resize(src, w, h)
	src = nil // let the full-size pixels go before encoding
	if ct := iccToSRGB(icc); ct != nil {
		ct.apply(img)
	}
	img = orient(img, orientation)
	tw, th := fit(img.Rect.Dx(), img.Rect.Dy(), p.cfg.ThumbSide)
	small := resize(img, tw, th)

	// Photos (JPEG) are lossy; graphics (PNG, GIF, WebP) are also tried
	// lossless, which wins for flat colours and sharp edges.
	tryLossless := f != JPEG
	if main, lossless, err = p.encode(img, tryLossless); err != nil {
		return nil, nil, false, err
	}
	if thumb, _, err = p.encode(small, tryLossless); err != nil {
		return nil, nil, false, err
	}
	return main, thumb, lossless, nil
}

func (p *Pipeline) encode(m image.Image, tryLossless bool) ([]byte, bool, error) {
	var lossy bytes.Buffer
	if err := webp.Encode(&lossy, m, webp.Options{Quality: p.cfg.Quality, Method: 4}); err != nil {
		return nil, false, fmt.Errorf("media: webp encode: %w", err)
	}
	if !tryLossless {
		return lossy.Bytes(), false, nil
	}
	var ll bytes.Buffer
	if err := webp.Encode(&ll, m, webp.Options{Lossless: true, Quality: 50, Method: 4}); err != nil {
		return nil, false, fmt.Errorf("media: webp encode: %w", err)
	}
	if ll.Len() <= lossy.Len() {
		return ll.Bytes(), true, nil
	}
	return lossy.Bytes(), false, nil
}

// Encoder says which WebP encoder this process uses. gen2brain/webp loads
// the system's libwebp through purego when it finds libwebp.so (Debian:
// libwebp-dev) in a dynamically linked binary, and otherwise runs libwebp
// compiled to WebAssembly (wazero). The difference is not only speed: the
// Go runtime cannot preempt a goroutine while it runs wazero's compiled
// code, so every garbage collection that starts during an encode waits for
// it with the world stopped, and every socket of the node waits too (tens
// to hundreds of ms under upload load, docs/benchmarks.md). A call into
// native libwebp is a foreign call the collector does not wait for.
func Encoder() (native bool, detail string) {
	if err := webp.Dynamic(); err != nil {
		return false, "libwebp in WebAssembly (wazero): " + err.Error()
	}
	return true, "native libwebp (purego)"
}
