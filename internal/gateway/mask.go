package gateway

import (
	"encoding/binary"
	"errors"
	"math"
)

var errUnmasked = errors.New("gateway: unmasked client frame")

// maskScan follows the frame boundaries of a socket's inbound stream, ahead
// of nbio's parser, to check one bit nbio does not: RFC 6455 §5.1 requires
// every client frame to be masked and a server to close the connection on
// one that is not. nbio unmasks a masked frame and takes an unmasked one as
// it is. The scan costs a few comparisons per frame header and no copy:
// payload bytes are only counted.
//
// It is 16 bytes, so that a Conn stays in the 144-byte size class: skip
// is 32 bits because no frame nbio takes comes near 4 GiB (a longer one is
// refused here, and nbio would refuse it as too big).
type maskScan struct {
	skip   uint32   // payload bytes of the current frame still to come
	n      uint8    // bytes in head
	head   [10]byte // a frame header cut by the end of a read
	closed bool     // a close frame's header went by
}

// scan reports whether every frame header that starts in data is masked.
func (m *maskScan) scan(data []byte) bool {
	for len(data) > 0 {
		if m.skip > 0 {
			k := min(m.skip, uint32(min(len(data), math.MaxUint32)))
			m.skip -= k
			data = data[k:]
			continue
		}
		// Gather the header up to its length field (2, 4 or 10 bytes).
		need := 2
		for {
			if m.n >= 2 {
				if m.head[1]&0x80 == 0 {
					return false
				}
				switch m.head[1] & 0x7F {
				case 126:
					need = 4
				case 127:
					need = 10
				}
			}
			if int(m.n) >= need || len(data) == 0 {
				break
			}
			k := copy(m.head[m.n:need], data)
			m.n += uint8(k)
			data = data[k:]
		}
		if int(m.n) < need {
			return true // the rest of the header comes with the next read
		}
		var size uint64
		switch need {
		case 2:
			size = uint64(m.head[1] & 0x7F)
		case 4:
			size = uint64(binary.BigEndian.Uint16(m.head[2:4]))
		default:
			size = binary.BigEndian.Uint64(m.head[2:10])
		}
		m.n = 0
		if m.head[0]&0x0F == opClose {
			m.closed = true
		}
		if size > math.MaxUint32-4 {
			return false // a length no frame here can have; nbio refuses it as too big anyway
		}
		m.skip = uint32(size) + 4 // the masking key, then the payload
	}
	return true
}
