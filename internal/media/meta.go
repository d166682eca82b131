package media

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
)

// jpegMeta walks a JPEG's segments up to the first scan and returns its
// EXIF orientation (1 when absent or unreadable) and its ICC profile (the
// APP2 ICC_PROFILE chunks joined in order; nil when absent). It reads
// metadata only to apply it: nothing it finds is ever written out.
func jpegMeta(b []byte) (orientation int, icc []byte) {
	orientation = 1
	chunks := map[byte][]byte{}
	var total byte
	i := 2 // after SOI
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			break
		}
		marker := b[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		if marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01 {
			i += 2
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // start of scan, end of image
			break
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			break
		}
		seg := b[i+4 : i+2+n]
		switch {
		case marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")):
			if o := exifOrientation(seg[6:]); o >= 1 && o <= 8 {
				orientation = o
			}
		case marker == 0xE2 && bytes.HasPrefix(seg, []byte("ICC_PROFILE\x00")) && len(seg) > 14:
			seq, cnt := seg[12], seg[13]
			if cnt > 0 && seq >= 1 && seq <= cnt {
				total = cnt
				chunks[seq] = seg[14:]
			}
		}
		i += 2 + n
	}
	if total > 0 && len(chunks) == int(total) {
		for s := byte(1); s <= total; s++ {
			c, ok := chunks[s]
			if !ok {
				return orientation, nil
			}
			icc = append(icc, c...)
		}
	}
	return orientation, icc
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
	n := int(bo.Uint16(t[off:]))
	for k := 0; k < n; k++ {
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

// pngICC returns the decompressed iCCP profile of a PNG, or nil. The
// profile is bounded (1 MiB) so a zlib bomb in a chunk costs nothing.
func pngICC(b []byte) []byte {
	i := 8
	for i+12 <= len(b) {
		n := int(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		if n < 0 || i+12+n > len(b) {
			return nil
		}
		data := b[i+8 : i+8+n]
		switch typ {
		case "iCCP":
			z := bytes.IndexByte(data, 0)
			if z < 0 || z+2 > len(data) || data[z+1] != 0 {
				return nil
			}
			zr, err := zlib.NewReader(bytes.NewReader(data[z+2:]))
			if err != nil {
				return nil
			}
			p, err := io.ReadAll(io.LimitReader(zr, 1<<20))
			if err != nil {
				return nil
			}
			return p
		case "IDAT", "IEND":
			return nil // iCCP must come before the image data
		}
		i += 12 + n
	}
	return nil
}
