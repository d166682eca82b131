package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gen2brain/webp"
	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

func newPipeline(t testing.TB, cfg Config) (*Pipeline, string) {
	dir := t.TempDir()
	return New(&Dir{Path: dir}, cfg), dir
}

func process(t testing.TB, p *Pipeline, b []byte) (*Result, error) {
	t.Helper()
	release, err := p.Admit()
	if err != nil {
		return nil, err
	}
	defer release()
	return p.Process(context.Background(), b)
}

func readBlob(t testing.TB, p *Pipeline, name string) []byte {
	t.Helper()
	f, err := p.Blobs().Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// webpChunks lists the RIFF chunk types of a WebP file.
func webpChunks(t testing.TB, b []byte) []string {
	t.Helper()
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		t.Fatalf("not a WebP file: % x", b[:min(16, len(b))])
	}
	var out []string
	for i := 12; i+8 <= len(b); {
		out = append(out, string(b[i:i+4]))
		n := int(binary.LittleEndian.Uint32(b[i+4:]))
		i += 8 + n + n%2
	}
	return out
}

// assertNoMetadata fails if a WebP output carries any metadata chunk or
// any of the planted strings (GPS, camera, author, XMP, ICC, comment).
func assertNoMetadata(t testing.TB, b []byte) {
	t.Helper()
	for _, c := range webpChunks(t, b) {
		switch c {
		case "VP8 ", "VP8L", "VP8X", "ALPH":
		default:
			t.Errorf("output has a %q chunk: metadata survived", c)
		}
	}
	if len(b) > 20 && string(b[12:16]) == "VP8X" && b[20]&0x2c != 0 { // ICC, EXIF, XMP flags
		t.Errorf("VP8X flags 0x%02x announce metadata", b[20])
	}
	for _, s := range []string{plantedMake, plantedModel, plantedArtist, "Planted XMP", "Exif\x00\x00",
		"ns.adobe.com", "ICC_PROFILE", "Display P3", "Planted comment"} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("output contains %q", s)
		}
	}
}

func kindOf(err error) (string, string) {
	var e *sb.Error
	if errors.As(err, &e) {
		return e.Kind, e.Code
	}
	return "", ""
}

func TestPipeline(t *testing.T) {
	t.Run("a sideways photo with GPS comes out upright, resized, as WebP, with no metadata", func(t *testing.T) {
		p, _ := newPipeline(t, Config{MaxSide: 256, ThumbSide: 64})
		res, err := process(t, p, plantedJPEG(t, 600, 400))
		if err != nil {
			t.Fatal(err)
		}
		if res.Width != 170 || res.Height != 256 { // 400x600 upright, fit to 256
			t.Fatalf("output is %dx%d, want 170x256 (portrait, upright)", res.Width, res.Height)
		}
		out := readBlob(t, p, res.Name)
		assertNoMetadata(t, out)
		assertNoMetadata(t, readBlob(t, p, res.ThumbName))
		m, err := webp.Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		// Stored top-left (red) is the upright top-right; stored top-right
		// (blue) is the upright bottom-right.
		if r, _, b, _ := rgb8(m, 150, 15); r < 180 || b > 100 {
			t.Errorf("top-right is (%d,_,%d), want red: not rotated by orientation 6", r, b)
		}
		if r, _, b, _ := rgb8(m, 150, 240); b < 180 || r > 100 {
			t.Errorf("bottom-right is (%d,_,%d), want blue", r, b)
		}
		if res.Bytes != int64(len(out)) || res.OriginalBytes == 0 || res.Name != res.ID+".webp" {
			t.Errorf("result %+v does not describe the output (%d bytes)", res, len(out))
		}
	})
	t.Run("a small image is never upscaled and the thumbnail fits its box", func(t *testing.T) {
		p, _ := newPipeline(t, Config{})
		res, err := process(t, p, testPNG(t, 400, 100))
		if err != nil {
			t.Fatal(err)
		}
		if res.Width != 400 || res.Height != 100 {
			t.Fatalf("output is %dx%d, want 400x100", res.Width, res.Height)
		}
		c, err := webp.DecodeConfig(bytes.NewReader(readBlob(t, p, res.ThumbName)))
		if err != nil || c.Width != 320 || c.Height != 80 {
			t.Fatalf("thumbnail %dx%d (%v), want 320x80", c.Width, c.Height, err)
		}
	})
	t.Run("the same upload twice gives the same content address", func(t *testing.T) {
		p, _ := newPipeline(t, Config{MaxSide: 128})
		in := plantedJPEG(t, 300, 200)
		a, err := process(t, p, in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := process(t, p, in)
		if err != nil || a.ID != b.ID {
			t.Fatalf("ids %s and %v (%v)", a.ID, b, err)
		}
	})
}

func rgb8(m image.Image, x, y int) (r, g, b, a uint8) {
	R, G, B, A := m.At(x, y).RGBA()
	return uint8(R >> 8), uint8(G >> 8), uint8(B >> 8), uint8(A >> 8)
}

func TestDisplayP3IsConvertedToSRGB(t *testing.T) {
	ct := iccToSRGB(displayP3ICC())
	if ct == nil {
		t.Fatal("a Display P3 profile was taken for sRGB")
	}
	m := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	copy(m.Pix, []byte{128, 128, 128, 255, 200, 150, 100, 255})
	ct.apply(m)
	for c := 0; c < 3; c++ {
		if d := int(m.Pix[c]) - 128; d < -2 || d > 2 {
			t.Errorf("grey moved to %v: the white point must stay", m.Pix[:3])
		}
	}
	// The same numbers mean a more saturated colour in P3: in sRGB, red
	// goes up and blue down.
	if r, b := m.Pix[4], m.Pix[6]; r <= 205 || b >= 95 {
		t.Errorf("P3 (200,150,100) became sRGB %v, want red > 205 and blue < 95", m.Pix[4:7])
	}
	if iccToSRGB(nil) != nil || iccToSRGB([]byte("garbage")) != nil {
		t.Error("no profile must mean no conversion")
	}
}

// pngHeader is a PNG signature and an IHDR claiming w x h, with a valid
// CRC and no image data after it.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 6 // 8-bit RGBA
	out := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d")
	out = append(out, ihdr...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(ihdr))
}

func TestBadInput(t *testing.T) {
	jpg := plantedJPEG(t, 120, 80)
	cases := []struct {
		name       string
		in         []byte
		kind, code string
	}{
		{"a zero-byte upload is invalid", nil, sb.EINVALID, wire.CodeInvalidImage},
		{"a PNG claiming 100000x100000 is refused before decoding", pngHeader(100000, 100000), sb.ETOOLARGE, wire.CodeTooManyPixels},
		{"a truncated JPEG is invalid", jpg[:len(jpg)/2], sb.EINVALID, wire.CodeInvalidImage},
		{"a JPEG cut inside its header is invalid", jpg[:40], sb.EINVALID, wire.CodeInvalidImage},
		{"a PNG with no image data is invalid", pngHeader(10, 10), sb.EINVALID, wire.CodeInvalidImage},
		{"text is not an image", []byte("hello, this is not an image at all"), sb.EMEDIATYPE, wire.CodeUnsupportedMedia},
		{"an HTML page with a PNG inside is judged by its first bytes", append([]byte("<html><script>alert(1)</script>"), testPNG(t, 8, 8)...), sb.EMEDIATYPE, wire.CodeUnsupportedMedia},
		{"a HEIC file is not taken", append([]byte("\x00\x00\x00\x18ftypheic"), make([]byte, 64)...), sb.EMEDIATYPE, wire.CodeUnsupportedMedia},
		{"a GIF header alone is invalid", []byte("GIF89a\x01\x00"), sb.EINVALID, wire.CodeInvalidImage},
		{"a RIFF WEBP with a bad chunk is invalid", []byte("RIFF\x20\x00\x00\x00WEBPVP8 \x10\x00\x00\x00garbagegarbage"), sb.EINVALID, wire.CodeInvalidImage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, dir := newPipeline(t, Config{MaxSide: 64})
			_, err := process(t, p, c.in)
			if k, code := kindOf(err); k != c.kind || code != c.code {
				t.Fatalf("got %v (kind %q code %q), want kind %q code %q", err, k, code, c.kind, c.code)
			}
			assertEmpty(t, dir)
		})
	}
	t.Run("a PNG with HTML appended is re-encoded: the HTML does not reach the output", func(t *testing.T) {
		p, _ := newPipeline(t, Config{})
		res, err := process(t, p, append(testPNG(t, 16, 16), "<script>alert(1)</script>"...))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(readBlob(t, p, res.Name), []byte("<script>")) {
			t.Fatal("the appended HTML survived")
		}
	})
	t.Run("an upload over the byte limit stops being read at the limit", func(t *testing.T) {
		r := &countingReader{}
		_, err := ReadLimited(r, 1000)
		if k, _ := kindOf(err); k != sb.ETOOLARGE {
			t.Fatalf("got %v, want too_large", err)
		}
		if r.n > 1001+32*1024 {
			t.Fatalf("read %d bytes of an endless upload with a 1000-byte limit", r.n)
		}
	})
}

// countingReader is an endless upload that counts what was read of it.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) { c.n += len(p); return len(p), nil }

func assertEmpty(t testing.TB, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("a failed upload left %s", p)
		}
		return nil
	})
}

func TestAdmitRefusesWhenFull(t *testing.T) {
	p, _ := newPipeline(t, Config{Workers: 1, Waiting: 1})
	r1, err := p.Admit()
	if err != nil {
		t.Fatal(err)
	}
	r2, err := p.Admit()
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Admit()
	var e *sb.Error
	if !errors.As(err, &e) || e.Kind != sb.EUNAVAILABLE || e.RetryAfter <= 0 {
		t.Fatalf("a third upload got %v, want unavailable with RetryAfter", err)
	}
	r1()
	r3, err := p.Admit()
	if err != nil {
		t.Fatalf("a place was released but Admit still refuses: %v", err)
	}
	r2()
	r3()
}

func TestDirRefusesBadNames(t *testing.T) {
	d := &Dir{Path: t.TempDir()}
	for _, name := range []string{"../etc/passwd", "..", "", "a/b", strings.Repeat("a", 64) + "/../x", "ABCDEF0123456789ABCDEF0123456789", strings.Repeat("0", 64) + ".webp/.."} {
		if err := d.Put(context.Background(), name, []byte("x")); !errors.Is(err, ErrBadName) {
			t.Errorf("Put(%q) = %v, want ErrBadName", name, err)
		}
		if _, err := d.Open(context.Background(), name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(%q) = %v, want not-exist", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(d.Path, "x")); err == nil {
		t.Error("a file was written")
	}
}

// TestRealPhoto runs the committed camera photo (testdata/README.md) with
// orientation 6, GPS, camera, author and XMP through the pipeline.
func TestRealPhoto(t *testing.T) {
	in, err := os.ReadFile("testdata/seeding-orientation6-gps.jpg")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"PlantedCameraMaker", "Planted Author Name", "Planted XMP Creator"} {
		if !bytes.Contains(in, []byte(s)) {
			t.Fatalf("the test photo lost %q: it no longer tests stripping", s)
		}
	}
	if o, _ := jpegMeta(in); o != 6 {
		t.Fatalf("the test photo has orientation %d, want 6", o)
	}
	p, _ := newPipeline(t, Config{MaxSide: 400, ThumbSide: 100})
	res, err := process(t, p, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Width != 400 || res.Height != 225 {
		t.Fatalf("output %dx%d, want 400x225: upright (landscape) and fit to 400", res.Width, res.Height)
	}
	out := readBlob(t, p, res.Name)
	assertNoMetadata(t, out)
	for _, s := range []string{"Planted XMP Rights", "GPS"} {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("output contains %q", s)
		}
	}
	if s, err := CompareBlob(in, p.Blobs(), res.Name); err != nil || s < 0.9 {
		t.Errorf("SSIM %.3f against the resized original (%v), want >= 0.9", s, err)
	}
}
