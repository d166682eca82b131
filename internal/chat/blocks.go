package chat

import (
	"context"
	"fmt"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

var errBlocked = sb.Errorf(sb.EFORBIDDEN, wire.CodeBlocked, "a member of this conversation has blocked you")

// Block makes the caller block another user: from then on that user cannot
// start a direct conversation with the caller, add the caller to a group,
// or send in a direct conversation with the caller. Groups they already
// share are left alone (leaving one is the caller's choice).
func (s *Service) Block(ctx context.Context, id Identity, userID string) error {
	if err := s.blockable(ctx, id, userID); err != nil {
		return err
	}
	if err := s.store.Block(ctx, id.UserID, userID, s.now()); err != nil {
		return fmt.Errorf("block: %w", err)
	}
	s.blocksChanged(ctx, id.UserID, userID)
	return nil
}

// Unblock lifts the caller's block of userID; without one it does nothing.
func (s *Service) Unblock(ctx context.Context, id Identity, userID string) error {
	if err := s.blockable(ctx, id, userID); err != nil {
		return err
	}
	if err := s.store.Unblock(ctx, id.UserID, userID); err != nil {
		return fmt.Errorf("unblock: %w", err)
	}
	s.blocksChanged(ctx, id.UserID, userID)
	return nil
}

// blockable checks userID names another user that exists.
func (s *Service) blockable(ctx context.Context, id Identity, userID string) error {
	if userID == id.UserID {
		return sb.Errorf(sb.EINVALID, wire.CodeBadRequest, "a user cannot block itself")
	}
	ok, err := s.store.UserExists(ctx, userID)
	if err != nil {
		return fmt.Errorf("block: %w", err)
	}
	if !ok {
		return sb.Errorf(sb.ENOTFOUND, wire.CodeNotFound, "no such user")
	}
	return nil
}

// blocksChanged drops the block from this node's cache at once and from
// every node's through the bus.
func (s *Service) blocksChanged(ctx context.Context, blocker, blocked string) {
	s.cache.forgetBlock(blocker, blocked)
	s.publishControl(ctx, topicBlocks, Control{Block: []string{blocker, blocked}})
}

// creationBlocked refuses a conversation that a member who blocks the
// creator would be put into.
func (s *Service) creationBlocked(ctx context.Context, id Identity, members []string) error {
	others := make([]string, 0, len(members))
	for _, m := range members {
		if m != id.UserID {
			others = append(others, m)
		}
	}
	by, err := s.store.Blockers(ctx, id.UserID, others)
	if err != nil {
		return fmt.Errorf("create conversation: %w", err)
	}
	if len(by) > 0 {
		return errBlocked
	}
	return nil
}

// sendBlocked refuses a send in a direct conversation whose other member
// blocks the sender. Groups are not checked: a block keeps a user out of
// the blocker's direct messages and new groups, not out of shared groups.
func (s *Service) sendBlocked(ctx context.Context, id Identity, convID string) error {
	e, err := s.cache.entry(ctx, convID)
	if err != nil || !e.direct {
		return nil // member() answered for a missing conversation already
	}
	for _, m := range e.members {
		if m == id.UserID {
			continue
		}
		blocked, err := s.cache.blocked(ctx, m, id.UserID)
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
		if blocked {
			return errBlocked
		}
	}
	return nil
}
