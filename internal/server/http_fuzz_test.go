package server

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/sqlite"
	"github.com/switchboard-chat/switchboard/wire"
)

// unlimited turns every abuse limit off, for tests about something else.
var unlimited = chat.Limits{
	LoginPerAccount: chat.Unlimited, LoginPerIP: chat.Unlimited, SignupPerIP: chat.Unlimited,
	SendPerConversation: chat.Unlimited, FramesPerSocket: chat.Unlimited, BytesPerDevice: chat.Unlimited,
	ConnsPerIP: -1, ConnsPerUser: -1, DevicesPerUser: -1,
	ConvPerDevice: chat.Unlimited, ConvPerIP: chat.Unlimited, HistoryPerDevice: -1, HistoryPerNode: -1,
}

// fuzzAPI is a node's HTTP handler (no listener) on a SQLite store, with one
// user, one device and one conversation to aim requests at.
type fuzzAPI struct {
	h           http.Handler
	token, conv string
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	store, err := sqlite.Open(filepath.Join(f.TempDir(), "sb.db"))
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	if err := store.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	bus := &inmem.Bus{}
	f.Cleanup(func() { bus.Close(); store.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := chat.New(store, bus, chat.Config{Argon2: chat.Argon2Params{Time: 1, MemoryKiB: 8, Threads: 1},
		SendRate: -1, SendBurst: -1, Limits: unlimited, Logger: log})
	s := New(svc, Config{MaxBody: 64 << 10, Logger: log})
	a := &fuzzAPI{h: s.secure(s.routes())}
	for _, u := range []string{"alice", "bob"} {
		if _, err := svc.CreateAccount(ctx, u, "password-"+u); err != nil {
			f.Fatal(err)
		}
	}
	k, _ := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	sign, _, _ := ed25519.GenerateKey(nil)
	login, err := svc.Login(ctx, "alice", "password-alice", chat.DeviceInfo{Name: "phone", KEM: "x25519", PublicKey: k.PublicKey().Bytes(), SigningKey: sign})
	if err != nil {
		f.Fatal(err)
	}
	a.token = login.Token
	id := chat.Identity{UserID: login.UserID, DeviceID: login.DeviceID}
	if a.conv, err = svc.CreateConversation(ctx, id, "group", nil, ""); err != nil {
		f.Fatal(err)
	}
	return a
}

// FuzzHTTPBodies sends arbitrary bodies to every endpoint that decodes one
// (the JSON decoders and the validation behind them): nothing may panic or
// answer 500, and every refusal is an RFC 9457 problem document with a code.
func FuzzHTTPBodies(f *testing.F) {
	a := newFuzzAPI(f)
	paths := []string{"/v1/accounts", "/v1/sessions", "/v1/conversations", "/v1/conversations/" + a.conv + "/messages"}
	for i, body := range []string{
		`{"username":"carol","password":"password-carol"}`,
		`{"username":"alice","password":"password-alice","device":{"name":"x","kem":"x25519","public_key":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=","signing_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}`,
		`{"kind":"group","members":[],"title":"t"}`,
		`{"id":"m1","ciphertext":"AQID"}`,
	} {
		f.Add(uint8(i), []byte(body))
	}
	for _, junk := range []string{``, `{`, `null`, `[]`, `{"id":1}`, `{"ciphertexts":{"dev_x":"%%"}}`, `{"a":1}{"b":2}`,
		`{"kind":"direct","members":["usr_x","usr_y"]}`, `{"device":{"public_key":"` + string(bytes.Repeat([]byte("A"), 4000)) + `"}}`} {
		for i := range paths {
			f.Add(uint8(i), []byte(junk))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		req := httptest.NewRequest("POST", paths[int(route)%len(paths)], bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+a.token)
		req.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		a.h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 201:
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%d with a body that is not JSON: %q", w.Code, w.Body)
			}
			return
		case 400, 401, 403, 404, 409, 413:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		var p wire.Problem
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("refusal %d with Content-Type %q", w.Code, ct)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Code == "" || p.Status != w.Code {
			t.Fatalf("refusal %d is not a problem document with a code: %q (%v)", w.Code, w.Body, err)
		}
	})
}
