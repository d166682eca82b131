// Package wire is switchboard's wire contract in Go: every WebSocket frame
// with its fields, the frame type names, the machine error codes, the
// WebSocket close codes and the KEM names a device registers, with the
// hand-written decoder of client frames and the encoders of the hot server
// frames. The node (internal/server), the Go SDK (client), sbbare and the
// load generator all speak it through this package, so a new frame or code
// is added here once. docs/protocol.md is the human contract; a test keeps
// its tables of codes equal to the constants here.
//
// It imports only the standard library, so the public SDK can use it.
package wire
