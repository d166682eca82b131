package client

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"testing"
)

func TestAttachmentCiphertextOpensOnlyWithItsKey(t *testing.T) {
	content := []byte("a photo of the harbour at dusk")
	ct, key := SealAttachment(content)
	if bytes.Contains(ct, content) || len(key) != 32 {
		t.Fatalf("ciphertext holds the content, or key of %d bytes", len(key))
	}
	if got, err := OpenAttachment(key, ct); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("open: %q %v", got, err)
	}
	ct2, key2 := SealAttachment(content)
	if bytes.Equal(key, key2) || bytes.Equal(ct, ct2) {
		t.Fatal("two seals of the same content share a key or a ciphertext")
	}
	t.Run("a flipped byte does not open", func(t *testing.T) {
		for _, i := range []int{0, 1, len(ct) / 2, len(ct) - 1} {
			bad := bytes.Clone(ct)
			bad[i] ^= 1
			if _, err := OpenAttachment(key, bad); !errors.Is(err, ErrAttachmentCorrupt) {
				t.Errorf("byte %d flipped: %v", i, err)
			}
		}
	})
	t.Run("another key does not open it", func(t *testing.T) {
		if _, err := OpenAttachment(key2, ct); !errors.Is(err, ErrAttachmentCorrupt) {
			t.Fatal(err)
		}
	})
	t.Run("a short ciphertext does not open", func(t *testing.T) {
		if _, err := OpenAttachment(key, ct[:20]); !errors.Is(err, ErrAttachmentCorrupt) {
			t.Fatal(err)
		}
	})
}

// realPhoto is the CC0 camera photo stored sideways (360x640) with EXIF
// orientation 6, GPS, camera and author data (internal/media/testdata).
func realPhoto(t *testing.T) []byte {
	b, err := os.ReadFile("../internal/media/testdata/seeding-orientation6-gps.jpg")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encodeJPEG(t testing.TB, w, h int) []byte {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestShrinkImage(t *testing.T) {
	t.Run("a sideways photo comes out upright, smaller and without its metadata", func(t *testing.T) {
		in := realPhoto(t)
		out, ok, err := shrinkImage(in, 320, 0)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if out.typ != "image/jpeg" || out.width != 320 || out.height != 180 {
			t.Fatalf("%s %dx%d, want image/jpeg 320x180", out.typ, out.width, out.height)
		}
		for _, planted := range []string{"Exif", "GPS", "Planted", "http://ns.adobe.com/xap"} {
			if bytes.Contains(out.data, []byte(planted)) {
				t.Errorf("the output carries %q", planted)
			}
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(out.data))
		if err != nil || cfg.Width != 320 || cfg.Height != 180 {
			t.Fatalf("decodes as %+v, %v", cfg, err)
		}
		if len(out.data) >= len(in) {
			t.Errorf("%d bytes from %d", len(out.data), len(in))
		}
	})
	t.Run("a large photo fits 2048 px on its long side", func(t *testing.T) {
		out, ok, err := shrinkImage(encodeJPEG(t, 4100, 2300), 0, 0)
		if err != nil || !ok || out.width != 2048 || out.height != 1148 {
			t.Fatalf("%dx%d %v %v", out.width, out.height, ok, err)
		}
	})
	t.Run("a small image is not enlarged", func(t *testing.T) {
		out, ok, err := shrinkImage(encodeJPEG(t, 300, 500), 0, 0)
		if err != nil || !ok || out.width != 300 || out.height != 500 {
			t.Fatalf("%dx%d %v %v", out.width, out.height, ok, err)
		}
	})
	t.Run("a PNG with transparency stays a PNG", func(t *testing.T) {
		m := image.NewNRGBA(image.Rect(0, 0, 3000, 100))
		for i := range m.Pix {
			m.Pix[i] = uint8(i)
		}
		var b bytes.Buffer
		png.Encode(&b, m)
		out, ok, err := shrinkImage(b.Bytes(), 0, 0)
		if err != nil || !ok || out.typ != "image/png" || out.width != 2048 || out.height != 68 {
			t.Fatalf("%s %dx%d %v %v", out.typ, out.width, out.height, ok, err)
		}
	})
	t.Run("anything else is sent as it is", func(t *testing.T) {
		for _, in := range [][]byte{[]byte("GIF89a...."), []byte("%PDF-1.7"), nil} {
			if _, ok, err := shrinkImage(in, 0, 0); ok || err != nil {
				t.Errorf("%q: %v %v", in, ok, err)
			}
		}
	})
	t.Run("a broken JPEG is an error", func(t *testing.T) {
		in := encodeJPEG(t, 64, 64)
		if _, _, err := shrinkImage(in[:len(in)/2], 0, 0); err == nil {
			t.Fatal("no error")
		}
	})
}

// BenchmarkShrinkImage shrinks a 12 MP JPEG to fit 2048 px.
func BenchmarkShrinkImage(b *testing.B) {
	in := encodeJPEG(b, 4000, 3000)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := shrinkImage(in, 0, 0); !ok || err != nil {
			b.Fatal(err)
		}
	}
}
