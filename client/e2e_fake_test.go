package client

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/e2e"
)

// dirFake extends the fake server with what the end-to-end path needs: a
// device directory, conversations with members, and a send path that
// checks, like the real server, that ciphertexts cover exactly the
// recipient devices (every device of every member but the sender's).
// Devices are real e2e identities, so a test can open what was sent.
type dirFake struct {
	*fakeServer

	mu       sync.Mutex
	members  map[string][]string      // per conversation
	devices  map[string][]string      // device ids per user, oldest first
	ids      map[string]*e2e.Identity // per device
	lists    map[string]int           // device list fetches per user
	convs    int                      // conversation list fetches
	tries    []map[string][]byte      // ciphertexts of every send, socket or HTTP
	mismatch func(n int) bool         // if set and true, send number n (1-based) gets devices_mismatch anyway
}

const (
	me      = "usr_me"
	meDev   = "dev_me"
	other   = "usr_other" // the fake's publish sends as usr_other/dev_other
	otherDv = "dev_other"
)

// newDirFake starts a fake where usr_me (device dev_me, the session's) and
// usr_other (dev_other) share conversation cnv_1.
func newDirFake(t *testing.T) *dirFake {
	d := &dirFake{
		fakeServer: newFake(t),
		members:    map[string][]string{"cnv_1": {me, other}},
		devices:    map[string][]string{},
		ids:        map[string]*e2e.Identity{},
		lists:      map[string]int{},
	}
	d.addDevice(me, meDev, e2e.KEMX25519)
	d.addDevice(other, otherDv, e2e.KEMX25519)
	d.mux.HandleFunc("GET /v1/conversations", d.serveConversations)
	d.mux.HandleFunc("GET /v1/users/{id}/devices", d.serveDevices)
	d.mux.HandleFunc("POST /v1/conversations/{id}/messages", d.serveSendHTTP)
	d.onSend = d.socketSend
	return d
}

// addDevice gives user a new device with a fresh identity of kem.
func (d *dirFake) addDevice(user, device, kem string) *e2e.Identity {
	d.t.Helper()
	id, err := e2e.GenerateIdentity(kem)
	if err != nil {
		d.t.Fatal(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.devices[user] = append(d.devices[user], device)
	d.ids[device] = id
	return id
}

// revoke removes a device from the directory (its identity stays known to
// the test).
func (d *dirFake) revoke(user, device string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.devices[user] = slices.DeleteFunc(d.devices[user], func(s string) bool { return s == device })
}

func (d *dirFake) identity(device string) *e2e.Identity {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ids[device]
}

// secure returns a Secure for dev_me, over a Conn unless http is set.
func (d *dirFake) secure(overHTTP bool, opts SecureOptions) (*Secure, *Conn) {
	d.t.Helper()
	var conn *Conn
	if !overHTTP {
		conn = d.connect(ConnOptions{})
	}
	s := d.session(d.token)
	x, err := NewSecure(s, conn, d.identity(meDev), opts)
	if err != nil {
		d.t.Fatal(err)
	}
	return x, conn
}

func (d *dirFake) serveConversations(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.convs++
	var out []map[string]any
	for _, id := range slices.Sorted(maps.Keys(d.members)) {
		out = append(out, map[string]any{"conversation_id": id, "kind": "group", "title": "",
			"members": d.members[id], "head_seq": 0, "created_at": fakeTS(time.Now())})
	}
	d.mu.Unlock()
	reply(w, 200, mustJSON(map[string]any{"conversations": out}))
}

func (d *dirFake) serveDevices(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("id")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lists[user]++
	devs, ok := d.devices[user]
	if !ok {
		writeProblem(w, 404, "not_found", "no such user")
		return
	}
	out := []map[string]any{}
	for _, dev := range devs {
		id := d.ids[dev]
		out = append(out, map[string]any{"device_id": dev, "name": "device " + dev, "kem": id.KEM(),
			"public_key": id.PublicKey(), "signing_key": []byte(id.SigningKey()), "created_at": fakeTS(time.Now())})
	}
	reply(w, 200, mustJSON(map[string]any{"devices": out}))
}

// check records a send's ciphertexts and compares their keys with the
// recipients: it returns the missing and extra devices.
func (d *dirFake) check(conv string, cts map[string]string) (missing, extra []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	got := map[string][]byte{}
	for dev, b64 := range cts {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			d.t.Errorf("ciphertext for %s is not base64: %v", dev, err)
		}
		got[dev] = b
	}
	d.tries = append(d.tries, got)
	want := map[string]bool{}
	for _, u := range d.members[conv] {
		for _, dev := range d.devices[u] {
			if dev != meDev {
				want[dev] = true
			}
		}
	}
	for dev := range want {
		if _, ok := got[dev]; !ok {
			missing = append(missing, dev)
		}
	}
	for dev := range got {
		if !want[dev] {
			extra = append(extra, dev)
		}
	}
	if d.mismatch != nil && d.mismatch(len(d.tries)) && missing == nil && extra == nil {
		extra = []string{"dev_ghost"}
	}
	return missing, extra
}

func (d *dirFake) socketSend(fc *fakeConn, fr fakeSend) {
	if missing, extra := d.check(fr.Conversation, fr.Ciphertexts); missing != nil || extra != nil {
		_ = fc.write(map[string]any{"type": "error", "id": fr.ID, "code": "devices_mismatch",
			"message": "ciphertexts do not match the recipient devices", "missing": missing, "extra": extra})
		return
	}
	d.answer(fc, fr)
}

func (d *dirFake) serveSendHTTP(w http.ResponseWriter, r *http.Request) {
	var fr fakeSend
	if err := json.NewDecoder(r.Body).Decode(&fr); err != nil {
		writeProblem(w, 400, "bad_request", err.Error())
		return
	}
	conv := r.PathValue("id")
	if missing, extra := d.check(conv, fr.Ciphertexts); missing != nil || extra != nil {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(409)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": 409, "code": "devices_mismatch",
			"detail": "mismatch", "missing": missing, "extra": extra})
		return
	}
	d.fakeServer.mu.Lock()
	d.seqs[conv]++
	seq := d.seqs[conv]
	d.fakeServer.mu.Unlock()
	reply(w, 201, mustJSON(map[string]any{"id": fr.ID, "conversation": conv, "seq": seq, "ts": fakeTS(time.Now())}))
}

// push writes a message frame from any sender to the live sockets, with
// the conversation's next seq; it returns the seq.
func (d *dirFake) push(conv, user, device string, ct []byte) int64 {
	f := d.fakeServer
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seqs[conv]++
	frame := map[string]any{"type": "message", "conversation": conv, "seq": f.seqs[conv],
		"sender": map[string]string{"user_id": user, "device_id": device},
		"ts":     fakeTS(time.Now()), "ciphertext": ct}
	for fc := range f.live {
		_ = fc.write(frame)
	}
	return f.seqs[conv]
}

// pushFrame writes any frame to the live sockets.
func (d *dirFake) pushFrame(v any) {
	f := d.fakeServer
	f.mu.Lock()
	defer f.mu.Unlock()
	for fc := range f.live {
		_ = fc.write(v)
	}
}

// sealFrom seals plaintext as a device of the directory would, for device
// to, with client id cid.
func (d *dirFake) sealFrom(user, device, conv, cid, to string, pt []byte) []byte {
	d.t.Helper()
	recipient := d.identity(to)
	env, err := e2e.Seal(d.identity(device), recipient.KEM(), recipient.PublicKey(), e2e.Context{
		Conversation: conv, SenderUser: user, SenderDevice: device, ClientID: cid, RecipientDevice: to,
	}, pt)
	if err != nil {
		d.t.Fatal(err)
	}
	return env
}

func (d *dirFake) fetches() (convs int, lists map[string]int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.convs, maps.Clone(d.lists)
}

func (d *dirFake) sendTries() []map[string][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.tries)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
