package load

import "testing"

// A sum over nodes is a measurement only when every node answered: the
// summary's CPU and memory figures are computed from complete samples only.
func TestSampleComplete(t *testing.T) {
	ok := NodeSample{URL: "a", RSS: 1 << 20, CPUSeconds: 2}
	failed := NodeSample{URL: "b", Err: "context deadline exceeded"}
	for _, tc := range []struct {
		name  string
		nodes []NodeSample
		want  bool
	}{
		{"no nodes", nil, false},
		{"one node answered", []NodeSample{ok}, true},
		{"one of two failed", []NodeSample{ok, failed}, false},
		{"the only node failed", []NodeSample{failed}, false},
	} {
		if got := (Sample{Nodes: tc.nodes}).complete(); got != tc.want {
			t.Errorf("%s: complete() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
