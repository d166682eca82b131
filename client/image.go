package client

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"

	xdraw "golang.org/x/image/draw"
)

// Image shrinking for attachments, on the device and before encryption
// (the server never sees the pixels, so it cannot do it). Pure Go, so the
// SDK needs no cgo: JPEG and PNG in, JPEG (photos) or PNG (when smaller,
// or with transparency) out, upright, fitting maxSide, and without the
// input's metadata, since only pixels are encoded.

const (
	defaultMaxSide = 2048
	defaultQuality = 80
	// maxImagePixels bounds what is decoded (a 120 MP photo takes about
	// 180 MB as YCbCr); a larger "image" is sent as it is.
	maxImagePixels = 120 << 20
)

// shrunk is an image as shrinkImage re-encoded it.
type shrunk struct {
	data          []byte
	typ           string
	width, height int
}

// shrinkImage re-encodes a JPEG or PNG; ok is false for anything else (or
// an image too large to decode), which is sent as it is. A file that
// claims to be a JPEG or PNG and does not decode is an error.
func shrinkImage(b []byte, maxSide, quality int) (out shrunk, ok bool, err error) {
	if maxSide <= 0 {
		maxSide = defaultMaxSide
	}
	if quality <= 0 || quality > 100 {
		quality = defaultQuality
	}
	isJPEG := bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF})
	isPNG := bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n"))
	if !isJPEG && !isPNG {
		return out, false, nil
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return out, false, fmt.Errorf("client: attachment image: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return out, false, nil
	}
	var src image.Image
	if isJPEG {
		src, err = jpeg.Decode(bytes.NewReader(b))
	} else {
		src, err = png.Decode(bytes.NewReader(b))
	}
	if err != nil {
		return out, false, fmt.Errorf("client: attachment image: %w", err)
	}
	m := scaleToFit(src, maxSide)
	if isJPEG {
		m = orient(m, jpegOrientation(b))
	}
	out.width, out.height = m.Rect.Dx(), m.Rect.Dy()
	var jb, pb bytes.Buffer
	if isJPEG || opaque(m) {
		if err := jpeg.Encode(&jb, m, &jpeg.Options{Quality: quality}); err != nil {
			return out, false, err
		}
	}
	if isPNG {
		// Graphics and screenshots are often smaller as PNG; keep the smaller.
		enc := png.Encoder{CompressionLevel: png.BestCompression}
		if err := enc.Encode(&pb, m); err != nil {
			return out, false, err
		}
	}
	if jb.Len() > 0 && (pb.Len() == 0 || jb.Len() < pb.Len()) {
		out.data, out.typ = jb.Bytes(), "image/jpeg"
	} else {
		out.data, out.typ = pb.Bytes(), "image/png"
	}
	return out, true, nil
}

// scaleToFit returns src as RGBA, shrunk to fit side (never enlarged).
// A large shrink first averages k x k blocks a few rows at a time, so a
// 20 MP photo never exists in RGBA at full size, then a bilinear step
// makes the exact size from at most twice it: every source pixel counts
// (no aliasing) and memory stays near the decoded image's own.
func scaleToFit(src image.Image, side int) *image.RGBA {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	tw, th := w, h
	if w > side || h > side {
		if w >= h {
			tw, th = side, max(1, int(int64(h)*int64(side)/int64(w)))
		} else {
			tw, th = max(1, int(int64(w)*int64(side)/int64(h))), side
		}
	}
	k := min(w/tw, h/th)
	var m *image.RGBA
	if k >= 2 {
		m = boxShrink(src, k)
	} else {
		m = image.NewRGBA(image.Rect(0, 0, w, h))
		draw.Draw(m, m.Rect, src, b.Min, draw.Src)
	}
	if m.Rect.Dx() == tw && m.Rect.Dy() == th {
		return m
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	xdraw.ApproxBiLinear.Scale(dst, dst.Rect, m, m.Rect, xdraw.Src, nil)
	return dst
}

// boxShrink averages k x k blocks of src (a ragged edge is dropped).
func boxShrink(src image.Image, k int) *image.RGBA {
	b := src.Bounds()
	w, h := b.Dx()/k, b.Dy()/k
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	band := image.NewRGBA(image.Rect(0, 0, b.Dx(), k)) // k source rows at a time
	sum := make([]uint32, 4*w)
	n := uint32(k * k)
	for y := range h {
		draw.Draw(band, band.Rect, src, image.Pt(b.Min.X, b.Min.Y+y*k), draw.Src)
		clear(sum)
		for r := range k {
			row := band.Pix[r*band.Stride:]
			for x := range w {
				s, p := sum[4*x:4*x+4], row[4*x*k:4*(x+1)*k]
				for i := 0; i < len(p); i += 4 {
					s[0] += uint32(p[i])
					s[1] += uint32(p[i+1])
					s[2] += uint32(p[i+2])
					s[3] += uint32(p[i+3])
				}
			}
		}
		d := dst.Pix[y*dst.Stride:]
		for i, v := range sum {
			d[i] = uint8((v + n/2) / n)
		}
	}
	return dst
}

// opaque reports whether every pixel of m has alpha 255.
func opaque(m *image.RGBA) bool {
	for i := 3; i < len(m.Pix); i += 4 {
		if m.Pix[i] != 0xFF {
			return false
		}
	}
	return true
}

// orient applies an EXIF orientation (2-8; anything else: as is) to m.
func orient(m *image.RGBA, o int) *image.RGBA {
	if o < 2 || o > 8 {
		return m
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	dw, dh := w, h
	if o >= 5 { // 5-8 swap the sides
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range dh {
		for x := range dw {
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
			copy(dst.Pix[y*dst.Stride+4*x:][:4], m.Pix[sy*m.Stride+4*sx:][:4])
		}
	}
	return dst
}

// jpegOrientation reads the EXIF orientation of a JPEG (1 when absent),
// walking the segments before the first scan.
func jpegOrientation(b []byte) int {
	for i := 2; i+4 <= len(b) && b[i] == 0xFF; {
		marker := b[i+1]
		switch {
		case marker == 0xFF:
			i++
			continue
		case marker == 0xD8 || marker == 0x01 || marker >= 0xD0 && marker <= 0xD7:
			i += 2
			continue
		case marker == 0xDA || marker == 0xD9:
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return 1
		}
		if seg := b[i+4 : i+2+n]; marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			if o := exifOrientation(seg[6:]); o >= 1 && o <= 8 {
				return o
			}
		}
		i += 2 + n
	}
	return 1
}

// exifOrientation reads tag 0x0112 of IFD0 in a TIFF structure; 0 if absent.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	off := int(bo.Uint32(t[4:]))
	if off < 8 || off+2 > len(t) {
		return 0
	}
	for k := range int(bo.Uint16(t[off:])) {
		e := off + 2 + 12*k
		if e+12 > len(t) {
			return 0
		}
		if bo.Uint16(t[e:]) == 0x0112 && bo.Uint16(t[e+2:]) == 3 { // SHORT
			return int(bo.Uint16(t[e+8:]))
		}
	}
	return 0
}
