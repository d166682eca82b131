package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	sb "github.com/switchboard-chat/switchboard"
)

// Control events travel on the bus under ControlPrefix; they are never stored.
const (
	ControlPrefix = "ctl."
	topicRevoked  = "ctl.revoked"
	topicDevices  = "ctl.devices"
)

// Control is a decoded control event.
type Control struct {
	// Revoked is a device whose socket must close with 4001, wherever it is.
	Revoked string `json:"revoked,omitempty"`
	// DevicesChanged is a user whose device list changed; Notify are the users
	// (sharing a conversation with it, itself included) whose devices are told.
	DevicesChanged string   `json:"devices_changed,omitempty"`
	Notify         []string `json:"notify,omitempty"`
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
		return sb.Errorf(sb.ENOTFOUND, "not_found", "no such device")
	}
	if err != nil {
		return fmt.Errorf("revoke device: %w", err)
	}
	s.cache.forgetDevices(id.UserID)
	s.publishControl(ctx, topicRevoked, Control{Revoked: deviceID})
	s.devicesChanged(ctx, id.UserID)
	return nil
}

// devicesChanged tells every user sharing a conversation with userID that its
// device list changed, so their clients refresh keys before the next send.
func (s *Service) devicesChanged(ctx context.Context, userID string) {
	convs, err := s.store.Conversations(ctx, userID)
	if err != nil {
		s.cfg.Logger.Warn("devices_changed: list conversations", "err", err)
		return
	}
	notify := []string{userID}
	for _, c := range convs {
		notify = append(notify, c.Members...)
	}
	slices.Sort(notify)
	s.publishControl(ctx, topicDevices, Control{DevicesChanged: userID, Notify: slices.Compact(notify)})
}
