// Package sqlcore is what the two SQL stores (internal/sqlite and
// internal/postgres) do the same way, so that it is written once: the
// append queue and its decide step (which message gets which seq, which is
// a duplicate, which starts a recipient epoch), recipient sets, the commit
// observer, the ack queue and the reading of embedded migrations.
//
// It knows no SQL dialect and no driver: each store reads what a batch
// needs, hands it to Decide, and writes the Plan it gets back in its own
// statements.
package sqlcore
