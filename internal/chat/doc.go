// Package chat is the node's application service: accounts, logins and
// devices, conversations, and the send path (validate, commit, publish).
// It knows nothing of HTTP or sockets; internal/server puts it on the wire.
//
// Every error it returns that a client should see is a *switchboard.Error
// with the code documented in docs/protocol.md.
package chat
