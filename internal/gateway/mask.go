package gateway

import (
	"encoding/binary"
	"errors"
)

// closeProtocolError is the close code for a frame RFC 6455 forbids
// (wire/close.go lists 1002 as nbio's; the gateway sends it for this one).
const closeProtocolError = 1002

var errUnmasked = errors.New("gateway: unmasked client frame")

// maskScan follows the frame boundaries of a socket's inbound stream, ahead
// of nbio's parser, to check one bit nbio does not: RFC 6455 §5.1 requires
// every client frame to be masked and a server to close the connection on
// one that is not. nbio unmasks a masked frame and takes an unmasked one as
// it is. The scan costs a few comparisons per frame header and no copy:
// payload bytes are only counted.
type maskScan struct {
	skip uint64   // payload bytes of the current frame still to come
	head [10]byte // a frame header cut by the end of a read
	n    int      // bytes in head
}

// scan reports whether every frame header that starts in data is masked.
func (m *maskScan) scan(data []byte) bool {
	for len(data) > 0 {
		if m.skip > 0 {
			k := min(m.skip, uint64(len(data)))
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
			if m.n >= need || len(data) == 0 {
				break
			}
			k := copy(m.head[m.n:need], data)
			m.n += k
			data = data[k:]
		}
		if m.n < need {
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
		m.skip = size + 4 // the masking key, then the payload
		if m.skip < size {
			return false // a length no frame can have; nbio refuses it as too big anyway
		}
	}
	return true
}
