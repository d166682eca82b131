package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// Control events travel on the bus under ControlPrefix; they are never stored.
const (
	ControlPrefix = "ctl."
	topicRevoked  = "ctl.revoked"
	topicDevices  = "ctl.devices"
	topicBlocks   = "ctl.blocks"
	topicJoined   = "ctl.joined"
)

// maxContactRows bounds what a login or a revocation reads to find whom to
// send devices_changed: membership rows of the user's conversations, so the
// cost does not grow with the number of groups the user was put into. A
// contact past the bound learns of the change at its next send, from the
// devices_mismatch answer (docs/protocol.md).
const maxContactRows = 10_000

// Control is a decoded control event.
type Control struct {
	// Revoked is a device whose socket must close with 4001, wherever it is.
	Revoked string `json:"revoked,omitempty"`
	// DevicesChanged is a user whose device list changed; Notify are the users
	// (sharing a conversation with it, itself included) whose devices are told.
	DevicesChanged string   `json:"devices_changed,omitempty"`
	Notify         []string `json:"notify,omitempty"`
	// Joined is a conversation just created, Notify its members: the nodes
	// of their sockets subscribe to it.
	Joined string `json:"joined,omitempty"`
	// Block is {blocker, blocked}: a block made or lifted, which every node
	// drops from its cache.
	Block []string `json:"block,omitempty"`
}

// DecodeControl decodes a control event from the bus.
func DecodeControl(data []byte) (*Control, error) {
	var c Control
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decode control event: %w", err)
	}
	return &c, nil
}

func (s *Service) publishControl(ctx context.Context, topic string, c Control) {
	b, _ := json.Marshal(c)
	if err := s.bus.Publish(ctx, topic, b); err != nil {
		s.cfg.Logger.Warn("publish control event failed", "topic", topic, "err", err)
	}
}

// RevokeDevice revokes one of the caller's own devices. Another user's device
// is not found, exactly like a missing one.
func (s *Service) RevokeDevice(ctx context.Context, id Identity, deviceID string) error {
	err := s.store.RevokeDevice(ctx, id.UserID, deviceID, s.now())
	if errors.Is(err, sb.ErrNotFound) {
		return sb.Errorf(sb.ENOTFOUND, wire.CodeNotFound, "no such device")
	}
	if err != nil {
		return fmt.Errorf("revoke device: %w", err)
	}
	// The cached tokens go before anyone hears of the revocation: once it
	// returns, the token fails on every node.
	s.forgetSessions(ctx, deviceID)
	s.cache.forgetDevices(id.UserID)
	s.publishControl(ctx, topicRevoked, Control{Revoked: deviceID})
	s.devicesChanged(ctx, id.UserID)
	return nil
}

// devicesChanged tells the users sharing a conversation with userID (those
// found in maxContactRows membership rows) that its device list changed, so
// their clients refresh keys before the next send.
func (s *Service) devicesChanged(ctx context.Context, userID string) {
	contacts, err := s.store.Contacts(ctx, userID, maxContactRows)
	if err != nil {
		s.cfg.Logger.Warn("devices_changed: list contacts", "err", err)
		return
	}
	notify := append(contacts, userID)
	slices.Sort(notify)
	s.publishControl(ctx, topicDevices, Control{DevicesChanged: userID, Notify: slices.Compact(notify)})
}
