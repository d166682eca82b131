package wire

// ProblemMediaType is the Content-Type of a Problem.
const ProblemMediaType = "application/problem+json"

// Problem is how the HTTP API refuses a request: an RFC 9457 problem
// document with the machine Code (one of the Code constants).
type Problem struct {
	Type   string `json:"type"` // "about:blank"
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	// Missing and Extra are set for devices_mismatch: both present, empty
	// when empty (omitzero drops only a nil slice).
	Missing []string `json:"missing,omitzero"`
	Extra   []string `json:"extra,omitzero"`
}
