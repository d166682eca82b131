package load

// ParseMetrics lets the black-box tests read a node's /metrics the way sbload does.
var ParseMetrics = parseMetrics
