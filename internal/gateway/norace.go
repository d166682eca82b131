//go:build !race

package gateway

import "github.com/lesismal/nbio/nbhttp"

// raceHandoff is a no-op without the race detector; see race.go.
func raceHandoff(*nbhttp.Engine) {}
