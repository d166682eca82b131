// Package faults is the fault suite of issue 16 (docs/reliability.md): it
// starts a private cluster (PostgreSQL and Redis from internal/testenv,
// node processes of cmd/switchboard, NGINX running the shipped
// deploy/nginx/switchboard.conf), puts steady chat traffic on it through
// NGINX with the Go SDK, injects one fault at a time, and checks every
// acknowledged message: delivered to every device that should have it
// exactly once and in seq order, present in the store as sent, and on each
// device's socket in seq order with no hole (a tap under the SDK parses the
// server's WebSocket frames from the TCP stream).
//
// The suite is TestFaults; the code here is its harness: Cluster, the
// traffic (world), the tap and the checker, and the table it writes.
package faults
