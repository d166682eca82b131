package wire

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeClientFrame decodes a client frame in one pass, without reflection,
// for the socket's hot path. It gives exactly what the two encoding/json
// calls it replaces give:
//
//	headErr = json.Unmarshal(data, head) // the head first, so an error can name the frame's id
//	err     = json.Unmarshal(data, f)
//
// the same values, the same first error (syntax errors are encoding/json's
// own, type errors are *json.UnmarshalTypeError with the same fields, invalid
// base64 is base64.CorruptInputError), including encoding/json's accidents:
// keys match case-insensitively (Unicode simple folding, so "ſeq" is seq),
// the last of duplicate keys wins but a null keeps an earlier string,
// duplicate ciphertexts objects merge, a []byte also takes an array of
// numbers 0-255, and decoding goes on after a type error so the first one in
// document order is reported. The differential fuzz test holds it to that.
// After an error, head and f may hold part of the frame: do not use them.
func DecodeClientFrame(data []byte, head *Head, f *ClientFrame) (headErr, err error) {
	d := frameDecoder{data: data}
	if !d.top(head, f) {
		// A syntax error. The node answers it with a fixed message, but take
		// encoding/json's own error so both decoders stay comparable.
		err = json.Unmarshal(data, new(json.RawMessage))
		if err == nil {
			err = errDecoderDisagrees
		}
		return err, err
	}
	return d.headErr, d.err
}

// errDecoderDisagrees would mean a bug here: encoding/json took a frame this decoder refused.
var errDecoderDisagrees = errors.New("frame decoder: refused a frame encoding/json accepts")

// maxDepth is encoding/json's limit on nested arrays and objects.
const maxDepth = 10000

// Targets of the type errors, as encoding/json names them.
var (
	stringType   = reflect.TypeFor[string]()
	int64Type    = reflect.TypeFor[int64]()
	uint8Type    = reflect.TypeFor[uint8]()
	bytesType    = reflect.TypeFor[[]byte]()
	bytesMapType = reflect.TypeFor[map[string][]byte]()
	stringsType  = reflect.TypeFor[[]string]()
	headType     = reflect.TypeFor[Head]()
	frameType    = reflect.TypeFor[ClientFrame]()
)

// frameDecoder walks data once. A syntax error makes a method return false;
// type and base64 errors are kept (the first for each target) and decoding
// goes on, as encoding/json does.
type frameDecoder struct {
	data    []byte
	pos     int
	headErr error // first error decoding into Head
	err     error // first error decoding into ClientFrame
}

// field of ClientFrame a key names.
type field uint8

const (
	fieldNone field = iota
	fieldType
	fieldID
	fieldConversation
	fieldCiphertexts
	fieldCiphertext
	fieldPlaintext
	fieldSeq
	fieldAttachments
)

// fieldNames are the JSON names of ClientFrame's fields, by field.
var fieldNames = [...]string{"", "type", "id", "conversation", "ciphertexts", "ciphertext", "plaintext", "seq", "attachments"}

func (d *frameDecoder) top(head *Head, f *ClientFrame) bool {
	d.space()
	if d.pos >= len(d.data) {
		return false
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		if !d.object(head, f) {
			return false
		}
	case c == 'n':
		if !d.literal("null") {
			return false
		}
	default:
		start := d.pos
		kind, ok := d.skip(0)
		if !ok {
			return false
		}
		off := d.pos
		if kind == "array" {
			off = start + 1
		}
		d.headErr = &json.UnmarshalTypeError{Value: kind, Type: headType, Offset: int64(off)}
		d.err = &json.UnmarshalTypeError{Value: kind, Type: frameType, Offset: int64(off)}
	}
	d.space()
	return d.pos == len(d.data)
}

// object decodes the top-level object; d.data[d.pos] is '{'.
func (d *frameDecoder) object(head *Head, f *ClientFrame) bool {
	d.pos++
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return true
	}
	for {
		key, clean, ok := d.str()
		if !ok || !d.colon() {
			return false
		}
		if !clean {
			key = unquote(key)
		}
		switch fl := matchField(key); fl {
		case fieldType:
			ok = d.stringField(fl, &f.Type, &head.Type, true)
		case fieldID:
			ok = d.stringField(fl, &f.ID, &head.ID, true)
		case fieldConversation:
			ok = d.stringField(fl, &f.Conversation, nil, false)
		case fieldCiphertexts:
			ok = d.bytesMap(&f.Ciphertexts)
		case fieldCiphertext:
			ok = d.bytes(fl, &f.Ciphertext, 1)
		case fieldPlaintext:
			ok = d.bytes(fl, &f.Plaintext, 1)
		case fieldSeq:
			ok = d.seq(&f.Seq)
		case fieldAttachments:
			ok = d.strings(fl, &f.Attachments)
		default:
			_, ok = d.skip(1)
		}
		if !ok {
			return false
		}
		if more, ok := d.next('}'); !ok || !more {
			return ok
		}
	}
}

// typeError keeps a type error as encoding/json reports it for fl of ClientFrame
// and, when inHead, for the same field of Head.
func (d *frameDecoder) typeError(fl field, inHead bool, value string, t reflect.Type, off int) {
	if d.err == nil {
		d.err = &json.UnmarshalTypeError{Value: value, Type: t, Offset: int64(off), Struct: frameType.Name(), Field: fieldNames[fl]}
	}
	if inHead && d.headErr == nil {
		d.headErr = &json.UnmarshalTypeError{Value: value, Type: t, Offset: int64(off), Struct: headType.Name(), Field: fieldNames[fl]}
	}
}

// mismatch skips a value of the wrong kind for fl and reports it. The offset
// is where encoding/json reports it: just inside an array or object, just
// after a literal.
func (d *frameDecoder) mismatch(fl field, inHead bool, t reflect.Type, depth int) bool {
	start := d.pos
	kind, ok := d.skip(depth)
	if !ok {
		return false
	}
	off := d.pos
	if kind == "array" || kind == "object" {
		off = start + 1
	}
	d.typeError(fl, inHead, kind, t, off)
	return true
}

// stringField decodes a string into dst (and dst2 if not nil); null leaves them as they are.
func (d *frameDecoder) stringField(fl field, dst, dst2 *string, inHead bool) bool {
	if d.pos >= len(d.data) {
		return false
	}
	switch d.data[d.pos] {
	case '"':
		raw, clean, ok := d.str()
		if !ok {
			return false
		}
		var s string
		switch {
		case !clean:
			s = string(unquote(raw))
		case string(raw) == TypeSend: // the common types cost no allocation
			s = TypeSend
		case string(raw) == TypeAck:
			s = TypeAck
		case string(raw) == TypePing:
			s = TypePing
		default:
			s = string(raw)
		}
		*dst = s
		if dst2 != nil {
			*dst2 = s
		}
		return true
	case 'n':
		return d.literal("null")
	}
	return d.mismatch(fl, inHead, stringType, 1)
}

// seq decodes a *int64: null sets nil, a number must be an integer in range.
func (d *frameDecoder) seq(dst **int64) bool {
	if d.pos >= len(d.data) {
		return false
	}
	switch c := d.data[d.pos]; {
	case c == 'n':
		*dst = nil
		return d.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		num, ok := d.number()
		if !ok {
			return false
		}
		if *dst == nil {
			*dst = new(int64) // encoding/json allocates before it parses, and reuses a pointer from a duplicate key
		}
		if n, err := strconv.ParseInt(string(num), 10, 64); err == nil {
			**dst = n
		} else {
			d.typeError(fieldSeq, false, "number "+string(num), int64Type, d.pos)
		}
		return true
	case c == '"' || c == 't' || c == 'f' || c == '[' || c == '{':
		if *dst == nil {
			*dst = new(int64)
		}
	}
	return d.mismatch(fieldSeq, false, int64Type, 1)
}

// bytesMap decodes ciphertexts: null sets nil, an object adds to the map (made if nil).
func (d *frameDecoder) bytesMap(dst *map[string][]byte) bool {
	if d.pos >= len(d.data) {
		return false
	}
	switch d.data[d.pos] {
	case 'n':
		*dst = nil
		return d.literal("null")
	case '{':
	default:
		return d.mismatch(fieldCiphertexts, false, bytesMapType, 1)
	}
	if *dst == nil {
		*dst = make(map[string][]byte)
	}
	m := *dst
	d.pos++
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return true
	}
	for {
		key, clean, ok := d.str()
		if !ok || !d.colon() {
			return false
		}
		var v []byte // encoding/json decodes each value into a zeroed element
		if !d.bytes(fieldCiphertexts, &v, 2) {
			return false
		}
		if !clean {
			key = unquote(key)
		}
		m[string(key)] = v
		if more, ok := d.next('}'); !ok || !more {
			return ok
		}
	}
}

// bytes decodes a []byte at the given depth: a base64 string into a new
// slice, null to nil, or an array of numbers 0-255 into the slice already
// there, as encoding/json does (it reuses the backing array, and a null
// element keeps the byte that was there).
func (d *frameDecoder) bytes(fl field, dst *[]byte, depth int) bool {
	if d.pos >= len(d.data) {
		return false
	}
	switch d.data[d.pos] {
	case '"':
		raw, clean, ok := d.str()
		if !ok {
			return false
		}
		if !clean {
			raw = unquote(raw) // what base64 sees, and so its error's offset, is the decoded string
		}
		b := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
		n, err := base64.StdEncoding.Decode(b, raw)
		if err != nil {
			if d.err == nil {
				d.err = err
			}
			return true
		}
		*dst = b[:n]
		return true
	case 'n':
		*dst = nil
		return d.literal("null")
	case '[':
		return d.byteArray(fl, dst, depth)
	}
	return d.mismatch(fl, false, bytesType, depth)
}

// byteArray decodes [n, ...] into *dst the way encoding/json fills a slice.
func (d *frameDecoder) byteArray(fl field, dst *[]byte, depth int) bool {
	if depth+1 > maxDepth {
		return false
	}
	d.pos++
	d.space()
	s := *dst
	i := 0
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
	} else {
		for {
			if i >= len(s) {
				if i < cap(s) {
					s = s[:i+1] // the old byte shows if the element is null
				} else {
					s = append(s, 0)
				}
			}
			if d.pos >= len(d.data) {
				return false
			}
			switch c := d.data[d.pos]; {
			case c == 'n':
				if !d.literal("null") {
					return false
				}
			case c == '-' || '0' <= c && c <= '9':
				num, ok := d.number()
				if !ok {
					return false
				}
				if n, err := strconv.ParseUint(string(num), 10, 8); err == nil {
					s[i] = byte(n)
				} else {
					d.typeError(fl, false, "number "+string(num), uint8Type, d.pos)
				}
			default:
				if !d.mismatch(fl, false, uint8Type, depth+1) {
					return false
				}
			}
			i++
			more, ok := d.next(']')
			if !ok {
				return false
			}
			if !more {
				break
			}
		}
	}
	if i == 0 {
		*dst = []byte{}
		return true
	}
	*dst = s[:i]
	return true
}

// next reads the ',' or the closing byte after a member or element; more says which.
func (d *frameDecoder) next(closing byte) (more, ok bool) {
	d.space()
	if d.pos >= len(d.data) {
		return false, false
	}
	switch d.data[d.pos] {
	case ',':
		d.pos++
		d.space()
		return true, true
	case closing:
		d.pos++
		return false, true
	}
	return false, false
}

// colon reads the ':' after a key and the space around it.
func (d *frameDecoder) colon() bool {
	d.space()
	if d.pos >= len(d.data) || d.data[d.pos] != ':' {
		return false
	}
	d.pos++
	d.space()
	return true
}

func (d *frameDecoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *frameDecoder) literal(lit string) bool {
	if len(d.data)-d.pos < len(lit) || string(d.data[d.pos:d.pos+len(lit)]) != lit {
		return false
	}
	d.pos += len(lit)
	return true
}

// str reads a string; raw is its bytes between the quotes, and clean says
// they are the decoded string too (no escapes, valid UTF-8), else unquote them.
func (d *frameDecoder) str() (raw []byte, clean, ok bool) {
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		return nil, false, false
	}
	start := d.pos + 1
	esc, high := false, false
	for i := start; i < len(d.data); {
		if len(d.data)-i >= 8 && !special8(binary.LittleEndian.Uint64(d.data[i:])) {
			i += 8 // ciphertexts are long runs of plain bytes
			continue
		}
		c := d.data[i]
		if plain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			d.pos = i + 1
			raw = d.data[start:i]
			return raw, !esc && (!high || utf8.Valid(raw)), true
		case c >= utf8.RuneSelf:
			high = true
			i++
			continue
		case c < 0x20:
			return nil, false, false
		}
		// a backslash
		esc = true
		if i+1 >= len(d.data) {
			return nil, false, false
		}
		switch d.data[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if len(d.data)-i < 6 {
				return nil, false, false
			}
			for _, h := range d.data[i+2 : i+6] {
				if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
					return nil, false, false
				}
			}
			i += 6
		default:
			return nil, false, false
		}
	}
	return nil, false, false
}

// special8 reports whether any of the 8 bytes in w is a quote, a backslash,
// a control character or not ASCII (exactly: the usual zero-byte tests give
// no false "false").
func special8(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(x uint64) uint64 { return (x - ones) & ^x & highs }
	return (hasZero(w^(ones*'"')) | hasZero(w^(ones*'\\')) | (w-ones*0x20)&^w&highs | w&highs) != 0
}

// plain marks the ASCII bytes a string holds as they are: not a quote, a backslash or a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// number reads a JSON number and returns its bytes.
func (d *frameDecoder) number() ([]byte, bool) {
	data, i := d.data, d.pos
	digits := func() bool {
		j := i
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case !digits():
		return nil, false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	num := data[d.pos:i]
	d.pos = i
	return num, true
}

// skip reads any value enclosed in depth arrays and objects, checking its
// syntax as encoding/json does, and says what it was ("string", "number",
// "bool", "null", "array" or "object", as type errors name them).
func (d *frameDecoder) skip(depth int) (kind string, ok bool) {
	var buf [32]byte
	open := buf[:0] // the arrays and objects we are in, as '[' or '{'
	for {
		if d.pos >= len(d.data) {
			return "", false
		}
		k := ""
		switch c := d.data[d.pos]; {
		case c == '{' || c == '[':
			k = "object"
			if c == '[' {
				k = "array"
			}
			if depth+len(open)+1 > maxDepth {
				return "", false
			}
			open = append(open, c)
			d.pos++
			d.space()
			if d.pos < len(d.data) && d.data[d.pos] == c+2 { // ']' and '}' are 2 after '[' and '{'
				d.pos++
				open = open[:len(open)-1]
			} else {
				if c == '{' {
					if _, _, ok := d.str(); !ok || !d.colon() {
						return "", false
					}
				}
				if kind == "" {
					kind = k
				}
				continue
			}
		case c == '"':
			k = "string"
			if _, _, ok := d.str(); !ok {
				return "", false
			}
		case c == 't':
			k = "bool"
			ok = d.literal("true")
		case c == 'f':
			k = "bool"
			ok = d.literal("false")
		case c == 'n':
			k = "null"
			ok = d.literal("null")
		case c == '-' || '0' <= c && c <= '9':
			k = "number"
			_, ok = d.number()
		default:
			return "", false
		}
		if k == "bool" || k == "null" || k == "number" {
			if !ok {
				return "", false
			}
		}
		if kind == "" {
			kind = k
		}
		// After a value: close what ends here, or go on to the next member or element.
		for {
			if len(open) == 0 {
				return kind, true
			}
			top := open[len(open)-1]
			more, ok := d.next(top + 2)
			if !ok {
				return "", false
			}
			if !more {
				open = open[:len(open)-1]
				continue
			}
			if top == '{' {
				if _, _, ok := d.str(); !ok || !d.colon() {
					return "", false
				}
			}
			break
		}
	}
}

// matchField says which field a key names, matching as encoding/json does:
// exactly, else after folding case (Unicode simple folding).
func matchField(key []byte) field {
	for fl, name := range fieldNames {
		if fl != 0 && len(key) == len(name) && foldEqual(key, name) {
			return field(fl)
		}
	}
	for _, c := range key {
		if c >= utf8.RuneSelf { // a rune like K (Kelvin) or ſ folds to an ASCII letter
			return matchFolded(key)
		}
	}
	return fieldNone
}

// foldEqual reports whether the ASCII key equals name (lower-case letters) but for case.
func foldEqual(key []byte, name string) bool {
	for i := range len(name) {
		if c := key[i]; c != name[i] && c != name[i]-('a'-'A') {
			return false
		}
	}
	return true
}

// matchFolded folds each rune of key to the smallest rune of its case orbit, as encoding/json's foldName does.
func matchFolded(key []byte) field {
	var buf [16]byte
	folded := buf[:0]
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			folded = append(folded, c)
			i++
		} else {
			r, n := utf8.DecodeRune(key[i:])
			i += n
			r = foldRune(r)
			if r >= utf8.RuneSelf {
				return fieldNone // names are ASCII
			}
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			folded = append(folded, byte(r))
		}
		if len(folded) > len("conversation") {
			return fieldNone
		}
	}
	for fl, name := range fieldNames {
		if fl != 0 && string(folded) == name {
			return field(fl)
		}
	}
	return fieldNone
}

func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// unquote turns the bytes of a JSON string (between its quotes, syntax
// already checked) into the string encoding/json decodes: escapes resolved,
// an unpaired surrogate and every byte of invalid UTF-8 as U+FFFD.
func unquote(s []byte) []byte {
	b := make([]byte, 0, len(s)+2*utf8.UTFMax)
	for r := 0; r < len(s); {
		switch c := s[r]; {
		case c == '\\':
			switch e := s[r+1]; e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := getu4(s[r:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
						r += 6
						b = utf8.AppendRune(b, dec)
						continue
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
				continue
			default: // '"', '\\', '/'
				b = append(b, e)
			}
			r += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, n := utf8.DecodeRune(s[r:])
			b = utf8.AppendRune(b, rr)
			r += n
		}
	}
	return b
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}
