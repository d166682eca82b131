package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/e2e"
)

func TestLoginIdentityRegistersTheIdentitysKeys(t *testing.T) {
	id, err := e2e.GenerateIdentity(e2e.KEMMLKEM768X25519)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		body := jsonBody(t, r)
		dev, _ := body["device"].(map[string]any)
		want := map[string]any{"name": "phone", "kem": "mlkem768x25519",
			"public_key":  base64.StdEncoding.EncodeToString(id.PublicKey()),
			"signing_key": base64.StdEncoding.EncodeToString(id.SigningKey())}
		if !maps.Equal(dev, want) {
			t.Errorf("device = %v\nwant %v", dev, want)
		}
		reply(w, 201, `{"user_id":"usr_1","device_id":"dev_1","token":"tok","expires_at":"`+t0Str+`"}`)
	})
	srv := newTestServer(t, mux)
	s, err := srv.LoginIdentity(context.Background(), "alice", "correct horse", "phone", id)
	if err != nil || s.DeviceID != "dev_1" {
		t.Fatalf("LoginIdentity = %+v, %v", s, err)
	}
	if _, err := srv.LoginIdentity(context.Background(), "alice", "correct horse", "phone", &e2e.Identity{}); !errors.Is(err, e2e.ErrBadKey) {
		t.Fatalf("LoginIdentity with an empty identity: %v", err)
	}
}

// newTestServer serves mux and returns a Client for it.
func newTestServer(t *testing.T, h http.Handler) *Client {
	t.Helper()
	f := newFake(t)
	f.mux.Handle("/", h)
	c, err := New(f.srv.URL, WithHTTPClient(f.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// opens checks that every ciphertext of a send opens for its device as a
// message from dev_me, to plaintext.
func opens(t *testing.T, d *dirFake, conv string, cts map[string][]byte, plaintext string) {
	t.Helper()
	me := d.identity(meDev)
	for dev, env := range cts {
		h, err := e2e.Inspect(env)
		if err != nil {
			t.Fatalf("envelope for %s: %v", dev, err)
		}
		pt, err := e2e.Open(d.identity(dev), me.SigningKey(), e2e.Context{Conversation: conv, SenderUser: "usr_me",
			SenderDevice: meDev, ClientID: h.ClientID, RecipientDevice: dev}, env)
		if err != nil || string(pt) != plaintext {
			t.Fatalf("envelope for %s opened to %q, %v", dev, pt, err)
		}
	}
}

func TestSecureSend(t *testing.T) {
	for _, overHTTP := range []bool{false, true} {
		t.Run(fmt.Sprintf("over HTTP %v: seals for every device of every member but its own", overHTTP), func(t *testing.T) {
			d := newDirFake(t)
			d.addDevice(me, "dev_me2", e2e.KEMMLKEM768X25519)
			d.addDevice(other, "dev_other2", e2e.KEMMLKEM768X25519)
			d.addDevice("usr_carol", "dev_carol", e2e.KEMX25519)
			d.members["cnv_2"] = []string{me, other, "usr_carol"}
			x, _ := d.secure(overHTTP, SecureOptions{})

			ctx := context.Background()
			sent, err := x.SendID(ctx, "cnv_2", "msg-1", []byte("hello all"))
			if err != nil {
				t.Fatal(err)
			}
			if sent.ID != "msg-1" || sent.Conversation != "cnv_2" || sent.Seq != 1 {
				t.Fatalf("Sent = %+v", sent)
			}
			tries := d.sendTries()
			if len(tries) != 1 {
				t.Fatalf("%d sends, want 1", len(tries))
			}
			if got := slices.Sorted(maps.Keys(tries[0])); !slices.Equal(got, []string{"dev_carol", "dev_me2", "dev_other", "dev_other2"}) {
				t.Fatalf("sealed for %v", got)
			}
			opens(t, d, "cnv_2", tries[0], "hello all")
			// One device's envelope is not another's.
			if _, err := e2e.Open(d.identity("dev_other2"), d.identity(meDev).SigningKey(), e2e.Context{Conversation: "cnv_2",
				SenderUser: me, SenderDevice: meDev, RecipientDevice: "dev_other2"}, tries[0]["dev_other"]); err == nil {
				t.Fatal("dev_other's envelope opened for dev_other2")
			}

			// The directory is cached: a second send lists nothing again.
			if _, err := x.Send(ctx, "cnv_2", []byte("again")); err != nil {
				t.Fatal(err)
			}
			convs, lists := d.fetches()
			if convs != 1 || !maps.Equal(lists, map[string]int{me: 1, other: 1, "usr_carol": 1}) {
				t.Fatalf("fetched conversations %d times and device lists %v", convs, lists)
			}
		})
	}
}

func TestSecureSendRetriesOnceOnDevicesMismatch(t *testing.T) {
	tests := []struct {
		name     string
		change   func(d *dirFake)
		want     []string // devices sealed for on the retry
		mismatch func(n int) bool
		wantErr  bool
	}{
		{name: "a device the other user added is sealed for on the retry",
			change: func(d *dirFake) { d.addDevice(other, "dev_other_new", e2e.KEMX25519) },
			want:   []string{"dev_other", "dev_other_new"}},
		{name: "a device of this user added elsewhere is sealed for on the retry",
			change: func(d *dirFake) { d.addDevice(me, "dev_me_new", e2e.KEMMLKEM768X25519) },
			want:   []string{"dev_me_new", "dev_other"}},
		{name: "a revoked device is left out on the retry",
			change: func(d *dirFake) { d.addDevice(other, "dev_other_new", e2e.KEMX25519); d.revoke(other, otherDv) },
			want:   []string{"dev_other_new"}},
		{name: "a second mismatch is the caller's",
			change:   func(d *dirFake) { d.addDevice(other, "dev_other_new", e2e.KEMX25519) },
			mismatch: func(n int) bool { return n >= 2 },
			want:     []string{"dev_other", "dev_other_new"}, wantErr: true},
	}
	for _, overHTTP := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("over HTTP %v: %s", overHTTP, tt.name), func(t *testing.T) {
				d := newDirFake(t)
				x, _ := d.secure(overHTTP, SecureOptions{})
				ctx := context.Background()
				if _, err := x.Send(ctx, "cnv_1", []byte("warm the cache")); err != nil {
					t.Fatal(err)
				}
				tt.change(d) // no devices_changed: the cache is stale
				d.mu.Lock()
				if tt.mismatch != nil {
					d.mismatch = func(n int) bool { return tt.mismatch(n - 1) }
				}
				d.mu.Unlock()

				_, err := x.SendID(ctx, "cnv_1", "msg-retry", []byte("hi"))
				var e *Error
				if tt.wantErr != (errors.As(err, &e) && e.Code == CodeDevicesMismatch) || (!tt.wantErr && err != nil) {
					t.Fatalf("SendID: %v", err)
				}
				tries := d.sendTries()[1:]
				if len(tries) != 2 {
					t.Fatalf("%d attempts, want 2", len(tries))
				}
				if got := slices.Sorted(maps.Keys(tries[1])); !slices.Equal(got, tt.want) {
					t.Fatalf("retry sealed for %v, want %v", got, tt.want)
				}
				opens(t, d, "cnv_1", tries[1], "hi")
				for dev, env := range tries[1] {
					if h, _ := e2e.Inspect(env); h.ClientID != "msg-retry" {
						t.Fatalf("retry for %s has client id %q", dev, h.ClientID)
					}
				}
			})
		}
	}
}

func TestSecureSendRefusesWhatItCannotSeal(t *testing.T) {
	d := newDirFake(t)
	x, _ := d.secure(true, SecureOptions{})
	ctx := context.Background()
	var e *Error
	if _, err := x.Send(ctx, "cnv_nope", []byte("x")); !errors.As(err, &e) || e.Code != CodeNoSuchConversation {
		t.Fatalf("Send to an unknown conversation: %v", err)
	}
	if _, err := x.SendID(ctx, "cnv_1", string(make([]byte, 65)), []byte("x")); !errors.As(err, &e) || e.Code != CodeInvalidMessage {
		t.Fatalf("Send with a 65-byte id: %v", err)
	}
	if len(d.sendTries()) != 0 {
		t.Fatal("something was sent")
	}

	// An identity that is not the one dev_me registered.
	wrong, _ := e2e.GenerateIdentity(e2e.KEMX25519)
	y, err := NewSecure(d.session(d.token), nil, wrong, SecureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := y.Send(ctx, "cnv_1", []byte("x")); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("Send with another identity: %v", err)
	}
}

func TestSecureDropsCachedDevicesOnDevicesChanged(t *testing.T) {
	d := newDirFake(t)
	x, conn := d.secure(false, SecureOptions{})
	ctx := context.Background()
	if _, err := x.Send(ctx, "cnv_1", []byte("warm the cache")); err != nil {
		t.Fatal(err)
	}
	d.addDevice(other, "dev_other_new", e2e.KEMX25519)
	d.pushFrame(map[string]any{"type": "devices_changed", "user_id": other})
	eventually(t, "the Conn has the frame", func() bool { return len(conn.DevicesChanged()) == 1 })

	if _, err := x.Send(ctx, "cnv_1", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	tries := d.sendTries()
	if len(tries) != 2 {
		t.Fatalf("%d sends, want 2 (no mismatch)", len(tries))
	}
	if got := slices.Sorted(maps.Keys(tries[1])); !slices.Equal(got, []string{"dev_other", "dev_other_new"}) {
		t.Fatalf("sealed for %v", got)
	}
	if _, lists := d.fetches(); lists[other] != 2 || lists[me] != 1 {
		t.Fatalf("device lists fetched %v: want usr_other's again, not usr_me's", lists)
	}
}

func TestConnDevicesChanged(t *testing.T) {
	t.Run("yields each user id in order", func(t *testing.T) {
		d := newDirFake(t)
		conn := d.connect(ConnOptions{})
		d.pushFrame(map[string]any{"type": "devices_changed", "user_id": "usr_a"})
		d.pushFrame(map[string]any{"type": "devices_changed"}) // no user: ignored
		d.pushFrame(map[string]any{"type": "devices_changed", "user_id": "usr_b"})
		for _, want := range []string{"usr_a", "usr_b"} {
			select {
			case got := <-conn.DevicesChanged():
				if got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no devices_changed")
			}
		}
	})
	t.Run("marks lost changes with an empty string when full", func(t *testing.T) {
		d := newDirFake(t)
		conn := d.connect(ConnOptions{})
		for i := range 100 {
			d.pushFrame(map[string]any{"type": "devices_changed", "user_id": fmt.Sprintf("usr_%d", i)})
		}
		// The reader handles frames in order: once this message is out,
		// every devices_changed before it has been handled.
		d.push("cnv_1", other, otherDv, []byte("marker"))
		recv(t, conn)
		if n := len(conn.DevicesChanged()); n != devicesChangedBuffer {
			t.Fatalf("%d values waiting, want %d", n, devicesChangedBuffer)
		}
		for i := range devicesChangedBuffer - 1 {
			if got := <-conn.DevicesChanged(); got != fmt.Sprintf("usr_%d", i) {
				t.Fatalf("value %d = %q", i, got)
			}
		}
		if got := <-conn.DevicesChanged(); got != "" {
			t.Fatalf("last value = %q, want the empty string", got)
		}
		d.pushFrame(map[string]any{"type": "devices_changed", "user_id": "usr_after"})
		if got := <-conn.DevicesChanged(); got != "usr_after" {
			t.Fatalf("after draining: %q", got)
		}
	})
	t.Run("is closed when the Conn ends", func(t *testing.T) {
		d := newDirFake(t)
		conn := d.connect(ConnOptions{})
		conn.Close()
		if _, ok := <-conn.DevicesChanged(); ok {
			t.Fatal("a value after Close")
		}
	})
}

// receive calls Receive with a deadline.
func receive(t *testing.T, x *Secure) (Received, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return x.Receive(ctx)
}

func TestSecureReceiveOpensMessages(t *testing.T) {
	d := newDirFake(t)
	x, _ := d.secure(false, SecureOptions{})
	env := d.sealFrom(other, otherDv, "cnv_1", "cid-7", meDev, []byte("hello me"))
	seq := d.push("cnv_1", other, otherDv, env)
	r, err := receive(t, x)
	if err != nil {
		t.Fatal(err)
	}
	want := Received{Conversation: "cnv_1", Seq: seq, SenderUserID: other, SenderDeviceID: otherDv,
		TS: r.TS, ClientID: "cid-7", Plaintext: []byte("hello me")}
	if r.TS.IsZero() || !equalReceived(r, want) {
		t.Fatalf("Received = %+v\nwant %+v", r, want)
	}
}

func equalReceived(a, b Received) bool {
	return a.Conversation == b.Conversation && a.Seq == b.Seq && a.SenderUserID == b.SenderUserID &&
		a.SenderDeviceID == b.SenderDeviceID && a.TS.Equal(b.TS) && a.ClientID == b.ClientID &&
		a.Assisted == b.Assisted && bytes.Equal(a.Plaintext, b.Plaintext)
}

func TestSecureReceiveReportsWhatDoesNotOpen(t *testing.T) {
	tests := []struct {
		name    string
		deliver func(d *dirFake) // pushes one bad message
		want    error
	}{
		{"a changed byte", func(d *dirFake) {
			env := d.sealFrom(other, otherDv, "cnv_1", "c1", meDev, []byte("x"))
			env[len(env)-1] ^= 1
			d.push("cnv_1", other, otherDv, env)
		}, e2e.ErrOpen},
		{"a server that names another device of the sender", func(d *dirFake) {
			d.addDevice(other, "dev_other2", e2e.KEMX25519)
			d.push("cnv_1", other, "dev_other2", d.sealFrom(other, otherDv, "cnv_1", "c1", meDev, []byte("x")))
		}, e2e.ErrOpen},
		{"a server that names another user's device as the sender", func(d *dirFake) {
			d.addDevice("usr_carol", "dev_carol", e2e.KEMX25519)
			d.push("cnv_1", "usr_carol", "dev_carol", d.sealFrom(other, otherDv, "cnv_1", "c1", meDev, []byte("x")))
		}, e2e.ErrOpen},
		{"a device that seals in another's name", func(d *dirFake) {
			d.addDevice("usr_carol", "dev_carol", e2e.KEMX25519)
			forged, _ := e2e.Seal(d.identity("dev_carol"), e2e.KEMX25519, d.identity(meDev).PublicKey(), e2e.Context{
				Conversation: "cnv_1", SenderUser: other, SenderDevice: otherDv, ClientID: "c1", RecipientDevice: meDev}, []byte("x"))
			d.push("cnv_1", other, otherDv, forged)
		}, e2e.ErrSignature},
		{"an envelope for this user's other device", func(d *dirFake) {
			d.addDevice(me, "dev_me2", e2e.KEMX25519)
			d.push("cnv_1", other, otherDv, d.sealFrom(other, otherDv, "cnv_1", "c1", "dev_me2", []byte("x")))
		}, e2e.ErrOpen},
		{"an envelope of another conversation", func(d *dirFake) {
			d.push("cnv_1", other, otherDv, d.sealFrom(other, otherDv, "cnv_2", "c1", meDev, []byte("x")))
		}, e2e.ErrOpen},
		{"a sender device the directory does not list", func(d *dirFake) {
			d.push("cnv_1", other, "dev_ghost", d.sealFrom(other, otherDv, "cnv_1", "c1", meDev, []byte("x")))
		}, ErrUnknownDevice},
		{"a device the directory lists under another user", func(d *dirFake) {
			d.push("cnv_1", "usr_carol", otherDv, d.sealFrom(other, otherDv, "cnv_1", "c1", meDev, []byte("x")))
		}, ErrUnknownDevice},
		{"bytes that are no envelope", func(d *dirFake) {
			d.push("cnv_1", other, otherDv, []byte("garbage"))
		}, e2e.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is a DecryptError, and the next message opens", func(t *testing.T) {
			d := newDirFake(t)
			d.addDevice("usr_carol", "dev_carol0", e2e.KEMX25519) // usr_carol exists
			x, _ := d.secure(false, SecureOptions{})
			tt.deliver(d)
			r, err := receive(t, x)
			var de *DecryptError
			if !errors.As(err, &de) || !errors.Is(err, tt.want) {
				t.Fatalf("Receive = %+v, %v; want a DecryptError with %v", r, err, tt.want)
			}
			if r.Plaintext != nil || r.Seq != de.Message.Seq || r.Seq == 0 {
				t.Fatalf("failed Received = %+v", r)
			}
			d.push("cnv_1", other, otherDv, d.sealFrom(other, otherDv, "cnv_1", "c2", meDev, []byte("fine")))
			if r, err := receive(t, x); err != nil || string(r.Plaintext) != "fine" {
				t.Fatalf("next Receive = %+v, %v", r, err)
			}
		})
	}
}

func TestSecureOpenKnowsDevices(t *testing.T) {
	d := newDirFake(t)
	x, _ := d.secure(true, SecureOptions{})
	ctx := context.Background()
	msg := func(device, cid string) Message {
		return Message{Conversation: "cnv_1", Seq: 1, SenderUserID: other, SenderDeviceID: device,
			Ciphertext: d.sealFrom(other, device, "cnv_1", cid, meDev, []byte("from "+device))}
	}
	if r, err := x.Open(ctx, msg(otherDv, "a")); err != nil || string(r.Plaintext) != "from dev_other" {
		t.Fatalf("Open = %+v, %v", r, err)
	}
	// A device added since the directory was read: fetched again.
	d.addDevice(other, "dev_other_new", e2e.KEMMLKEM768X25519)
	if r, err := x.Open(ctx, msg("dev_other_new", "b")); err != nil || string(r.Plaintext) != "from dev_other_new" {
		t.Fatalf("Open from a new device = %+v, %v", r, err)
	}
	// A device revoked since: its key is remembered, its history opens.
	d.revoke(other, otherDv)
	if r, err := x.Open(ctx, msg(otherDv, "c")); err != nil || string(r.Plaintext) != "from dev_other" {
		t.Fatalf("Open from a revoked device = %+v, %v", r, err)
	}
	if _, lists := d.fetches(); lists[other] != 2 {
		t.Fatalf("usr_other's devices listed %d times, want 2", lists[other])
	}
	// Receive needs a Conn.
	if _, err := x.Receive(ctx); err == nil {
		t.Fatal("Receive without a Conn")
	}
}

func TestSecureServerSealedMessages(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("RefuseAssisted %v", refuse), func(t *testing.T) {
			d := newDirFake(t)
			x, _ := d.secure(false, SecureOptions{RefuseAssisted: refuse})
			me := d.identity(meDev)
			env, err := e2e.SealAssisted(me.KEM(), me.PublicKey(), e2e.Context{Conversation: "cnv_1", SenderUser: other,
				SenderDevice: otherDv, ClientID: "plain-1", RecipientDevice: meDev}, []byte("sent in clear"))
			if err != nil {
				t.Fatal(err)
			}
			d.push("cnv_1", other, otherDv, env)
			r, err := receive(t, x)
			if refuse {
				if !errors.Is(err, ErrAssistedRefused) || r.Plaintext != nil {
					t.Fatalf("Receive = %+v, %v; want ErrAssistedRefused", r, err)
				}
				return
			}
			if err != nil || !r.Assisted || string(r.Plaintext) != "sent in clear" || r.ClientID != "plain-1" {
				t.Fatalf("Receive = %+v, %v", r, err)
			}
		})
	}
}

func TestSecureReceiveEndsWithTheConn(t *testing.T) {
	d := newDirFake(t)
	x, conn := d.secure(false, SecureOptions{})
	go func() {
		time.Sleep(20 * time.Millisecond)
		conn.Close()
	}()
	if _, err := receive(t, x); !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive after Close: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	y, _ := NewSecure(d.session(d.token), nil, d.identity(meDev), SecureOptions{})
	if _, err := y.Receive(ctx); err == nil {
		t.Fatal("Receive without a Conn")
	}
}

func TestNewSecureRefuses(t *testing.T) {
	d := newDirFake(t)
	conn := d.connect(ConnOptions{})
	id := d.identity(meDev)
	if _, err := NewSecure(&Session{}, nil, id, SecureOptions{}); err == nil {
		t.Error("an unbound session")
	}
	if _, err := NewSecure(d.session(d.token), nil, &e2e.Identity{}, SecureOptions{}); !errors.Is(err, e2e.ErrBadKey) {
		t.Errorf("an empty identity: %v", err)
	}
	if _, err := NewSecure(d.session("tok_other"), conn, id, SecureOptions{}); err == nil {
		t.Error("a Conn of another session")
	}
}
