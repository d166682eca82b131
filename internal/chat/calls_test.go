package chat_test

import (
	"context"
	"slices"
	"testing"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/wire"
)

// TestCallPeer: what call signalling asks before it rings anyone.
func TestCallPeer(t *testing.T) {
	ctx := context.Background()
	st, bus := sqliteStore(t)
	svc := chat.New(st, bus, chat.Config{Argon2: cheapArgon2})
	alice, bob, carol := loginDevice(t, svc, "alice"), loginDevice(t, svc, "bob"), loginDevice(t, svc, "carol")
	bob2 := loginDevice(t, svc, "bob")
	direct, err := svc.CreateConversation(ctx, alice, sb.KindDirect, []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	group, err := svc.CreateConversation(ctx, alice, sb.KindGroup, []string{bob.UserID, carol.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("in a direct conversation it names the other member and every device of theirs", func(t *testing.T) {
		peer, devices, err := svc.CallPeer(ctx, alice.UserID, direct)
		slices.Sort(devices)
		want := []string{bob.DeviceID, bob2.DeviceID}
		slices.Sort(want)
		if err != nil || peer != bob.UserID || !slices.Equal(devices, want) {
			t.Fatalf("CallPeer = %q, %v, %v; want bob and %v", peer, devices, err, want)
		}
	})
	for _, tc := range []struct {
		name, user, conv, code string
	}{
		{"a group is not supported", alice.UserID, group, wire.CodeNotSupported},
		{"a stranger is not a member", carol.UserID, direct, wire.CodeNotMember},
		{"an unknown conversation is named so", alice.UserID, "cnv_nothing", wire.CodeNoSuchConversation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := svc.CallPeer(ctx, tc.user, tc.conv); sb.ErrorCode(err) != tc.code {
				t.Fatalf("CallPeer: %v, want %s", err, tc.code)
			}
		})
	}
	t.Run("a callee who blocks the caller is not rung", func(t *testing.T) {
		if err := svc.Block(ctx, bob, alice.UserID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.CallPeer(ctx, alice.UserID, direct); sb.ErrorCode(err) != wire.CodeBlocked {
			t.Fatalf("CallPeer: %v, want blocked", err)
		}
	})
}
