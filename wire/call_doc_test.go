package wire

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestProtocolDocCallActions keeps docs/protocol.md's table of call
// actions equal to CallServerActions, and its "client sends" column equal
// to CallClientActions.
func TestProtocolDocCallActions(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### Calls\n")
	if !ok {
		t.Fatal("docs/protocol.md has no \"### Calls\" section")
	}
	section, _, _ = strings.Cut(section, "\n### ")
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| (yes|no)")
	var all, client []string
	for _, line := range strings.Split(section, "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			all = append(all, m[1])
			if m[2] == "yes" {
				client = append(client, m[1])
			}
		}
	}
	if !slices.Equal(all, CallServerActions) {
		t.Errorf("the doc's call actions are %v, CallServerActions %v", all, CallServerActions)
	}
	if !slices.Equal(client, CallClientActions) {
		t.Errorf("the doc's client call actions are %v, CallClientActions %v", client, CallClientActions)
	}
}
