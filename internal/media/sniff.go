package media

import (
	"bytes"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"

	xwebp "golang.org/x/image/webp"
)

// Format is an input image format the pipeline accepts.
type Format string

// The accepted formats. HEIC is not among them: no decoder in reach builds
// without cgo and a patent-encumbered codec (docs/protocol.md says so).
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	GIF  Format = "gif"
	WebP Format = "webp"
)

// sniff names the format from the first bytes, or "" when it is none of
// ours. Only the magic numbers count: a file named x.png that holds a JPEG
// is a JPEG, and one that starts with anything else is refused.
func sniff(b []byte) Format {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return JPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return PNG
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return GIF
	case len(b) >= 16 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return WebP
	}
	return ""
}

// decodeConfig reads only the header of b as format f: the dimensions,
// before a single pixel is decoded. The decoder is the sniffed format's
// own, never image.DecodeConfig's registry, so a polyglot cannot pick
// another decoder than the one its first bytes name.
func decodeConfig(f Format, b []byte) (image.Config, error) {
	r := bytes.NewReader(b)
	switch f {
	case JPEG:
		return jpeg.DecodeConfig(r)
	case PNG:
		return png.DecodeConfig(r)
	case GIF:
		return gif.DecodeConfig(r)
	default:
		return xwebp.DecodeConfig(r)
	}
}

// decode decodes b as format f; for a GIF, its first frame.
func decode(f Format, b []byte) (image.Image, error) {
	r := bytes.NewReader(b)
	switch f {
	case JPEG:
		return jpeg.Decode(r)
	case PNG:
		return png.Decode(r)
	case GIF:
		return gif.Decode(r) // the first frame
	default:
		return xwebp.Decode(r)
	}
}
