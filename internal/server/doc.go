// Package server puts the chat service on the wire: the HTTP API under /v1
// (JSON, RFC 9457 problem documents), the WebSocket protocol at /v1/ws
// (frames, sync, live delivery) and the health endpoints. The socket layer
// itself is internal/gateway; this package only speaks the protocol that
// docs/protocol.md describes.
package server
