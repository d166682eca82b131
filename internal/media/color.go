package media

import (
	"encoding/binary"
	"image"
	"math"
)

// A colour transform from an input's RGB profile to sRGB: a tone curve per
// channel to linear light, one 3x3 matrix (profile -> PCS XYZ D50 -> linear
// sRGB), then the sRGB curve. That covers the matrix/TRC profiles cameras
// and phones write (Display P3, Adobe RGB, ProPhoto); a LUT-based profile
// is left as is, as are sRGB ones (matrix near the identity).
type colorTransform struct {
	in  [3][256]float32 // 8-bit channel value -> linear
	m   [3][3]float32
	out [4096]uint8 // linear (0..1 in 4096 steps) -> sRGB 8-bit
}

// xyzD50ToSRGB is linear sRGB from the ICC PCS (XYZ, D50), Bradford-adapted.
var xyzD50ToSRGB = [3][3]float64{
	{3.1338561, -1.6168667, -0.4906146},
	{-0.9787684, 1.9161415, 0.0334540},
	{0.0719453, -0.2289914, 1.4052427},
}

// iccToSRGB returns the transform of an RGB matrix/TRC profile to sRGB, or
// nil when there is nothing to do (no profile, not RGB, not matrix/TRC,
// unreadable, or already sRGB).
func iccToSRGB(p []byte) *colorTransform {
	if len(p) < 132 || string(p[16:20]) != "RGB " {
		return nil
	}
	tags := map[string][]byte{}
	n := int(binary.BigEndian.Uint32(p[128:]))
	for i := 0; i < n && i < 100; i++ {
		e := 132 + 12*i
		if e+12 > len(p) {
			return nil
		}
		off, size := int(binary.BigEndian.Uint32(p[e+4:])), int(binary.BigEndian.Uint32(p[e+8:]))
		if off < 0 || size < 0 || off+size > len(p) || off+size < off {
			return nil
		}
		tags[string(p[e:e+4])] = p[off : off+size]
	}
	var prof [3][3]float64 // columns: r, g, b XYZ
	for c, sig := range []string{"rXYZ", "gXYZ", "bXYZ"} {
		t := tags[sig]
		if len(t) < 20 || string(t[:4]) != "XYZ " {
			return nil
		}
		for k := 0; k < 3; k++ {
			prof[k][c] = float64(int32(binary.BigEndian.Uint32(t[8+4*k:]))) / 65536
		}
	}
	var ct colorTransform
	identity := true
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			var s float64
			for k := 0; k < 3; k++ {
				s += xyzD50ToSRGB[i][k] * prof[k][j]
			}
			ct.m[i][j] = float32(s)
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(s-want) > 0.02 {
				identity = false
			}
		}
	}
	if identity {
		return nil // sRGB (or close enough that converting would only cost time)
	}
	for c, sig := range []string{"rTRC", "gTRC", "bTRC"} {
		f := curve(tags[sig])
		if f == nil {
			return nil
		}
		for v := 0; v < 256; v++ {
			ct.in[c][v] = float32(f(float64(v) / 255))
		}
	}
	for i := range ct.out {
		ct.out[i] = uint8(math.Round(255 * srgbEncode(float64(i)/float64(len(ct.out)-1))))
	}
	return &ct
}

// curve reads an ICC tone curve ('curv' or 'para'), or nil.
func curve(t []byte) func(float64) float64 {
	if len(t) < 12 {
		return nil
	}
	s15 := func(o int) float64 { return float64(int32(binary.BigEndian.Uint32(t[o:]))) / 65536 }
	switch string(t[:4]) {
	case "curv":
		n := int(binary.BigEndian.Uint32(t[8:]))
		switch {
		case n == 0:
			return func(x float64) float64 { return x }
		case n == 1 && len(t) >= 14:
			g := float64(binary.BigEndian.Uint16(t[12:])) / 256
			return func(x float64) float64 { return math.Pow(x, g) }
		case n > 1 && len(t) >= 12+2*n:
			return func(x float64) float64 { // a sampled curve: interpolate
				pos := x * float64(n-1)
				i := int(pos)
				if i >= n-1 {
					return float64(binary.BigEndian.Uint16(t[12+2*(n-1):])) / 65535
				}
				a := float64(binary.BigEndian.Uint16(t[12+2*i:])) / 65535
				b := float64(binary.BigEndian.Uint16(t[12+2*i+2:])) / 65535
				return a + (b-a)*(pos-float64(i))
			}
		}
	case "para":
		fn := int(binary.BigEndian.Uint16(t[8:]))
		need := map[int]int{0: 1, 1: 3, 2: 4, 3: 5, 4: 7}[fn]
		if need == 0 || len(t) < 12+4*need {
			return nil
		}
		var a [7]float64
		for i := 0; i < need; i++ {
			a[i] = s15(12 + 4*i)
		}
		g, pa, pb, pc, pd, pe, pf := a[0], a[1], a[2], a[3], a[4], a[5], a[6]
		return func(x float64) float64 {
			switch fn {
			case 0:
				return math.Pow(x, g)
			case 1:
				if x >= -pb/pa {
					return math.Pow(pa*x+pb, g)
				}
				return 0
			case 2:
				if x >= -pb/pa {
					return math.Pow(pa*x+pb, g) + pc
				}
				return pc
			case 3:
				if x >= pd {
					return math.Pow(pa*x+pb, g)
				}
				return pc * x
			default:
				if x >= pd {
					return math.Pow(pa*x+pb, g) + pe
				}
				return pc*x + pf
			}
		}
	}
	return nil
}

func srgbEncode(l float64) float64 {
	if l <= 0.0031308 {
		return 12.92 * l
	}
	return 1.055*math.Pow(l, 1/2.4) - 0.055
}

// apply converts m's pixels in place (alpha untouched: m is not premultiplied).
func (ct *colorTransform) apply(m *image.NRGBA) {
	last := float32(len(ct.out) - 1)
	for y := m.Rect.Min.Y; y < m.Rect.Max.Y; y++ {
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for x := 0; x < m.Rect.Dx(); x++ {
			p := row[4*x : 4*x+3 : 4*x+3]
			r, g, b := ct.in[0][p[0]], ct.in[1][p[1]], ct.in[2][p[2]]
			for c := 0; c < 3; c++ {
				l := ct.m[c][0]*r + ct.m[c][1]*g + ct.m[c][2]*b
				l = min(max(l, 0), 1) // out-of-gamut colours clip to sRGB's edge
				p[c] = ct.out[int(l*last+0.5)]
			}
		}
	}
}
