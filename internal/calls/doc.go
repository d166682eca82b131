// Package calls is 1:1 call signalling (issue 19, the seed's CallsGateway):
// the state machine of a call in a direct conversation (invite rings every
// device of the callee, the first accept wins, decline, missed after the
// ring timeout, signal to the other party only, end from either party, end
// after a party's socket stays gone for the reconnect grace), relayed to
// devices on any node over the bus.
//
// A call's state is one record keyed by conversation and call id in a KV
// (kv.go): in memory for a node alone, in Redis (internal/redisbus) for
// nodes that share one, changed only by compare-and-swap. So no node owns
// a call: whichever node holds the socket of the device that acts changes
// the record, and a party whose device moves to another node finds its call
// there (docs/architecture.md, "Calls"). Timers are local and redundant
// (the caller's node and each ringing device's node arm the ring timeout);
// the compare-and-swap lets exactly one of them act.
package calls
