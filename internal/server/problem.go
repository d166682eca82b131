package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// statusOf maps an error kind to its HTTP status. Only the edge knows statuses.
var statusOf = map[string]int{
	sb.EINVALID:      http.StatusBadRequest,
	sb.EUNAUTHORIZED: http.StatusUnauthorized,
	sb.EFORBIDDEN:    http.StatusForbidden,
	sb.ENOTFOUND:     http.StatusNotFound,
	sb.ECONFLICT:     http.StatusConflict,
	sb.ETOOLARGE:     http.StatusRequestEntityTooLarge,
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body of at most limit bytes into v, refusing unknown fields and trailing data.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return sb.Errorf(sb.ETOOLARGE, "too_large", "request body over %d bytes", limit)
		}
		return sb.Errorf(sb.EINVALID, "bad_request", "malformed JSON body: %v", err)
	}
	if dec.More() {
		return sb.Errorf(sb.EINVALID, "bad_request", "trailing data after the JSON body")
	}
	return nil
}
