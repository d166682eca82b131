// Package switchboard is the domain of the switchboard messaging backend: the
// types every part of the node speaks (users, devices, conversations,
// messages), the interfaces its adapters implement (Store, Bus) and the one
// error type that carries a machine code from the depths of an adapter to the
// HTTP or WebSocket edge.
//
// It imports only the standard library. Adapters live in internal/ (one
// package per dependency) and meet only in cmd/switchboard.
package switchboard
