// Package load is switchboard's load generator: the engine behind cmd/sbload.
//
// A run has one coordinator and several worker processes. Each process here
// is capped at 20,000 open files, so one process cannot hold more than about
// 19,900 sockets; the coordinator therefore logs in the devices over HTTP,
// re-executes its own binary as P workers (`sbload worker`), hands each its
// share of device tokens on stdin and steers the phases (connect, steady,
// drain, stop) with one JSON command per line. Workers answer with one JSON
// line per second on stdout (progress), and a final result the coordinator
// merges into the summary.
//
// A worker's sockets are event driven: one nbio engine (epoll) reads every
// socket on a poller goroutine, this package parses the WebSocket frames
// itself (the client side of RFC 6455 is small), and an idle socket owns no
// goroutine, no timer and no buffer — only its *nbio.Conn and a *Conn of a
// few dozen bytes. Dialing is done by a small pool of goroutines paced by the
// ramp rate, each socket bound to a loopback source address (127.0.0.2,
// 127.0.0.3, ...) so the run is not limited by one address's ephemeral ports.
//
// Scenarios (hold, fanout, broadcast) plug in through the Scenario interface: the
// coordinator half prepares server state (conversations) and merges reports,
// the worker half (a Driver) reacts to frames and sends at a rate.
package load
