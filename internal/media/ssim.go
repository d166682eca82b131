package media

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"io"
	"os"

	"github.com/gen2brain/webp"
)

// SSIM returns the mean structural similarity of two images of the same
// size, on luma, over 8x8 windows with a stride of 4 (the usual constants
// for 8-bit values). 1 is identical; a photo encoder is judged good at
// 0.95 and above. It is for benchmarks and tests, not the upload path.
func SSIM(a, b image.Image) (float64, error) {
	ab, bb := a.Bounds(), b.Bounds()
	if ab.Dx() != bb.Dx() || ab.Dy() != bb.Dy() {
		return 0, fmt.Errorf("media: ssim of %v and %v", ab.Size(), bb.Size())
	}
	la, lb := luma(a), luma(b)
	w, h := ab.Dx(), ab.Dy()
	const c1, c2 = (0.01 * 255) * (0.01 * 255), (0.03 * 255) * (0.03 * 255)
	var sum float64
	var n int
	for y := 0; y+8 <= h; y += 4 {
		for x := 0; x+8 <= w; x += 4 {
			var sa, sb, saa, sbb, sab float64
			for j := 0; j < 8; j++ {
				for i := 0; i < 8; i++ {
					va, vb := la[(y+j)*w+x+i], lb[(y+j)*w+x+i]
					sa += va
					sb += vb
					saa += va * va
					sbb += vb * vb
					sab += va * vb
				}
			}
			ma, mb := sa/64, sb/64
			va, vb, cov := saa/64-ma*ma, sbb/64-mb*mb, sab/64-ma*mb
			sum += ((2*ma*mb + c1) * (2*cov + c2)) / ((ma*ma + mb*mb + c1) * (va + vb + c2))
			n++
		}
	}
	if n == 0 {
		return 1, nil
	}
	return sum / float64(n), nil
}

func luma(m image.Image) []float64 {
	b := m.Bounds()
	out := make([]float64, 0, b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := m.At(x, y).RGBA()
			out = append(out, (0.299*float64(r)+0.587*float64(g)+0.114*float64(bl))/257)
		}
	}
	return out
}

// reference is the original upright and resized to w x h the way the
// pipeline resizes, without encoding: what an output is compared with.
func reference(orig []byte, w, h int) (image.Image, error) {
	f := sniff(orig)
	if f == "" {
		return nil, fmt.Errorf("media: not an image")
	}
	src, err := decode(f, orig)
	if err != nil {
		return nil, err
	}
	o := 1
	if f == JPEG {
		o, _ = jpegMeta(orig)
	}
	sw, sh := w, h
	if o >= 5 {
		sw, sh = h, w
	}
	return orient(resize(src, sw, sh), o), nil
}

func compare(orig []byte, out io.Reader) (float64, error) {
	m, err := webp.Decode(out)
	if err != nil {
		return 0, err
	}
	ref, err := reference(orig, m.Bounds().Dx(), m.Bounds().Dy())
	if err != nil {
		return 0, err
	}
	return SSIM(ref, m)
}

// CompareBlob is the SSIM of a stored output against its original.
func CompareBlob(orig []byte, blobs Blobs, name string) (float64, error) {
	f, err := blobs.Open(context.Background(), name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return compare(orig, f)
}

// CompareFiles is the SSIM of a WebP file (from any encoder) against the
// original it was made from.
func CompareFiles(orig, out string) (float64, error) {
	a, err := os.ReadFile(orig)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return 0, err
	}
	return compare(a, bytes.NewReader(b))
}
