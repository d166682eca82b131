package media

import (
	"context"
	"errors"
	"os"
	"testing"

	sb "github.com/switchboard-chat/switchboard"
)

// FuzzProcess feeds arbitrary bytes to the upload entry point: every input
// is stored as a WebP or refused with a client error (*sb.Error, never a
// panic or an internal error), and a refusal writes nothing. The pixel
// limit is small so that a mutated header cannot make one run slow.
func FuzzProcess(f *testing.F) {
	f.Add(plantedJPEG(f, 24, 16))
	f.Add(testPNG(f, 8, 8))
	f.Add(pngHeader(100000, 100000))
	f.Add([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	f.Add([]byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"))
	if b, err := os.ReadFile("testdata/seeding-orientation6-gps.jpg"); err == nil {
		f.Add(b[:4096])
	}
	dir := f.TempDir()
	p := New(&Dir{Path: dir}, Config{MaxPixels: 256 * 256, MaxSide: 64, ThumbSide: 16, Workers: 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := p.Process(context.Background(), b)
		if err != nil {
			var e *sb.Error
			if !errors.As(err, &e) || e.Kind == sb.EINTERNAL {
				t.Fatalf("not a client error: %v", err)
			}
			return
		}
		if res.Width < 1 || res.Height < 1 || res.Width > 64 || res.Height > 64 {
			t.Fatalf("output %dx%d outside 1..64", res.Width, res.Height)
		}
		out := readBlob(t, p, res.Name)
		assertNoMetadata(t, out)
	})
}
