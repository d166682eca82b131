package postgres

// OpenLanes opens like Open with another number of append lanes, for
// benchmarks that compare them.
var OpenLanes = open
