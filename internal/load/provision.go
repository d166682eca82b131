package load

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-chat/switchboard/client"
)

// provisioner creates the run's accounts and logs in its devices over HTTP,
// HTTPConcurrency requests at a time.
type provisioner struct {
	cfg   Config
	cl    *client.Client
	log   io.Writer
	runID string
	dev   client.DeviceInfo

	mu     sync.Mutex
	errs   map[string]int64
	sample map[string]string
}

func newProvisioner(cfg Config, cl *client.Client, log io.Writer) (*provisioner, error) {
	// One key pair for every device: the server stores keys as given, and
	// this run measures sockets, not key handling.
	priv, err := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	if err != nil {
		return nil, err
	}
	sign, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	return &provisioner{
		cfg: cfg, cl: cl, log: log, runID: hex.EncodeToString(id),
		dev: client.DeviceInfo{
			Name: "sbload", KEM: client.KEMX25519,
			PublicKey: priv.PublicKey().Bytes(), SigningKey: sign,
		},
		errs: map[string]int64{}, sample: map[string]string{},
	}, nil
}

func (p *provisioner) password() string { return "sbload-" + p.runID + "-password" }

// run creates ceil(Conns/DevicesPerUser) users and logs in Conns devices.
// Devices whose login failed after retries are left out and counted.
func (p *provisioner) run(ctx context.Context) ([]User, []Device, error) {
	nUsers := (p.cfg.Conns + p.cfg.DevicesPerUser - 1) / p.cfg.DevicesPerUser
	users := make([]User, nUsers)
	for i := range users {
		users[i].Name = fmt.Sprintf("ld%s-%d", p.runID, i)
	}
	var made atomic.Int64
	p.parallel(ctx, "accounts", nUsers, &made, func(i int) error {
		id, err := retry(ctx, func() (string, error) { return p.cl.CreateAccount(ctx, users[i].Name, p.password()) })
		if err != nil {
			return p.fail("account", err)
		}
		users[i].ID = id
		return nil
	})
	if made.Load() == 0 {
		return nil, nil, fmt.Errorf("could not create any account: %v", p.sample)
	}
	devs := make([]Device, p.cfg.Conns)
	var logged atomic.Int64
	p.parallel(ctx, "logins", p.cfg.Conns, &logged, func(i int) error {
		u := i / p.cfg.DevicesPerUser
		devs[i] = Device{Index: -1, User: u, UserID: users[u].ID}
		if users[u].ID == "" {
			return p.fail("login_no_account", errors.New("its account was not created"))
		}
		s, err := retry(ctx, func() (*client.Session, error) {
			return p.cl.Login(ctx, users[u].Name, p.password(), p.dev)
		})
		if err != nil {
			return p.fail("login", err)
		}
		devs[i].DeviceID, devs[i].Token = s.DeviceID, s.Token
		return nil
	})
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	out := devs[:0]
	for _, d := range devs {
		if d.Token != "" {
			d.Index = len(out)
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("could not log in any device: %v", p.sample)
	}
	return users, out, nil
}

// parallel runs f(0..n-1) on HTTPConcurrency goroutines, logging progress.
func (p *provisioner) parallel(ctx context.Context, what string, n int, done *atomic.Int64, f func(int) error) {
	start := time.Now()
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(n, p.cfg.HTTPConcurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if f(i) == nil {
					done.Add(1)
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(p.cfg.ProgressEvery)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			fmt.Fprintf(p.log, "provision: %d/%d %s in %.1fs\n", done.Load(), n, what, time.Since(start).Seconds())
			return
		case <-tick.C:
			fmt.Fprintf(p.log, "provision: %d/%d %s\n", done.Load(), n, what)
		}
	}
}

func (p *provisioner) fail(kind string, err error) error {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Code != "" {
		kind += "_" + ce.Code
	}
	p.mu.Lock()
	p.errs[kind]++
	if _, ok := p.sample[kind]; !ok {
		p.sample[kind] = err.Error()
	}
	p.mu.Unlock()
	return err
}

// retry calls f up to four times while it fails in a way that may pass: a
// network error, 429 or 503.
func retry[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var v T
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		if v, err = f(); err == nil {
			return v, nil
		}
		var ce *client.Error
		if errors.As(err, &ce) && ce.Status != http.StatusTooManyRequests && ce.Status != http.StatusServiceUnavailable {
			return v, err
		}
		wait := time.Duration(200<<attempt) * time.Millisecond
		if ce != nil && ce.RetryAfter > 0 {
			wait = ce.RetryAfter
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return v, ctx.Err()
		}
	}
	return v, err
}
