package wire

// Machine error codes: the code of an error frame and of an HTTP problem
// document. docs/protocol.md says when each is sent; TestProtocolDocCodes
// keeps its tables and this list equal.
const (
	CodeBadRequest          = "bad_request"          // 400: malformed JSON, wrong types, bad query parameters
	CodeInvalidUsername     = "invalid_username"     // 400
	CodeInvalidPassword     = "invalid_password"     // 400
	CodeInvalidDevice       = "invalid_device"       // 400: bad name, unknown KEM, key of the wrong length
	CodeInvalidConversation = "invalid_conversation" // 400
	CodeDeviceMismatch      = "device_mismatch"      // 400: the upgrade's device parameter is not the token's device
	CodeInvalidMessage      = "invalid_message"      // 400 / error frame
	CodeInvalidImage        = "invalid_image"        // 400: an empty, truncated or damaged image upload
	CodeUnauthorized        = "unauthorized"         // 401
	CodeBadCredentials      = "bad_credentials"      // 401
	CodeNotMember           = "not_member"           // 403 / error frame
	CodeNotAdmin            = "not_admin"            // 403: a membership change by a member who is not an admin
	CodeOriginNotAllowed    = "origin_not_allowed"   // 403
	CodePlaintextRefused    = "plaintext_refused"    // 403 / error frame: a plaintext send to an --e2e-only node
	CodeBlocked             = "blocked"              // 403 / error frame: a member blocks the caller (a new conversation, a direct send)
	CodeNoSuchConversation  = "no_such_conversation" // 404 / error frame
	CodeNotFound            = "not_found"            // 404
	CodeMethodNotAllowed    = "method_not_allowed"   // 405: a known path, another method; Allow lists the methods it takes
	CodeUsernameTaken       = "username_taken"       // 409
	CodeNotGroup            = "not_group"            // 409: a membership change in a direct conversation
	CodeDevicesMismatch     = "devices_mismatch"     // 409 / error frame, with Missing and Extra
	CodeTooManyDevices      = "too_many_devices"     // 409
	CodeTooLarge            = "too_large"            // 413 / error frame
	CodeTooManyPixels       = "too_many_pixels"      // 413: an image whose header claims more pixels than the node decodes
	CodeUnsupportedMedia    = "unsupported_media"    // 415: an upload that is not an image format the node takes
	CodeRateLimited         = "rate_limited"         // 429 / error frame, with RetryAfterMS
	CodeUnavailable         = "unavailable"          // 503 / error frame: retry with the same id
	CodeNoSuchCall          = "no_such_call"         // error frame: the call_id is not a call of this device (unknown, ended, or not ringing it)
	CodeInvalidCall         = "invalid_call"         // error frame: a bad call frame (action, call_id, to_device, payload) or a call_id already in use
	CodeNotSupported        = "not_supported"        // error frame: an invite in a group (group calls need an SFU)
	CodeBadFrame            = "bad_frame"            // error frame: not a JSON object, wrong field types, bad base64
	CodeUnknownType         = "unknown_type"         // error frame: a type the server does not know
	CodeInternal            = "internal"             // 500: a bug or an unexpected failure; the detail says nothing more
)

// Codes lists every machine error code, in the order above.
var Codes = []string{
	CodeBadRequest, CodeInvalidUsername, CodeInvalidPassword, CodeInvalidDevice, CodeInvalidConversation,
	CodeDeviceMismatch, CodeInvalidMessage, CodeInvalidImage, CodeUnauthorized, CodeBadCredentials, CodeNotMember, CodeNotAdmin,
	CodeOriginNotAllowed, CodePlaintextRefused, CodeBlocked, CodeNoSuchConversation, CodeNotFound, CodeMethodNotAllowed, CodeUsernameTaken, CodeNotGroup,
	CodeDevicesMismatch, CodeTooManyDevices, CodeTooLarge, CodeTooManyPixels, CodeUnsupportedMedia, CodeRateLimited, CodeUnavailable,
	CodeNoSuchCall, CodeInvalidCall, CodeNotSupported, CodeBadFrame, CodeUnknownType, CodeInternal,
}
