package media

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

// The metadata the tests plant in inputs and look for in outputs: none of
// these bytes may survive the pipeline.
var (
	plantedMake   = "PlantedCameraMaker"
	plantedModel  = "PlantedModel-X1"
	plantedArtist = "Planted Author Name"
	plantedXMP    = `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><dc:creator>Planted XMP Creator</dc:creator></rdf:RDF></x:xmpmeta>`
)

// testPhoto draws a w x h landscape with a red block in the top-left corner
// and a blue one in the top-right, so that an orientation shows.
func testPhoto(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{uint8(80 + x*100/w), uint8(120 + y*80/h), 90, 255}
			switch {
			case x < w/4 && y < h/4:
				c = color.RGBA{230, 20, 20, 255}
			case x >= 3*w/4 && y < h/4:
				c = color.RGBA{20, 20, 230, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

// exifSegment builds an APP1 Exif payload (big-endian TIFF) with
// Orientation, Make, Model, Artist in IFD0 and a GPS IFD with a latitude.
func exifSegment(orientation int) []byte {
	var t bytes.Buffer
	be := binary.BigEndian
	t.WriteString("MM\x00\x2a")
	binary.Write(&t, be, uint32(8))
	type entry struct {
		tag, typ uint16
		count    uint32
		value    []byte // stored out of line when over 4 bytes
	}
	ascii := func(s string) []byte { return append([]byte(s), 0) }
	short := func(v int) []byte { return []byte{byte(v >> 8), byte(v), 0, 0} }
	ifd0 := []entry{
		{0x010F, 2, uint32(len(plantedMake) + 1), ascii(plantedMake)},
		{0x0110, 2, uint32(len(plantedModel) + 1), ascii(plantedModel)},
		{0x0112, 3, 1, short(orientation)},
		{0x013B, 2, uint32(len(plantedArtist) + 1), ascii(plantedArtist)},
		{0x8825, 4, 1, nil}, // GPS IFD pointer, patched below
	}
	gpsLat := make([]byte, 24) // 3 rationals: 48/1 51/1 2400/100
	for i, v := range []uint32{48, 1, 51, 1, 2400, 100} {
		be.PutUint32(gpsLat[4*i:], v)
	}
	gps := []entry{
		{0x0001, 2, 2, []byte("N\x00\x00\x00")},
		{0x0002, 5, 3, gpsLat},
	}
	// Layout: IFD0 at 8, its out-of-line data, then the GPS IFD, its data.
	ifdSize := func(n int) int { return 2 + 12*n + 4 }
	write := func(buf *bytes.Buffer, es []entry, at int, patch map[uint16]uint32) {
		data := at + ifdSize(len(es))
		var extra bytes.Buffer
		binary.Write(buf, be, uint16(len(es)))
		for _, e := range es {
			binary.Write(buf, be, e.tag)
			binary.Write(buf, be, e.typ)
			binary.Write(buf, be, e.count)
			switch {
			case patch[e.tag] != 0:
				binary.Write(buf, be, patch[e.tag])
			case len(e.value) <= 4:
				v := make([]byte, 4)
				copy(v, e.value)
				buf.Write(v)
			default:
				binary.Write(buf, be, uint32(data+extra.Len()))
				extra.Write(e.value)
				if extra.Len()%2 == 1 {
					extra.WriteByte(0)
				}
			}
		}
		binary.Write(buf, be, uint32(0))
		buf.Write(extra.Bytes())
	}
	var first bytes.Buffer
	write(&first, ifd0, 8, map[uint16]uint32{0x8825: 1}) // size probe
	gpsAt := 8 + first.Len()
	write(&t, ifd0, 8, map[uint16]uint32{0x8825: uint32(gpsAt)})
	write(&t, gps, gpsAt, nil)
	return append([]byte("Exif\x00\x00"), t.Bytes()...)
}

// displayP3ICC builds a minimal matrix/TRC ICC profile with Display P3's
// primaries (D50-adapted, as in Apple's profile) and the sRGB curve.
func displayP3ICC() []byte {
	be := binary.BigEndian
	xyz := func(x, y, z float64) []byte {
		b := make([]byte, 20)
		copy(b, "XYZ ")
		for i, v := range []float64{x, y, z} {
			be.PutUint32(b[8+4*i:], uint32(int32(v*65536)))
		}
		return b
	}
	para := make([]byte, 12+20)
	copy(para, "para")
	be.PutUint16(para[8:], 3)
	for i, v := range []float64{2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045} {
		be.PutUint32(para[12+4*i:], uint32(int32(v*65536)))
	}
	desc := append([]byte("desc\x00\x00\x00\x00\x00\x00\x00\x0bDisplay P3\x00"), make([]byte, 79)...)
	tags := []struct {
		sig  string
		data []byte
	}{
		{"desc", desc},
		{"rXYZ", xyz(0.5151, 0.2412, -0.0011)},
		{"gXYZ", xyz(0.2920, 0.6922, 0.0419)},
		{"bXYZ", xyz(0.1571, 0.0666, 0.7841)},
		{"rTRC", para}, {"gTRC", para}, {"bTRC", para},
	}
	var body bytes.Buffer
	off := 128 + 4 + 12*len(tags)
	var table bytes.Buffer
	binary.Write(&table, be, uint32(len(tags)))
	for _, t := range tags {
		table.WriteString(t.sig)
		binary.Write(&table, be, uint32(off+body.Len()))
		binary.Write(&table, be, uint32(len(t.data)))
		body.Write(t.data)
		for body.Len()%4 != 0 {
			body.WriteByte(0)
		}
	}
	h := make([]byte, 128)
	be.PutUint32(h, uint32(128+table.Len()+body.Len()))
	copy(h[12:], "mntr")
	copy(h[16:], "RGB ")
	copy(h[20:], "XYZ ")
	copy(h[36:], "acsp")
	return append(append(h, table.Bytes()...), body.Bytes()...)
}

// withSegments inserts APP segments right after a JPEG's SOI.
func withSegments(j []byte, segs ...[]byte) []byte {
	out := append([]byte{}, j[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, j[2:]...)
}

func appSegment(marker byte, payload []byte) []byte {
	s := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(s[2:], uint16(len(payload)+2))
	return append(s, payload...)
}

// plantedJPEG is a w x h photo stored sideways with orientation 6 and every
// kind of metadata the output must lose: EXIF (GPS, camera, author), XMP,
// a Display P3 ICC profile and a comment.
func plantedJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testPhoto(w, h), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return withSegments(b.Bytes(),
		appSegment(0xE1, exifSegment(6)),
		appSegment(0xE1, append([]byte("http://ns.adobe.com/xap/1.0/\x00"), plantedXMP...)),
		appSegment(0xE2, append([]byte("ICC_PROFILE\x00\x01\x01"), displayP3ICC()...)),
		appSegment(0xFE, []byte("Planted comment "+plantedArtist)),
	)
}

func testPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, testPhoto(w, h)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
