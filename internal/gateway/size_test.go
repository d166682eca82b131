package gateway

import (
	"testing"
	"unsafe"
)

// Every socket holds one Conn: it stays in Go's 144-byte size class (it was
// 112 bytes before the output lock, the paced writer and the mask scan;
// docs/benchmarks.md has the memory per socket).
func TestConnFitsIts144ByteSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 144 {
		t.Fatalf("Conn is %d bytes: the next size class is 160, 16 bytes more for every socket", n)
	}
}
