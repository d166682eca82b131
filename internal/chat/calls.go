package chat

import (
	"context"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// CallPeer is what call signalling (internal/calls) asks before it rings
// anyone: userID must be a member of convID, a direct conversation whose
// other member does not block them (as for a send); it returns that other
// member and their active device ids, from the node's cache. A group
// answers not_supported: group calls need an SFU.
func (s *Service) CallPeer(ctx context.Context, userID, convID string) (string, []string, error) {
	id := Identity{UserID: userID}
	members, err := s.member(ctx, id, convID)
	if err != nil {
		return "", nil, err
	}
	e, err := s.cache.entry(ctx, convID)
	if err != nil {
		return "", nil, err
	}
	if !e.direct {
		return "", nil, sb.Errorf(sb.EINVALID, wire.CodeNotSupported, "calls are 1:1, in direct conversations only")
	}
	if err := s.sendBlocked(ctx, id, convID); err != nil {
		return "", nil, err
	}
	var peer string
	for _, m := range members {
		if m != userID {
			peer = m
		}
	}
	lists, err := s.cache.activeDevices(ctx, []string{peer})
	if err != nil {
		return "", nil, err
	}
	var devices []string
	for _, ds := range lists {
		for _, d := range ds {
			devices = append(devices, d.ID)
		}
	}
	return peer, devices, nil
}
