package wire

// strings decodes a []string (a send's attachments) as encoding/json does:
// null sets nil; an array fills the slice already there (a duplicate key
// reuses its backing array, and a null element keeps the string that was
// there), an empty array gives an empty, non-nil slice. Frames without the
// field never come here, so they allocate nothing for it.
func (d *frameDecoder) strings(fl field, dst *[]string) bool {
	if d.pos >= len(d.data) {
		return false
	}
	switch d.data[d.pos] {
	case 'n':
		*dst = nil
		return d.literal("null")
	case '[':
	default:
		return d.mismatch(fl, false, stringsType, 1)
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
					s = s[:i+1] // the old string shows if the element is null
				} else {
					s = append(s, "")
				}
			}
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
					raw = unquote(raw)
				}
				s[i] = string(raw)
			case 'n':
				if !d.literal("null") {
					return false
				}
			default:
				if !d.mismatch(fl, false, stringType, 2) {
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
		*dst = []string{}
		return true
	}
	*dst = s[:i]
	return true
}
