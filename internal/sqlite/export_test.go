package sqlite

// OpenSynchronous opens like Open with another PRAGMA synchronous on the
// writer, for benchmarks that compare them.
var OpenSynchronous = open
