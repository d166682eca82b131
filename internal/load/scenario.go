package load

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/switchboard-chat/switchboard/client"
)

// Scenario is one kind of load, in two halves: the coordinator's (Plan and
// Merge) and the worker's (NewDriver). The framework around it connects the
// sockets at the ramp rate, waits for synced, runs the steady phase, drains
// and stops; a scenario only says what happens on the sockets.
type Scenario interface {
	// Check validates the scenario's settings and may fill derived ones
	// (fanout derives the connection count from its groups).
	Check(cfg *Config) error
	// Plan runs in the coordinator once the devices are logged in: it
	// prepares what the scenario needs on the server (conversations) and
	// returns the parameters every worker receives.
	Plan(ctx context.Context, env *PlanEnv) (json.RawMessage, error)
	// NewDriver runs in a worker, for the worker's share of devices.
	NewDriver(plan json.RawMessage, devices []Device) (Driver, error)
	// Merge folds the workers' reports (Driver.Report) into the summary.
	Merge(plan json.RawMessage, reports []json.RawMessage, s *Summary) error
}

// PlanEnv is what Scenario.Plan may use.
type PlanEnv struct {
	Config  Config
	Client  *client.Client
	Users   []User
	Devices []Device // every logged-in device, in global order
	Log     io.Writer
}

// User is an account the run created.
type User struct {
	Name string `json:"name"`
	ID   string `json:"user_id"`
}

// Driver is a scenario's worker half. The On methods run on poller
// goroutines: they must not block, and should not allocate what they can
// reuse.
type Driver interface {
	// OnSynced is called once per socket when it reaches synced.
	OnSynced(c *Conn)
	// OnFrame is called for every text frame but synced; typ is its "type".
	OnFrame(c *Conn, typ string, frame []byte)
	// Steady runs the steady phase until ctx is done (a driver that only
	// holds its sockets returns at once). conns[i] is device i's socket.
	Steady(ctx context.Context, conns []*Conn)
	// Progress returns counters for the progress lines, or nil.
	Progress() map[string]int64
	// Report is the worker's final word, merged by Scenario.Merge.
	Report() json.RawMessage
}

// drainer is a Scenario that can tell from the summed progress counters
// that nothing is in flight any more, so the drain phase may end.
type drainer interface {
	Drained(progress map[string]int64) bool
}

// finisher is a Scenario whose steady phase ends by itself (a bounded
// number of rounds): the coordinator ends the phase once Finished says so
// from the summed progress counters, or after --hold at the latest.
type finisher interface {
	Finished(progress map[string]int64) bool
}

var scenarios = map[string]Scenario{
	"hold":      holdScenario{},
	"fanout":    fanoutScenario{},
	"chat":      chatScenario{},
	"broadcast": broadcastScenario{},
}

// Scenarios lists the scenario names.
func Scenarios() []string {
	var names []string
	for n := range scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func lookupScenario(name string) (Scenario, error) {
	s, ok := scenarios[name]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q (have %s)", name, strings.Join(Scenarios(), ", "))
	}
	return s, nil
}

// holdScenario connects, waits for synced and holds the sockets idle: the
// memory-per-connection measurement.
type holdScenario struct{}

func (holdScenario) Check(cfg *Config) error {
	if cfg.Conns <= 0 {
		return fmt.Errorf("hold: --conns must be positive")
	}
	return nil
}

func (holdScenario) Plan(context.Context, *PlanEnv) (json.RawMessage, error) { return nil, nil }

func (holdScenario) NewDriver(json.RawMessage, []Device) (Driver, error) { return holdDriver{}, nil }

func (holdScenario) Merge(json.RawMessage, []json.RawMessage, *Summary) error { return nil }

type holdDriver struct{}

func (holdDriver) OnSynced(*Conn)                  {}
func (holdDriver) OnFrame(*Conn, string, []byte)   {}
func (holdDriver) Steady(context.Context, []*Conn) {}
func (holdDriver) Progress() map[string]int64      { return nil }
func (holdDriver) Report() json.RawMessage         { return nil }

var (
	_ Scenario = holdScenario{}
	_ Scenario = fanoutScenario{}
	_ drainer  = fanoutScenario{}
	_ Scenario = chatScenario{}
	_ drainer  = chatScenario{}
	_ Driver   = (*chatDriver)(nil)
	_ Scenario = broadcastScenario{}
	_ finisher = broadcastScenario{}
	_ Driver   = holdDriver{}
	_ Driver   = (*fanoutDriver)(nil)
	_ Driver   = (*broadcastDriver)(nil)
)
