package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// statusOf maps an error kind to its HTTP status. Only the edge knows statuses.
var statusOf = map[string]int{
	sb.EINVALID:      http.StatusBadRequest,
	sb.EUNAUTHORIZED: http.StatusUnauthorized,
	sb.EFORBIDDEN:    http.StatusForbidden,
	sb.ENOTFOUND:     http.StatusNotFound,
	sb.EMETHOD:       http.StatusMethodNotAllowed,
	sb.ECONFLICT:     http.StatusConflict,
	sb.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	sb.EMEDIATYPE:    http.StatusUnsupportedMediaType,
	sb.ERATELIMIT:    http.StatusTooManyRequests,
	sb.EUNAVAILABLE:  http.StatusServiceUnavailable,
	sb.EINTERNAL:     http.StatusInternalServerError,
}

// asError returns err as a client-facing *sb.Error; anything else is an
// internal error, logged here and shown to the client without details.
func asError(log *slog.Logger, err error) *sb.Error {
	var e *sb.Error
	if errors.As(err, &e) {
		return e
	}
	log.Error("internal error", "err", err)
	return sb.Errorf(sb.EINTERNAL, wire.CodeInternal, "internal error")
}

func writeProblem(w http.ResponseWriter, log *slog.Logger, err error) {
	e := asError(log, err)
	status := statusOf[e.Kind]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
	}
	w.Header().Set("Content-Type", wire.ProblemMediaType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(wire.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status,
		Code: e.Code, Detail: e.Message, Missing: e.Missing, Extra: e.Extra})
}

// tooLargeProblem is the problem document the gateway answers with (413)
// when a request passes gatewayMaxBody: the same code and detail as decode's.
func tooLargeProblem(maxBody int64) []byte {
	if maxBody <= 0 {
		maxBody = 1 << 20
	}
	b, _ := json.Marshal(wire.Problem{Type: "about:blank", Title: http.StatusText(http.StatusRequestEntityTooLarge),
		Status: http.StatusRequestEntityTooLarge, Code: wire.CodeTooLarge, Detail: fmt.Sprintf("request body over %d bytes", maxBody)})
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body of at most limit bytes into v, refusing unknown
// fields and trailing data. A refusal names the field at fault where
// encoding/json knows it, and for bad base64 (which it reports without a
// field) the first []byte field of v that does not decode.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	// nbio has the whole request in memory already; keeping the bytes lets a
	// base64 error be traced to its field.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return sb.Errorf(sb.ETOOLARGE, wire.CodeTooLarge, "request body over %d bytes", limit)
		}
		return sb.Errorf(sb.EINVALID, wire.CodeBadRequest, "reading the body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return sb.Errorf(sb.EINVALID, wire.CodeBadRequest, "%s", describeDecodeError(body, v, err))
	}
	if dec.More() {
		return sb.Errorf(sb.EINVALID, wire.CodeBadRequest, "trailing data after the JSON body")
	}
	return nil
}

// describeDecodeError says what is wrong with JSON data decoded into v,
// naming the field at fault where it can: encoding/json names it for a type
// error; for bad base64, which it reports without a field, the first []byte
// field of v in data that does not decode is named.
func describeDecodeError(data []byte, v any, err error) string {
	var b64 base64.CorruptInputError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &b64):
		if field := badBase64Field(data, reflect.TypeOf(v)); field != "" {
			return fmt.Sprintf("%s is not valid standard base64 (%v)", field, err)
		}
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("%s must be a JSON %s, not %s", typ.Field, jsonKind(typ.Type), typ.Value)
	}
	return fmt.Sprintf("malformed JSON: %v", err)
}

// jsonKind names a Go type as the JSON value it is decoded from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "base64 string"
		}
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Bool:
		return "boolean"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "number"
}

// badBase64Field walks body (JSON) along t and returns the dotted path of
// the first []byte value (or map of them) that is not valid base64.
func badBase64Field(body []byte, t reflect.Type) string {
	var raw any
	if json.Unmarshal(body, &raw) != nil {
		return ""
	}
	return walkBase64(raw, t, "")
}

func walkBase64(v any, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		if s, ok := v.(string); ok {
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				return path
			}
		}
	case t.Kind() == reflect.Map:
		m, _ := v.(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if p := walkBase64(m[k], t.Elem(), path+"."+k); p != "" {
				return p
			}
		}
	case t.Kind() == reflect.Struct:
		m, _ := v.(map[string]any)
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && name == "" { // an embedded struct's fields are the outer object's, as in encoding/json
				if p := walkBase64(v, f.Type, path); p != "" {
					return p
				}
				continue
			}
			if name == "" || name == "-" {
				continue
			}
			if fv, ok := m[name]; ok {
				if p := walkBase64(fv, f.Type, strings.TrimPrefix(path+"."+name, ".")); p != "" {
					return p
				}
			}
		}
	}
	return ""
}
