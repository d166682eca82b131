package testenv

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/switchboard-chat/switchboard/client"
)

// SignupLogin creates the account name (password "password-"+name) through
// url, a node or NGINX in front of nodes, and logs one device of it in with
// placeholder keys: for tests of routing and delivery, not of crypto.
func SignupLogin(ctx context.Context, t testing.TB, url, name string) *client.Session {
	t.Helper()
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAccount(ctx, name, "password-"+name); err != nil {
		t.Fatal(err)
	}
	s, err := c.Login(ctx, name, "password-"+name, client.DeviceInfo{Name: "phone", KEM: "x25519",
		PublicKey: bytes.Repeat([]byte{9}, 32), SigningKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Metric reads one sample from the /metrics of a node's admin listener at
// adminURL: series is the name with its labels as served, e.g.
// `switchboard_requests_total{via="http"}`. 0 when it is absent.
func Metric(t testing.TB, adminURL, series string) float64 {
	t.Helper()
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
