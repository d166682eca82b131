package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/client"
)

func TestParseFlags(t *testing.T) {
	env := map[string]string{"SWITCHBOARD_ADDR": "127.0.0.1:9999", "SWITCHBOARD_MAX_FRAME": "1234", "SWITCHBOARD_SEND_RATE": "7"}
	t.Run("environment variables set what flags do not", func(t *testing.T) {
		m := NewMain()
		if err := m.ParseFlags([]string{"--send-rate", "9"}, func(k string) string { return env[k] }); err != nil {
			t.Fatal(err)
		}
		c := m.Config
		if c.Server.Addr != "127.0.0.1:9999" || c.Server.MaxFrame != 1234 || c.Chat.SendRate != 9 {
			t.Fatalf("addr %q max-frame %d send-rate %v; want the env's addr and frame and the flag's rate", c.Server.Addr, c.Server.MaxFrame, c.Chat.SendRate)
		}
	})
	t.Run("a bad environment value is an error naming the variable", func(t *testing.T) {
		m := NewMain()
		err := m.ParseFlags(nil, func(k string) string {
			if k == "SWITCHBOARD_MAX_FRAME" {
				return "lots"
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_MAX_FRAME") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("help lists every setting", func(t *testing.T) {
		m := NewMain()
		var out bytes.Buffer
		m.Stderr = &out
		if err := m.ParseFlags([]string{"--help"}, func(string) string { return "" }); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("err = %v, want flag.ErrHelp", err)
		}
		for _, f := range []string{"-addr", "-db", "-data-dir", "-max-frame", "-max-body", "-send-rate", "-argon2-memory", "-session-ttl", "SWITCHBOARD_"} {
			if !strings.Contains(out.String(), f) {
				t.Errorf("help does not mention %s", f)
			}
		}
	})
}

// TestBinary runs the real binary: it serves with no flags but a port and a
// folder, logs its URL, and on SIGTERM closes sockets with 1001 and exits 0.
func TestBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchboard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--argon2-memory", "64", "--argon2-time", "1")
	cmd.Dir = dir
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stderr)
	var url string
	for url == "" && lines.Scan() {
		if m := regexp.MustCompile(`url=(http://\S+)`).FindStringSubmatch(lines.Text()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatal("the node never logged its URL")
	}
	go func() {
		for lines.Scan() {
		}
	}()
	if _, err := os.Stat(filepath.Join(dir, "data", "switchboard.db")); err != nil {
		t.Fatalf("no SQLite file under ./data: %v", err)
	}
	if resp, err := http.Get(url + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _ := client.New(url)
	if _, err := c.CreateAccount(ctx, "alice", "password-alice"); err != nil {
		t.Fatal(err)
	}
	s, err := c.Login(ctx, "alice", "password-alice", client.DeviceInfo{Name: "phone", KEM: "x25519",
		PublicKey: bytes.Repeat([]byte{9}, 32), SigningKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/v1/ws?token="+s.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, raw, err := ws.Read(ctx); err != nil || !strings.Contains(string(raw), "synced") {
		t.Fatalf("first frame %q %v", raw, err)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	_, _, err = ws.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Fatalf("socket after SIGTERM: %v (code %d), want 1001", err, code)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want 0", err)
	}
}
