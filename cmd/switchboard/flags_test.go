package main

import (
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

func TestLimitFlags(t *testing.T) {
	t.Run("the defaults are chat.DefaultLimits, with loopback trusted and exempt", func(t *testing.T) {
		m := NewMain()
		if err := m.ParseFlags(nil, func(string) string { return "" }); err != nil {
			t.Fatal(err)
		}
		c := m.Config
		if c.Chat.Limits != chat.DefaultLimits {
			t.Fatalf("limits %+v, want %+v", c.Chat.Limits, chat.DefaultLimits)
		}
		if !slices.Equal(c.Server.LimitExempt, loopback) || !slices.Equal(c.Server.TrustedProxies, loopback) || len(c.Server.AllowedOrigins) != 0 {
			t.Fatalf("exempt %v, trusted %v, origins %v", c.Server.LimitExempt, c.Server.TrustedProxies, c.Server.AllowedOrigins)
		}
	})
	t.Run("rates, counts, lists; 0 is unlimited and an empty list is none", func(t *testing.T) {
		m := NewMain()
		env := map[string]string{"SWITCHBOARD_DEVICE_BYTES": "8MiB/1m"}
		err := m.ParseFlags([]string{"--login-rate-ip", "5/1m", "--frame-rate", "0", "--max-conns-per-ip", "0", "--max-devices", "5",
			"--send-rate", "0", "--limit-exempt", "", "--trusted-proxies", "10.0.0.0/8, 192.0.2.1",
			"--allowed-origins", "https://a.example, https://b.example", "--request-timeout", "5s"}, func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		c := m.Config
		l := c.Chat.Limits
		if l.LoginPerIP != (chat.Rate{N: 5, Per: time.Minute}) || l.FramesPerSocket.On() || l.BytesPerDevice != (chat.Rate{N: 8 << 20, Per: time.Minute}) {
			t.Fatalf("rates %+v", l)
		}
		if l.ConnsPerIP != -1 || l.DevicesPerUser != 5 || l.ConnsPerUser != 20 || c.Chat.SendRate >= 0 {
			t.Fatalf("counts %+v, send rate %v", l, c.Chat.SendRate)
		}
		if c.Server.LimitExempt == nil || len(c.Server.LimitExempt) != 0 {
			t.Fatalf("exempt %#v, want empty and not nil", c.Server.LimitExempt)
		}
		want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}
		if !slices.Equal(c.Server.TrustedProxies, want) {
			t.Fatalf("trusted %v, want %v", c.Server.TrustedProxies, want)
		}
		if !slices.Equal(c.Server.AllowedOrigins, []string{"https://a.example", "https://b.example"}) || c.Server.RequestTimeout != 5*time.Second {
			t.Fatalf("origins %v, timeout %v", c.Server.AllowedOrigins, c.Server.RequestTimeout)
		}
	})
	t.Run("a bad value is an error", func(t *testing.T) {
		for _, args := range [][]string{{"--login-rate-ip", "lots"}, {"--trusted-proxies", "somewhere"}, {"--frame-rate", "5/0s"}} {
			m := NewMain()
			m.Stderr = io.Discard
			if err := m.ParseFlags(args, func(string) string { return "" }); err == nil {
				t.Errorf("%v: no error", args)
			}
		}
	})
}
