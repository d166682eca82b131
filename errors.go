package switchboard

import (
	"errors"
	"fmt"
	"time"
)

// Error kinds. The edge (HTTP, WebSocket) maps a kind to a status; the Code
// travels to the client unchanged.
const (
	EINVALID      = "invalid"      // 400: the request itself is wrong
	EUNAUTHORIZED = "unauthorized" // 401: no or bad credentials
	EFORBIDDEN    = "forbidden"    // 403: known caller, not allowed
	ENOTFOUND     = "not_found"    // 404: absent, or not visible to the caller
	EMETHOD       = "method"       // 405: the path exists, not with this method
	ECONFLICT     = "conflict"     // 409: clashes with what is stored
	ETOOLARGE     = "too_large"    // 413
	EMEDIATYPE    = "media_type"   // 415: an upload of a kind the node does not take
	ERATELIMIT    = "rate_limited" // 429
	EUNAVAILABLE  = "unavailable"  // 503: a dependency is down
	EINTERNAL     = "internal"     // 500
)

// Error is the error every layer returns when the client should be told
// something specific. Kind picks the HTTP status; Code is the machine code
// the client sees (e.g. "username_taken"); Message is for humans.
type Error struct {
	Kind    string
	Code    string
	Message string
	// Missing and Extra are set for devices_mismatch.
	Missing []string
	Extra   []string
	// RetryAfter is set for rate_limited.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("switchboard: %s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given kind, code and formatted message.
func Errorf(kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the machine code of err, or "internal" when err is not
// (or does not wrap) an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorKind returns the kind of err, or EINTERNAL.
func ErrorKind(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return EINTERNAL
}

// Sentinel errors the stores return (wrapped or as is); compare with errors.Is.
var (
	ErrNotFound      = &Error{Kind: ENOTFOUND, Code: "not_found", Message: "not found"}
	ErrUsernameTaken = &Error{Kind: ECONFLICT, Code: "username_taken", Message: "username is taken"}
)
