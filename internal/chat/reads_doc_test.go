package chat_test

import (
	"context"
	"crypto/ed25519"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/e2e"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// recordingStore records the reads made through it and whether each was
// marked sb.MayLag (a replica may answer it).
type recordingStore struct {
	sb.Store
	mu    sync.Mutex
	reads map[string]bool // "Method" -> may lag; "Method!" -> read on the primary
}

func (r *recordingStore) note(ctx context.Context, method string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reads == nil {
		return
	}
	if sb.LagAllowed(ctx) {
		r.reads[method] = true
	} else {
		r.reads[method+"!"] = true
	}
}

func (r *recordingStore) start() {
	r.mu.Lock()
	r.reads = map[string]bool{}
	r.mu.Unlock()
}

// stop returns the reads on the primary and those that may lag, each sorted.
func (r *recordingStore) stop() (primary, lagging []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.reads {
		if m, ok := strings.CutSuffix(k, "!"); ok {
			primary = append(primary, m)
		} else {
			lagging = append(lagging, k)
		}
	}
	r.reads = nil
	slices.Sort(primary)
	slices.Sort(lagging)
	return primary, lagging
}

func (r *recordingStore) UserByName(ctx context.Context, n string) (*sb.User, error) {
	r.note(ctx, "UserByName")
	return r.Store.UserByName(ctx, n)
}
func (r *recordingStore) UserExists(ctx context.Context, u string) (bool, error) {
	r.note(ctx, "UserExists")
	return r.Store.UserExists(ctx, u)
}
func (r *recordingStore) Device(ctx context.Context, d string) (*sb.Device, error) {
	r.note(ctx, "Device")
	return r.Store.Device(ctx, d)
}
func (r *recordingStore) ActiveDevices(ctx context.Context, us ...string) ([]sb.Device, error) {
	r.note(ctx, "ActiveDevices")
	return r.Store.ActiveDevices(ctx, us...)
}
func (r *recordingStore) SessionByTokenHash(ctx context.Context, h []byte) (*sb.Session, *sb.Device, error) {
	r.note(ctx, "SessionByTokenHash")
	return r.Store.SessionByTokenHash(ctx, h)
}
func (r *recordingStore) Conversation(ctx context.Context, id string) (*sb.Conversation, error) {
	r.note(ctx, "Conversation")
	return r.Store.Conversation(ctx, id)
}
func (r *recordingStore) Conversations(ctx context.Context, u, after string, limit int) ([]sb.Conversation, error) {
	r.note(ctx, "Conversations")
	return r.Store.Conversations(ctx, u, after, limit)
}
func (r *recordingStore) Contacts(ctx context.Context, u string, limit int) ([]string, error) {
	r.note(ctx, "Contacts")
	return r.Store.Contacts(ctx, u, limit)
}
func (r *recordingStore) Blockers(ctx context.Context, u string, among []string) ([]string, error) {
	r.note(ctx, "Blockers")
	return r.Store.Blockers(ctx, u, among)
}
func (r *recordingStore) Heads(ctx context.Context, u string) (map[string]int64, error) {
	r.note(ctx, "Heads")
	return r.Store.Heads(ctx, u)
}
func (r *recordingStore) Messages(ctx context.Context, d, c string, after int64, limit int) ([]sb.Delivery, error) {
	r.note(ctx, "Messages")
	return r.Store.Messages(ctx, d, c, after, limit)
}
func (r *recordingStore) Cursors(ctx context.Context, d string) (map[string]int64, error) {
	r.note(ctx, "Cursors")
	return r.Store.Cursors(ctx, d)
}

// replicaReads are the Store reads a store with replicas sends to one when
// marked (internal/postgres routes exactly these); a mark on any other read
// would be a promise nothing keeps.
var replicaReads = []string{"ActiveDevices", "Conversations", "Messages"}

// TestReadsTableMatchesCode runs each operation of the service that reads
// the store, on a cold cache, records which reads it makes and which of
// them may lag, and holds docs/architecture.md's table of reads equal to
// that.
func TestReadsTableMatchesCode(t *testing.T) {
	ctx := context.Background()
	inner, bus := sqliteStore(t)
	rec := &recordingStore{Store: inner}
	// A fresh service per operation: its caches start cold, so each
	// operation shows every read it can make.
	fresh := func() *chat.Service {
		return chat.New(rec, bus, chat.Config{Argon2: cheapArgon2, Limits: chat.Limits{DevicesPerUser: 10}})
	}
	svc := fresh()
	alice, bob := loginDevice(t, svc, "alice"), loginDevice(t, svc, "bob")
	conv, err := svc.CreateConversation(ctx, alice, "direct", []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Send(ctx, alice, &chat.SendRequest{ClientID: "m-0", ConversationID: conv,
		Ciphertexts: map[string][]byte{bob.DeviceID: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	sends := 0
	devInfo := func(name string) chat.DeviceInfo {
		id, _ := e2e.GenerateIdentity(e2e.KEMX25519)
		return chat.DeviceInfo{Name: name, KEM: id.KEM(), PublicKey: id.PublicKey(), SigningKey: ed25519.PublicKey(id.SigningKey())}
	}
	login, err := svc.Login(ctx, "bob", "password-bob", devInfo("laptop"))
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]func(s *chat.Service) error{
		"Authenticate": func(s *chat.Service) error { _, err := s.Authenticate(ctx, login.Token); return err },
		"Login": func(s *chat.Service) error {
			_, err := s.Login(ctx, "alice", "password-alice", devInfo("tablet"))
			return err
		},
		"CreateConversation": func(s *chat.Service) error {
			_, err := s.CreateConversation(ctx, alice, "group", []string{bob.UserID}, "g")
			return err
		},
		"Send": func(s *chat.Service) error {
			sends++
			_, _, err := s.Send(ctx, alice, &chat.SendRequest{ClientID: "m-" + string(rune('a'+sends)), ConversationID: conv,
				Ciphertexts: map[string][]byte{bob.DeviceID: []byte("x"), login.DeviceID: []byte("y")}})
			return err
		},
		"Ack": func(s *chat.Service) error { return s.Ack(ctx, bob, conv, 1) },
		"History": func(s *chat.Service) error {
			_, err := s.History(ctx, bob, conv, 0, 10, func(*sb.Delivery) error { return nil })
			return err
		},
		"Messages": func(s *chat.Service) error { _, err := s.Messages(ctx, bob, conv, 0, 10); return err },
		"Backlog": func(s *chat.Service) error {
			_, err := s.Backlog(ctx, bob, func(string, []sb.Delivery) error { return nil })
			return err
		},
		"Heads":           func(s *chat.Service) error { _, err := s.Heads(ctx, bob); return err },
		"Conversations":   func(s *chat.Service) error { _, err := s.Conversations(ctx, bob, "", 10); return err },
		"DeviceDirectory": func(s *chat.Service) error { _, err := s.DeviceDirectory(ctx, alice.UserID); return err },
		"Devices":         func(s *chat.Service) error { _, err := s.Devices(ctx, alice.UserID); return err },
		"Block":           func(s *chat.Service) error { return s.Block(ctx, bob, alice.UserID) },
		"RevokeDevice":    func(s *chat.Service) error { return s.RevokeDevice(ctx, bob, login.DeviceID) },
	}
	got := map[string][2]string{}
	for _, name := range []string{"Authenticate", "Send", "Login", "CreateConversation", "Ack", "History", "Messages",
		"Backlog", "Heads", "Conversations", "DeviceDirectory", "Devices", "Block", "RevokeDevice"} {
		s := fresh()
		rec.start()
		err := ops[name](s)

		primary, lagging := rec.stop()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, m := range lagging {
			if !slices.Contains(replicaReads, m) {
				t.Errorf("%s marks %s as a read that may lag; no store sends it to a replica", name, m)
			}
		}
		got[name] = [2]string{cell(primary), cell(lagging)}
	}

	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## Reads and where they go")
	if !ok {
		t.Error(`docs/architecture.md has no "## Reads and where they go"`)
	}
	row := regexp.MustCompile("(?m)^\\| `(\\w+)` \\|([^|]*)\\|([^|]*)\\|")
	documented := map[string][2]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		documented[m[1]] = [2]string{strings.TrimSpace(m[2]), strings.TrimSpace(m[3])}
	}
	var want strings.Builder
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range got {
			if !yield(k) {
				return
			}
		}
	}) {
		want.WriteString("| `" + name + "` | " + got[name][0] + " | " + got[name][1] + " |\n")
		if d, ok := documented[name]; !ok || d != got[name] {
			t.Errorf("docs/architecture.md: %s reads %v, documented %v", name, got[name], d)
		}
	}
	for name := range documented {
		if _, ok := got[name]; !ok {
			t.Errorf("docs/architecture.md lists %s, which this test does not run", name)
		}
	}
	if t.Failed() {
		t.Logf("the table's rows as the code has them:\n%s", want.String())
	}
}

// cell writes store reads as the table does: `A`, `B`, or "—" for none.
func cell(reads []string) string {
	if len(reads) == 0 {
		return "—"
	}
	for i, r := range reads {
		reads[i] = "`" + r + "`"
	}
	return strings.Join(reads, ", ")
}
