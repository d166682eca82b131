//go:build !race

package gateway

import (
	"net"

	"github.com/lesismal/nbio/nbhttp"
)

// raceHandoff is a no-op without the race detector; see race.go.
func raceHandoff(*nbhttp.Engine) func(net.Conn) { return nil }
