package wire

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// referenceDecode decodes a frame the way the node did with encoding/json:
// once for the head, once for the whole frame. It is the reference
// DecodeClientFrame must agree with.
func referenceDecode(data []byte) (head Head, f ClientFrame, headErr, err error) {
	headErr = json.Unmarshal(data, &head)
	err = json.Unmarshal(data, &f)
	return head, f, headErr, err
}

// diffDecode decodes data both ways and describes the first difference, or returns "".
// Errors must be equal values (same type, text and offset): the error text
// of the frame decode reaches the client in the bad_frame message. Values
// are compared when there is no error (on error the node drops them).
func diffDecode(data []byte) string {
	wantHead, wantF, wantHeadErr, wantErr := referenceDecode(data)
	var head Head
	var f ClientFrame
	headErr, err := DecodeClientFrame(data, &head, &f)
	switch {
	case !reflect.DeepEqual(headErr, wantHeadErr):
		return fmt.Sprintf("head error %#v (%v)\nencoding/json: %#v (%v)", headErr, headErr, wantHeadErr, wantHeadErr)
	case !reflect.DeepEqual(err, wantErr):
		return fmt.Sprintf("frame error %#v (%v)\nencoding/json: %#v (%v)", err, err, wantErr, wantErr)
	case wantHeadErr == nil && head != wantHead:
		return fmt.Sprintf("head %+v\nencoding/json: %+v", head, wantHead)
	case wantErr == nil && !reflect.DeepEqual(f, wantF):
		return fmt.Sprintf("frame %s\nencoding/json: %s", dumpFrame(f), dumpFrame(wantF))
	}
	return ""
}

func dumpFrame(f ClientFrame) string {
	seq := "nil"
	if f.Seq != nil {
		seq = fmt.Sprint(*f.Seq)
	}
	return fmt.Sprintf("{Type:%q ID:%q Conversation:%q Ciphertexts:%#v Ciphertext:%#v Plaintext:%#v Seq:%s Attachments:%#v}",
		f.Type, f.ID, f.Conversation, f.Ciphertexts, f.Ciphertext, f.Plaintext, seq, f.Attachments)
}

var (
	ct200 = base64.StdEncoding.EncodeToString(make([]byte, 200))
	// seedFrames are valid frames of every type and broken ones; the fuzz target and TestDecodeClientFrameAgrees share them.
	seedFrames = []string{
		`{"type":"send","id":"m-1","conversation":"cnv_a","ciphertexts":{"dev_1":"` + ct200 + `","dev_2":"AQID"}}`,
		`{"type":"send","id":"m-2","conversation":"cnv_a","ciphertext":"AQID"}`,
		`{"type":"send","id":"m-3","conversation":"cnv_a","plaintext":"aGk="}`,
		`{"type":"ack","conversation":"cnv_a","seq":42}`,
		`{"type":"ack","conversation":"cnv_a","seq":-9223372036854775808}`,
		`{"type":"ping"}`, `{"type":"ping","id":"p"}`,
		`{"type":"subscribe","id":"x"}`, `{"type":"sent","id":"m","seq":7,"ts":"2023-11-14T22:13:20.120Z"}`,
		` { "type" : "send" , "id":"m" , "ciphertexts" : { } } `,
		`{}`, `null`, `[]`, `"send"`, `1`, `true`, ``, `{`, `}`, `{"type":"ping"}{"type":"ping"}`, `{"type":"ping",}`,
		`{"type":1}`, `{"id":{}}`, `{"type":"send","seq":1.5}`, `{"type":"ack","seq":"1"}`,
		`{"type":"send","ciphertext":"%%%"}`, `{"type":"send","ciphertexts":{"d":"AQ="}}`, `{"type":"send","ciphertexts":[]}`,
		`{"type":"send","ciphertext":[1,2,255]}`, `{"type":"send","ciphertext":[256]}`, `{"type":"send","ciphertext":"AQID","ciphertext":[null,null,null,null]}`,
		`{"TYPE":"send","Id":"m","ſeq":1,"ciphertextſ":{"a":null}}`, `{"t\u0079pe":"s\u0065nd","id":"\ud83d\ude00\ud800"}`,
		`{"type":"send","x":{"a":[1,{"b":null,"c":[true,false,-0.5e+3]}],"d":"\u00e9"}}`,
		"{\"type\":\"send\",\"id\":\"\xff\xfe\",\"ciphertexts\":{\"\xc3\":\"AQID\"}}",
		`{"type":"send","ciphertext":"AQ\u003d\u003d"}`, `{"type":"send","ciphertext":"AQ\nID"}`,
		`{"type":"send","id":"m-4","conversation":"cnv_a","ciphertext":"AQID","attachments":["0123456789abcdef0123456789abcdef","fedcba9876543210fedcba9876543210"]}`,
		`{"type":"send","attachments":[]}`, `{"type":"send","attachments":null}`, `{"type":"send","attachments":"a"}`,
		`{"type":"send","attachments":["a",1,true,null,{},[]]}`, `{"type":"send","attachments":["a","b"],"attachments":[null]}`,
		`{"type":"send","Attachments":["\u0061",null],"attachments":[null,null,"c"]}`, `{"type":"send","attachments":[[[]]]}`,
	}
)

func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range seedFrames {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if d := diffDecode(data); d != "" {
			t.Fatalf("%q\n%s", data, d)
		}
	})
}

func TestDecodeClientFrameAgreesWithEncodingJSON(t *testing.T) {
	cases := append([]string{}, seedFrames...)
	deep := func(n int, open, close string) string {
		return `{"type":"ping","x":` + strings.Repeat(open, n-1) + strings.Repeat(close, n-1) + `}`
	}
	cases = append(cases,
		deep(maxDepth, "[", "]"), deep(maxDepth+1, "[", "]"), deep(maxDepth+1, `{"a":`, "}"),
		`{"type":"send","ciphertext":`+strings.Repeat("[", maxDepth-1)+strings.Repeat("]", maxDepth-1)+`}`,
		`{"type":"send","ciphertext":[`+strings.Repeat("[", maxDepth-1)+strings.Repeat("]", maxDepth-1)+`]}`,
		`{"type":"send","ciphertexts":{"d":[`+strings.Repeat("[", maxDepth-2)+strings.Repeat("]", maxDepth-2)+`]}}`,
		`{"type":"send","ciphertexts":{"d":[`+strings.Repeat("[", maxDepth-3)+strings.Repeat("]", maxDepth-3)+`]}}`,
	)
	for _, s := range cases {
		name := s
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			if d := diffDecode([]byte(s)); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// TestDecodeClientFrameEdges pins what encoding/json does at the edges (and
// so what DecodeClientFrame must do): if a Go release changes one of these,
// this test says which before the fuzz target would.
func TestDecodeClientFrameEdges(t *testing.T) {
	i64 := func(n int64) *int64 { return &n }
	many := map[string][]byte{}
	var manyJSON strings.Builder
	manyJSON.WriteString(`{"type":"send","id":"m","conversation":"c","ciphertexts":{`)
	for i := range 2000 {
		if i > 0 {
			manyJSON.WriteByte(',')
		}
		k := fmt.Sprintf("dev_%04d", i)
		many[k] = []byte{byte(i), byte(i >> 8)}
		fmt.Fprintf(&manyJSON, "%q:%q", k, base64.StdEncoding.EncodeToString(many[k]))
	}
	manyJSON.WriteString(`}}`)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}

	for _, tc := range []struct {
		name, in string
		want     ClientFrame
		err      string // substring of the frame error; "" for none
		headErr  bool
	}{
		{name: "escapes in strings are resolved", in: `{"type":"send","id":"a\"b\\c\/d\b\f\n\r\t"}`,
			want: ClientFrame{Type: "send", ID: "a\"b\\c/d\b\f\n\r\t"}},
		{name: "unicode escapes and surrogate pairs decode", in: `{"type":"send","id":"\u00e9\ud83d\ude00"}`,
			want: ClientFrame{Type: "send", ID: "é😀"}},
		{name: "a lone surrogate becomes U+FFFD and the next escape stays", in: `{"type":"send","id":"\ud800\u0041\udc00"}`,
			want: ClientFrame{Type: "send", ID: "\uFFFDA\uFFFD"}},
		{name: "raw UTF-8 passes and invalid bytes become U+FFFD", in: "{\"type\":\"send\",\"id\":\"é\xff\xc3\",\"conversation\":\"日本\"}",
			want: ClientFrame{Type: "send", ID: "é\uFFFD\uFFFD", Conversation: "日本"}},
		{name: "an escaped key still names its field", in: `{"t\u0079pe":"ack","\u0069d":"x"}`, want: ClientFrame{Type: "ack", ID: "x"}},
		{name: "keys match whatever their case", in: `{"TYPE":"ack","Conversation":"c","SeQ":3}`,
			want: ClientFrame{Type: "ack", Conversation: "c", Seq: i64(3)}},
		{name: "keys match after Unicode folding: long s is s", in: `{"type":"ack","ſeq":4,"converſation":"c"}`,
			want: ClientFrame{Type: "ack", Conversation: "c", Seq: i64(4)}},
		{name: "seq takes the int64 bounds", in: `{"seq":9223372036854775807}`, want: ClientFrame{Seq: i64(9223372036854775807)}},
		{name: "seq takes the smallest int64", in: `{"seq":-9223372036854775808}`, want: ClientFrame{Seq: i64(-9223372036854775808)}},
		{name: "seq takes minus zero as zero", in: `{"seq":-0}`, want: ClientFrame{Seq: i64(0)}},
		{name: "seq past int64 is an error", in: `{"seq":9223372036854775808}`,
			err: "cannot unmarshal number 9223372036854775808 into Go struct field ClientFrame.seq of type int64"},
		{name: "seq below int64 is an error", in: `{"seq":-9223372036854775809}`, err: "number -9223372036854775809 into"},
		{name: "seq with a fraction is an error", in: `{"seq":1.0}`, err: "number 1.0 into"},
		{name: "seq with an exponent is an error", in: `{"seq":1e3}`, err: "number 1e3 into"},
		{name: "seq as a string is an error", in: `{"seq":"1"}`, err: "cannot unmarshal string into Go struct field ClientFrame.seq of type int64"},
		{name: "null seq after a seq clears it", in: `{"seq":1,"seq":null}`, want: ClientFrame{}},
		{name: "null strings keep an earlier value", in: `{"type":"send","type":null,"id":"a","id":null}`, want: ClientFrame{Type: "send", ID: "a"}},
		{name: "null ciphertexts are nil", in: `{"ciphertexts":null,"ciphertext":null,"plaintext":null}`, want: ClientFrame{}},
		{name: "a null ciphertext in the map is kept as nil", in: `{"ciphertexts":{"a":null}}`, want: ClientFrame{Ciphertexts: map[string][]byte{"a": nil}}},
		{name: "an empty ciphertext is empty, not nil", in: `{"ciphertext":"","ciphertexts":{}}`,
			want: ClientFrame{Ciphertext: []byte{}, Ciphertexts: map[string][]byte{}}},
		{name: "duplicate ciphertexts objects merge", in: `{"ciphertexts":{"a":"AQ=="},"ciphertexts":{"b":"Ag==","a":"Aw=="}}`,
			want: ClientFrame{Ciphertexts: map[string][]byte{"a": {3}, "b": {2}}}},
		{name: "a ciphertext may be an array of bytes", in: `{"ciphertext":[0,1,255],"plaintext":[]}`,
			want: ClientFrame{Ciphertext: []byte{0, 1, 255}, Plaintext: []byte{}}},
		{name: "an array over a ciphertext reuses its bytes where null", in: `{"ciphertext":"AQID","ciphertext":[null,9]}`,
			want: ClientFrame{Ciphertext: []byte{1, 9}}},
		{name: "an array element over 255 is an error", in: `{"ciphertext":[256]}`,
			err: "cannot unmarshal number 256 into Go struct field ClientFrame.ciphertext of type uint8"},
		{name: "a number for a ciphertext is an error", in: `{"ciphertexts":{"a":1}}`,
			err: "cannot unmarshal number into Go struct field ClientFrame.ciphertexts of type []uint8"},
		{name: "ciphertexts as an array is an error", in: `{"ciphertexts":["AQ=="]}`,
			err: "cannot unmarshal array into Go struct field ClientFrame.ciphertexts of type map[string][]uint8"},
		{name: "invalid base64 names the byte", in: `{"ciphertext":"AQ*D"}`, err: "illegal base64 data at input byte 2"},
		{name: "unpadded base64 is an error", in: `{"ciphertext":"AQ"}`, err: "illegal base64 data at input byte 0"},
		{name: "URL-safe base64 is an error", in: `{"ciphertext":"-_8="}`, err: "illegal base64 data at input byte 0"},
		{name: "escaped base64 decodes and newlines are skipped", in: `{"ciphertext":"AQ\u003d\u003d","plaintext":"AQ\r\nID"}`,
			want: ClientFrame{Ciphertext: []byte{1}, Plaintext: []byte{1, 2, 3}}},
		{name: "the first error in the frame is the one reported", in: `{"seq":"x","ciphertext":"!!!!"}`, err: "ClientFrame.seq"},
		{name: "whitespace of all four kinds is allowed everywhere", in: " \t\r\n{ \t\r\n\"type\" \t\r\n: \t\r\n\"ping\" \t\r\n, \"x\" : [ 1 , { } ] } \t\r\n",
			want: ClientFrame{Type: "ping"}},
		{name: "form feed is not whitespace", in: "\f{}", headErr: true, err: "invalid character"},
		{name: "nested unknown fields are skipped", in: `{"a":{"b":[{"c":{}},[],"\"}"],"ciphertext":1},"type":"ping"}`, want: ClientFrame{Type: "ping"}},
		{name: "a wrong type is an error of the head", in: `{"type":["send"]}`, headErr: true,
			err: "cannot unmarshal array into Go struct field ClientFrame.type of type string"},
		{name: "a frame that is not an object is an error", in: `"send"`, headErr: true, err: "into Go value of type wire.ClientFrame"},
		{name: "a null frame is empty", in: ` null `, want: ClientFrame{}},
		{name: "trailing data is an error", in: `{} {}`, headErr: true, err: "after top-level value"},
		{name: "attachments are a list of ids", in: `{"type":"send","attachments":["a","b\u0063"]}`,
			want: ClientFrame{Type: "send", Attachments: []string{"a", "bc"}}},
		{name: "empty attachments are empty, not nil", in: `{"attachments":[]}`, want: ClientFrame{Attachments: []string{}}},
		{name: "null attachments are nil", in: `{"attachments":["a"],"attachments":null}`, want: ClientFrame{}},
		{name: "an array over attachments keeps an id where null", in: `{"attachments":["a","b"],"attachments":[null,"c",null]}`,
			want: ClientFrame{Attachments: []string{"a", "c", ""}}},
		{name: "a number for an attachment is an error", in: `{"attachments":["a",7]}`,
			err: "cannot unmarshal number into Go struct field ClientFrame.attachments of type string"},
		{name: "attachments as a string is an error", in: `{"attachments":"a"}`,
			err: "cannot unmarshal string into Go struct field ClientFrame.attachments of type []string"},
		{name: "a huge ciphertext map decodes", in: manyJSON.String(), want: ClientFrame{Type: "send", ID: "m", Conversation: "c", Ciphertexts: many}},
		{name: "a huge ciphertext decodes", in: `{"ciphertext":"` + base64.StdEncoding.EncodeToString(big) + `"}`, want: ClientFrame{Ciphertext: big}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var head Head
			var f ClientFrame
			headErr, err := DecodeClientFrame([]byte(tc.in), &head, &f)
			if (headErr != nil) != tc.headErr {
				t.Fatalf("head error %v, want one: %v", headErr, tc.headErr)
			}
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one with %q", err, tc.err)
			case tc.err == "" && !reflect.DeepEqual(f, tc.want):
				t.Fatalf("got  %s\nwant %s", dumpFrame(f), dumpFrame(tc.want))
			}
			if d := diffDecode([]byte(tc.in)); d != "" {
				t.Fatalf("differs from encoding/json: %s", d)
			}
		})
	}
}

func TestSpecial8FindsEveryByteAStringMustLookAt(t *testing.T) {
	naive := func(w uint64) bool {
		for range 8 {
			if c := byte(w); !plain[c] {
				return true
			}
			w >>= 8
		}
		return false
	}
	check := func(w uint64) {
		if special8(w) != naive(w) {
			t.Fatalf("special8(%#016x) = %v", w, special8(w))
		}
	}
	for pos := range 8 {
		for c := range 256 {
			check(0x4141414141414141&^(0xff<<(8*pos)) | uint64(c)<<(8*pos))
			check(0x2020202020202020&^(0xff<<(8*pos)) | uint64(c)<<(8*pos))
		}
	}
	x := uint64(0x9e3779b97f4a7c15)
	for range 200000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		check(x)
		check(x &^ 0x8080808080808080)
	}
}

// TestDecodeClientFrameKnowsEveryField fails when ClientFrame or Head
// gains, loses or retypes a field that DecodeClientFrame does not handle.
func TestDecodeClientFrameKnowsEveryField(t *testing.T) {
	want := map[string]reflect.Type{"type": stringType, "id": stringType, "conversation": stringType,
		"ciphertexts": bytesMapType, "ciphertext": bytesType, "plaintext": bytesType, "seq": reflect.TypeFor[*int64](),
		"attachments": stringsType}
	for _, st := range []reflect.Type{frameType, headType} {
		for i := range st.NumField() {
			sf := st.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",") // the omit options are for encoders
			if wt, ok := want[name]; !ok || sf.Type != wt || int(matchField([]byte(name))) == 0 {
				t.Errorf("%s.%s (json %q, %v) is not a field DecodeClientFrame decodes", st.Name(), sf.Name, name, sf.Type)
			}
		}
	}
	if frameType.NumField() != len(want) || len(fieldNames)-1 != len(want) {
		t.Errorf("ClientFrame has %d fields, DecodeClientFrame knows %d", frameType.NumField(), len(fieldNames)-1)
	}
}

// TestDecodeClientFrameAllocatesOnlyWhatTheFrameHolds keeps the hot path
// lean: a frame allocates its strings and byte slices and nothing else, so
// a field it does not carry (attachments, say) costs it nothing.
func TestDecodeClientFrameAllocatesOnlyWhatTheFrameHolds(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		allocs   float64
	}{
		{"a ping allocates nothing", `{"type":"ping"}`, 0},
		{"an ack allocates its conversation and seq", `{"type":"ack","conversation":"cnv_a","seq":42}`, 2},
		{"a send allocates its id, conversation and ciphertext", `{"type":"send","id":"m-1","conversation":"cnv_a","ciphertext":"AQID"}`, 3},
		{"a send with attachments adds the slice and each id", `{"type":"send","id":"m-1","conversation":"cnv_a","ciphertext":"AQID","attachments":["a1","a2"]}`, 3 + 2 + 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.in)
			got := testing.AllocsPerRun(100, func() {
				var head Head
				var f ClientFrame
				if headErr, err := DecodeClientFrame(data, &head, &f); headErr != nil || err != nil {
					t.Fatal(headErr, err)
				}
			})
			if got != tc.allocs {
				t.Fatalf("%v allocations, want %v", got, tc.allocs)
			}
		})
	}
}
