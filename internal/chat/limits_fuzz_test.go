package chat

import "testing"

// FuzzParseRate: a setting either parses into a rate that prints back to
// itself, or is refused; nothing panics or overflows into a negative count.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"20/1h", "32MiB/1m", "0", "off", "1/1ns", "9223372036854775807/1s", "8589934591GiB/1h", "5KiB/90s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r != Unlimited && (r.N <= 0 || r.Per <= 0) {
			t.Fatalf("ParseRate(%q) = %+v: a limit must be positive", s, r)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %+v prints as %q, which reads back as %+v, %v", s, r, r.String(), back, err)
		}
	})
}
