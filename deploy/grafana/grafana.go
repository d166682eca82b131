// Package grafana holds switchboard's Grafana dashboard (switchboard.json),
// ready for Grafana's file provisioning: its Prometheus datasource is a
// variable, its nodes are a variable read from the metrics. Grafana itself
// cannot run on the build machines, so the tests lint the JSON and evaluate
// every query of every panel against a real Prometheus scraping real nodes.
package grafana

import _ "embed"

// Dashboard is deploy/grafana/switchboard.json as shipped.
//
//go:embed switchboard.json
var Dashboard []byte
