package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/gateway"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// TestSDKSpeaksTheServersCodes holds the SDK's device revocation, error
// codes and close codes to what this server does and sends (issue 17).
func TestSDKSpeaksTheServersCodes(t *testing.T) {
	t.Run("the SDK's close codes are the server's", func(t *testing.T) {
		for _, c := range []struct {
			name        string
			sdk, server int
		}{
			{"going away", client.CloseGoingAway, gateway.CloseGoingAway},
			{"policy", client.ClosePolicyViolation, gateway.ClosePolicy},
			{"too big", client.CloseTooBig, gateway.CloseTooBig},
			{"device revoked", client.CloseDeviceRevoked, server.CloseDeviceRevoked},
			{"replaced", client.CloseReplaced, server.CloseReplaced},
			{"session expired", client.CloseSessionExpired, server.CloseSessionExpired},
			{"slow consumer", client.CloseSlowConsumer, gateway.CloseSlowConsumer},
			{"ping timeout", client.ClosePingTimeout, gateway.ClosePingTimeout},
		} {
			if c.sdk != c.server {
				t.Errorf("%s: the SDK says %d, the server sends %d", c.name, c.sdk, c.server)
			}
		}
	})

	n := startNode(t, backends[0].open(t), func(cc *chat.Config, _ *server.Config) { cc.E2EOnly = true })
	c, err := client.New(n.url)
	if err != nil {
		t.Fatal(err)
	}
	n.signup(t, "alice")
	phone, laptop, tablet := sdkDevice(t, c, "alice", "phone"), sdkDevice(t, c, "alice", "laptop"), sdkDevice(t, c, "alice", "tablet")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("RevokeDevice revokes another device of the user, whose Conn ends with 4001", func(t *testing.T) {
		lc := connect(t, laptop, client.ConnOptions{})
		if err := phone.RevokeDevice(ctx, laptop.DeviceID); err != nil {
			t.Fatalf("RevokeDevice: %v", err)
		}
		select {
		case <-lc.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the revoked device's Conn did not end")
		}
		var ce *client.CloseError
		if !errors.As(lc.Err(), &ce) || ce.Code != client.CloseDeviceRevoked {
			t.Fatalf("the revoked device's Conn ended with %v, want a CloseError %d", lc.Err(), client.CloseDeviceRevoked)
		}
	})

	t.Run("RevokeDevice of a revoked or an unknown device is not_found", func(t *testing.T) {
		for _, dev := range []string{laptop.DeviceID, "dev_nope"} {
			var e *client.Error
			if err := phone.RevokeDevice(ctx, dev); !errors.As(err, &e) || e.Status != 404 || e.Code != client.CodeNotFound {
				t.Fatalf("RevokeDevice(%s) = %v, want 404 %s", dev, err, client.CodeNotFound)
			}
		}
	})

	t.Run("a plaintext send to an end-to-end-only node is plaintext_refused", func(t *testing.T) {
		conv, err := phone.CreateConversation(ctx, client.KindGroup, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		pc := connect(t, phone, client.ConnOptions{})
		var e *client.Error
		if _, err := pc.Send(ctx, client.SendRequest{Conversation: conv, Plaintext: []byte("hi")}); !errors.As(err, &e) || e.Code != client.CodePlaintextRefused {
			t.Fatalf("Send with a plaintext = %v, want %s", err, client.CodePlaintextRefused)
		}
	})

	t.Run("a socket asked for another device than the token's is device_mismatch", func(t *testing.T) {
		wrong := c.Resume(client.Session{UserID: tablet.UserID, DeviceID: phone.DeviceID, Token: tablet.Token})
		var e *client.Error
		if _, err := client.Connect(ctx, wrong, client.ConnOptions{}); !errors.As(err, &e) || e.Status != 400 || e.Code != client.CodeDeviceMismatch {
			t.Fatalf("Connect = %v, want 400 %s", err, client.CodeDeviceMismatch)
		}
	})
}
