package server

import "time"

// appendTS appends t as tsLayout (UTC, milliseconds: 2006-01-02T15:04:05.000Z)
// without time.Time.AppendFormat, which looked up the location and parsed
// the layout once per frame: 8 % of a node's CPU when every send is
// answered with a sent frame. Times outside 1970-9999 take AppendFormat.
func appendTS(b []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	if ms < 0 || ms >= 253402300800000 {
		return t.UTC().AppendFormat(b, tsLayout)
	}
	days, rem := ms/86400000, ms%86400000
	// Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, m, 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	b = append(b, 'T')
	b = appendDigits(b, rem/3600000, 2)
	b = append(b, ':')
	b = appendDigits(b, rem/60000%60, 2)
	b = append(b, ':')
	b = appendDigits(b, rem/1000%60, 2)
	b = append(b, '.')
	b = appendDigits(b, rem%1000, 3)
	return append(b, 'Z')
}

// appendDigits appends v (>= 0) as exactly n decimal digits.
func appendDigits(b []byte, v int64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, 0)
	}
	for i := len(b) - 1; n > 0; i, n = i-1, n-1 {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}
