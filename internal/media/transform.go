package media

import (
	"image"
	"image/draw"
)

// fit returns w x h scaled to fit a side x side box, never upscaled, each
// side at least 1.
func fit(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, int(int64(h)*int64(side)/int64(w)))
	}
	return max(1, int(int64(w)*int64(side)/int64(h))), side
}

// resize scales src to w x h into a new non-premultiplied image.
func resize(src image.Image, w, h int) *image.NRGBA {
	b := src.Bounds()
	if b.Dx() == w && b.Dy() == h {
		return toNRGBA(src)
	}
	return unpremultiply(resample(src, w, h))
}

// toNRGBA copies src into a non-premultiplied RGBA image.
func toNRGBA(src image.Image) *image.NRGBA {
	if n, ok := src.(*image.NRGBA); ok {
		return n
	}
	b := src.Bounds()
	dst := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, src, b.Min, draw.Src)
	return dst
}

// unpremultiply turns m into an NRGBA in place: an opaque image has the
// same bytes in both forms; a translucent pixel is divided by its alpha.
func unpremultiply(m *image.RGBA) *image.NRGBA {
	p := m.Pix
	for i := 0; i+3 < len(p); i += 4 {
		a := uint32(p[i+3])
		if a == 0xFF {
			continue
		}
		if a == 0 {
			p[i], p[i+1], p[i+2] = 0, 0, 0
			continue
		}
		p[i] = uint8(min(255, (uint32(p[i])*255+a/2)/a))
		p[i+1] = uint8(min(255, (uint32(p[i+1])*255+a/2)/a))
		p[i+2] = uint8(min(255, (uint32(p[i+2])*255+a/2)/a))
	}
	return &image.NRGBA{Pix: m.Pix, Stride: m.Stride, Rect: m.Rect}
}

// opaque reports whether every pixel of m has alpha 255.
func opaque(m *image.NRGBA) bool {
	for i := 3; i < len(m.Pix); i += 4 {
		if m.Pix[i] != 0xFF {
			return false
		}
	}
	return true
}

// orient applies an EXIF orientation (1-8) to m, returning an upright image.
func orient(m *image.NRGBA, o int) *image.NRGBA {
	if o < 2 || o > 8 {
		return m
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	dw, dh := w, h
	if o >= 5 { // 5-8 swap the sides
		dw, dh = h, w
	}
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < dh; y++ {
		for x := 0; x < dw; x++ {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-x, y
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sx, sy = x, h-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			}
			s := sy*m.Stride + 4*sx
			d := y*dst.Stride + 4*x
			copy(dst.Pix[d:d+4], m.Pix[s:s+4])
		}
	}
	return dst
}
