package load

import (
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	t.Run("buckets are contiguous and at most 1.6% wide", func(t *testing.T) {
		prev := int64(-1)
		for i := 0; prev < 1<<50; i++ {
			up := histUpper(i)
			if up <= prev {
				t.Fatalf("bucket %d upper %d <= previous %d", i, up, prev)
			}
			if histIndex(up) != i || histIndex(prev+1) != i {
				t.Fatalf("bucket %d: [%d, %d] maps to %d and %d", i, prev+1, up, histIndex(prev+1), histIndex(up))
			}
			if lo := prev + 1; lo >= 128 && float64(up-lo+1)/float64(lo) > 0.016 {
				t.Fatalf("bucket %d [%d, %d] is too wide", i, lo, up)
			}
			prev = up
		}
	})
	t.Run("percentiles of 1..1000 ms are close and merge exactly", func(t *testing.T) {
		var a, b Histogram
		for i := 1; i <= 1000; i++ {
			h := &a
			if i%2 == 0 {
				h = &b
			}
			h.Record(time.Duration(i) * time.Millisecond)
		}
		d := a.Data()
		d.Merge(b.Data())
		l := d.Latency()
		if l.Count != 1000 || l.Max != 1000 {
			t.Fatalf("count %d max %v", l.Count, l.Max)
		}
		for _, c := range []struct{ got, want float64 }{{l.P50, 500}, {l.P95, 950}, {l.P99, 990}} {
			if c.got < c.want || c.got > c.want*1.016 {
				t.Errorf("percentile %v, want %v (+1.6%%)", c.got, c.want)
			}
		}
	})
}

func TestFrames(t *testing.T) {
	t.Run("a client frame is masked and unmasks to the payload", func(t *testing.T) {
		for _, n := range []int{0, 5, 125, 126, 65535, 65536} {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(i)
			}
			f := appendClientFrame(nil, opText, p)
			if f[0] != 0x81 || f[1]&0x80 == 0 {
				t.Fatalf("n=%d: header %x %x", n, f[0], f[1])
			}
			hl := 2
			switch f[1] & 0x7F {
			case 126:
				hl = 4
			case 127:
				hl = 10
			}
			key, body := f[hl:hl+4], f[hl+4:]
			if len(body) != n {
				t.Fatalf("n=%d: body %d bytes", n, len(body))
			}
			for i := range body {
				if body[i]^key[i&3] != p[i] {
					t.Fatalf("n=%d: byte %d does not unmask", n, i)
				}
			}
		}
	})
	t.Run("fields are read from server frames", func(t *testing.T) {
		m := []byte(`{"type":"message","conversation":"cnv_1","seq":42,"sender":{"user_id":"usr_1","device_id":"dev_9"},"ciphertext":"QUJD"}`)
		if frameType(m) != "message" || stringField(m, "device_id") != "dev_9" || intField(m, "seq") != 42 {
			t.Fatalf("type %q device %q seq %d", frameType(m), stringField(m, "device_id"), intField(m, "seq"))
		}
		if frameType([]byte(`{ "type" : "synced" }`)) != "synced" {
			t.Fatal("spaces around the colon")
		}
		if frameType([]byte(`{"seq":1}`)) != "" {
			t.Fatal("a frame without type")
		}
	})
}
