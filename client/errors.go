package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/wire"
)

// Machine codes from docs/protocol.md, as found in [Error].Code (package
// wire lists them all).
const (
	CodeBadRequest          = wire.CodeBadRequest
	CodeInvalidUsername     = wire.CodeInvalidUsername
	CodeInvalidPassword     = wire.CodeInvalidPassword
	CodeInvalidDevice       = wire.CodeInvalidDevice
	CodeDeviceMismatch      = wire.CodeDeviceMismatch // the upgrade's device parameter is not the token's device
	CodeInvalidConversation = wire.CodeInvalidConversation
	CodeInvalidMessage      = wire.CodeInvalidMessage
	CodeUnauthorized        = wire.CodeUnauthorized
	CodeBadCredentials      = wire.CodeBadCredentials
	CodeNotMember           = wire.CodeNotMember
	CodeNotAdmin            = wire.CodeNotAdmin // a membership change by a member who is not an admin
	CodeNotGroup            = wire.CodeNotGroup // a membership change in a direct conversation
	CodeNoSuchConversation  = wire.CodeNoSuchConversation
	CodeNotFound            = wire.CodeNotFound
	CodeMethodNotAllowed    = wire.CodeMethodNotAllowed // a known path with another method
	CodeUsernameTaken       = wire.CodeUsernameTaken
	CodeDevicesMismatch     = wire.CodeDevicesMismatch
	CodeTooLarge            = wire.CodeTooLarge
	CodeRateLimited         = wire.CodeRateLimited
	CodeTooManyDevices      = wire.CodeTooManyDevices
	CodePlaintextRefused    = wire.CodePlaintextRefused // a plaintext send to an end-to-end-only node: seal it (see Secure)
	CodeBlocked             = wire.CodeBlocked          // a member blocks the caller: no new conversation with them, no direct send
	CodeOriginNotAllowed    = wire.CodeOriginNotAllowed
	CodeUnavailable         = wire.CodeUnavailable
	CodeBadFrame            = wire.CodeBadFrame
	CodeUnknownType         = wire.CodeUnknownType
)

// Error is a refusal from the server: an HTTP problem document (Status is
// the HTTP status) or a WebSocket error frame (Status is 0). The SDK also
// returns it, with Status 0, for a [SendRequest] it can tell is invalid
// before sending it.
type Error struct {
	Status int    // HTTP status; 0 for an error frame
	Code   string // machine code, e.g. "devices_mismatch"; empty if the body was not a problem document
	Detail string // for humans: the problem's detail, or the error frame's message

	// Missing and Extra are set for devices_mismatch: recipient devices
	// without a ciphertext, and keys that are not recipient devices.
	Missing []string
	Extra   []string

	// ID is the id of the send the error answers, if any.
	ID string
	// RetryAfter is the server's Retry-After header or an error frame's
	// retry_after_ms (rate_limited), or 0.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("switchboard: ")
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteByte(' ')
	}
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		b.WriteString("error")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if len(e.Missing) > 0 {
		fmt.Fprintf(&b, " (missing %v)", e.Missing)
	}
	if len(e.Extra) > 0 {
		fmt.Fprintf(&b, " (extra %v)", e.Extra)
	}
	return b.String()
}

// ErrClosed is the error of a [Conn] that was closed by [Conn.Close].
var ErrClosed = errors.New("client: connection closed")

// WebSocket close codes from docs/protocol.md, as found in [CloseError].Code
// (wire/close.go allocates and documents them).
const (
	CloseNormal          = wire.CloseNormal         // normal closure
	CloseGoingAway       = wire.CloseGoingAway      // the node is shutting down; the SDK reconnects
	ClosePolicyViolation = wire.ClosePolicy         // the SDK does not reconnect
	CloseTooBig          = wire.CloseTooBig         // a frame over the server's limit
	CloseDeviceRevoked   = wire.CloseDeviceRevoked  // the SDK does not reconnect with this token
	CloseReplaced        = wire.CloseReplaced       // another connection of this device took over; the SDK does not reconnect
	CloseSessionExpired  = wire.CloseSessionExpired // the token expired while the socket was open: log in again; the SDK does not reconnect
	CloseSlowConsumer    = wire.CloseSlowConsumer   // the SDK reconnects and resyncs
	ClosePingTimeout     = wire.ClosePingTimeout    // no frame and no pong for twice the server's ping interval; the SDK reconnects
)

// CloseError is how a [Conn] ended when the server closed it for good
// (CloseDeviceRevoked, ClosePolicyViolation), and how a send fails whose
// socket was closed with CloseTooBig.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("switchboard: socket closed by server: %d %s", e.Code, e.Reason)
}

// maxErrorBody bounds how much of a refusal is read.
const maxErrorBody = 64 << 10

// responseError turns a non-2xx response into an *Error. It reads the body
// but does not close it.
func responseError(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var p wire.Problem
	if (mt == wire.ProblemMediaType || mt == "application/json") && json.Unmarshal(body, &p) == nil && p.Code != "" {
		e.Code, e.Detail, e.Missing, e.Extra = p.Code, p.Detail, p.Missing, p.Extra
		if e.Detail == "" {
			e.Detail = p.Title
		}
		return e
	}
	// Not ours (a proxy's page, say): keep a short, printable detail.
	e.Detail = http.StatusText(resp.StatusCode)
	if mt == "text/plain" {
		if s := strings.TrimSpace(string(body)); s != "" && len(s) <= 200 {
			e.Detail = s
		}
	}
	return e
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
