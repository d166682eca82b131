package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// user is an account the bench made; device one of its logins.
type user struct {
	name, password, id string
}

type device struct {
	user  *user
	id    string
	token string
}

// state is what the replays share: the accounts made once at the start and
// the devices logged in so far, per user index.
type state struct {
	mu      sync.Mutex
	users   []*user
	devices map[int][]*device
	run     string // a random prefix, so that two runs against one node do not collide
}

// answer is how the node answered one request: the status, and the problem
// code if it refused; or the transport error.
type answer struct {
	status int
	code   string
	err    error
	body   []byte
	header http.Header
}

// key is the table's name for the answer: "201", "429 rate_limited",
// "error: connection reset".
func (a answer) key() string {
	if a.err != nil {
		msg := a.err.Error()
		for _, s := range []string{"connection reset", "EOF", "timeout", "refused", "broken pipe", "deadline"} {
			if strings.Contains(msg, s) {
				return "error: " + s
			}
		}
		return "error: " + msg
	}
	if a.code != "" {
		return fmt.Sprintf("%d %s", a.status, a.code)
	}
	return strconv.Itoa(a.status)
}

// call sends one request: body is JSON-encoded unless it is []byte. out, if
// not nil, receives a 2xx answer's JSON.
func (b *bench) call(ctx context.Context, method, path, token string, body any, out any) answer {
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(v)
	default:
		j, err := json.Marshal(v)
		if err != nil {
			return answer{err: err}
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.cfg.Target+path, r)
	if err != nil {
		return answer{err: err}
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, err: err, body: data, header: resp.Header}
	if err != nil {
		return a
	}
	if resp.StatusCode >= 300 {
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(data, &p)
		a.code = p.Code
		return a
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.err = fmt.Errorf("decoding %s %s: %w", method, path, err)
		}
	}
	return a
}

// retryAfter is how long a 429/503 asks to wait (at least 100 ms).
func (a answer) retryAfter() time.Duration {
	if a.header != nil {
		if s, err := strconv.Atoi(a.header.Get("Retry-After")); err == nil && s > 0 {
			return time.Duration(s) * time.Second
		}
	}
	return 100 * time.Millisecond
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// signup creates n accounts (4 at a time: hashing is the node's to bound,
// setup should not be the abuse) and returns them.
func (b *bench) signup(ctx context.Context, p *phase, n int) ([]*user, error) {
	us := make([]*user, n)
	for i := range us {
		us[i] = &user{name: fmt.Sprintf("ab%s-%d", b.state.run, i), password: "pw-" + randomHex(12)}
	}
	err := parallel(ctx, 4, n, func(ctx context.Context, i int) error {
		for {
			var out struct {
				UserID string `json:"user_id"`
			}
			a := b.call(ctx, "POST", "/v1/accounts", "", map[string]string{"username": us[i].name, "password": us[i].password}, &out)
			b.answer(p, a.key())
			switch {
			case a.err == nil && a.status == http.StatusCreated:
				us[i].id = out.UserID
				return nil
			case a.status == http.StatusServiceUnavailable || a.status == http.StatusTooManyRequests:
				if err := wait(ctx, a.retryAfter()); err != nil {
					return err
				}
			default:
				return fmt.Errorf("creating account %s: %s %s", us[i].name, a.key(), a.body)
			}
		}
	})
	return us, err
}

// login logs u in as a new device, retrying while hashing slots are busy.
func (b *bench) login(ctx context.Context, p *phase, u *user) (*device, error) {
	keys, err := deviceKeys()
	if err != nil {
		return nil, err
	}
	body := map[string]any{"username": u.name, "password": u.password, "device": keys}
	for {
		var out struct {
			DeviceID string `json:"device_id"`
			Token    string `json:"token"`
		}
		a := b.call(ctx, "POST", "/v1/sessions", "", body, &out)
		b.answer(p, a.key())
		switch {
		case a.err == nil && a.status == http.StatusCreated:
			return &device{user: u, id: out.DeviceID, token: out.Token}, nil
		case a.status == http.StatusServiceUnavailable:
			if err := wait(ctx, a.retryAfter()); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("logging in %s: %s %s", u.name, a.key(), a.body)
		}
	}
}

// deviceKeys is the "device" of a login: a fresh X25519 key and Ed25519
// key (the node checks their sizes; server-assisted sends seal to them).
func deviceKeys() (map[string]string, error) {
	xk, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return map[string]string{"name": "abuse", "kem": "x25519",
		"public_key":  base64.StdEncoding.EncodeToString(xk.PublicKey().Bytes()),
		"signing_key": base64.StdEncoding.EncodeToString(pub)}, nil
}

// devicesOf logs user i in until it has n devices and returns them.
func (b *bench) devicesOf(ctx context.Context, p *phase, i, n int) ([]*device, error) {
	s := &b.state
	for {
		s.mu.Lock()
		have := len(s.devices[i])
		s.mu.Unlock()
		if have >= n {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.devices[i][:n], nil
		}
		d, err := b.login(ctx, p, s.users[i])
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.devices[i] = append(s.devices[i], d)
		s.mu.Unlock()
	}
}

// createGroup creates a group of the given users as d.
func (b *bench) createGroup(ctx context.Context, d *device, users []*user) (string, answer) {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.id
	}
	var out struct {
		ID string `json:"conversation_id"`
	}
	a := b.call(ctx, "POST", "/v1/conversations", d.token, map[string]any{"kind": "group", "members": ids, "title": "abuse"}, &out)
	return out.ID, a
}

// parallel runs f(0..n-1) on k goroutines and returns the first error.
func parallel(ctx context.Context, k, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(k, n) {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}
