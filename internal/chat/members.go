package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// Membership changes (issue 19). A change is an event in the
// conversation's sequence: the service appends a Message with the event's
// JSON and a MemberChange, which the store applies in the transaction that
// gives the event its seq, and publishes like a message. Its recipients
// are every active device of the members after the change, plus the
// removed user's: so a member's devices get exactly the messages between
// their addition and their removal, and everyone learns of the change
// between the same two messages.
//
// Each node caches members (cache.go): it drops a conversation's entry
// when it reads an event of it from the bus (live.go), and all of them
// after the bus was interrupted. Until the event arrives, a send on
// another node may still be checked against the old members (see
// docs/architecture.md, "Known limits").

var (
	errNoConversation = sb.Errorf(sb.ENOTFOUND, wire.CodeNoSuchConversation, "no such conversation")
	errNotMember      = sb.Errorf(sb.EFORBIDDEN, wire.CodeNotMember, "not a member of this conversation")
	errNotAdmin       = sb.Errorf(sb.EFORBIDDEN, wire.CodeNotAdmin, "only an admin of this group may do that")
	errNotGroup       = sb.Errorf(sb.ECONFLICT, wire.CodeNotGroup, "the members of a direct conversation do not change")
)

// memberLocks serializes the membership changes of one conversation on
// this node, so that a change is checked against the members it applies
// to. Changes of one group from two nodes at once are not serialized: the
// store applies both (an add of a member already added is no change).
var memberLocks struct {
	seed maphash.Seed
	mu   [64]sync.Mutex
}

func init() { memberLocks.seed = maphash.MakeSeed() }

func lockConversation(convID string) func() {
	mu := &memberLocks.mu[maphash.String(memberLocks.seed, convID)%uint64(len(memberLocks.mu))]
	mu.Lock()
	return mu.Unlock
}

// changeable returns the conversation (read from the store, not the cache)
// once id may change its members: a member of a group, and an admin unless
// self is set (a member leaving).
func (s *Service) changeable(ctx context.Context, id Identity, convID string, self bool) (*sb.Conversation, error) {
	c, err := s.store.Conversation(ctx, convID)
	if errors.Is(err, sb.ErrNotFound) {
		return nil, errNoConversation
	}
	if err != nil {
		return nil, fmt.Errorf("conversation: %w", err)
	}
	switch {
	case !slices.Contains(c.Members, id.UserID):
		return nil, errNotMember
	case c.Kind != sb.KindGroup:
		return nil, errNotGroup
	case !self && !slices.Contains(c.Admins, id.UserID):
		return nil, errNotAdmin
	}
	// A change stores events like a send stores a message: it takes a
	// send's tokens, so that nobody floods a group with changes.
	if err := s.sendAllowed(ctx, id, convID); err != nil {
		return nil, err
	}
	return c, nil
}

// AddMembers adds users to a group (the caller must be its admin), one
// member_added event each, and returns the seq of the last. Users already
// members are skipped (a retry adds nobody twice); when nobody is left to
// add it returns the conversation's head seq.
func (s *Service) AddMembers(ctx context.Context, id Identity, convID string, userIDs []string) (int64, error) {
	if len(userIDs) == 0 {
		return 0, sb.Errorf(sb.EINVALID, wire.CodeInvalidConversation, "user_ids is empty")
	}
	if len(userIDs) > s.cfg.MaxMembers {
		return 0, sb.Errorf(sb.EINVALID, wire.CodeInvalidConversation, "at most %d members", s.cfg.MaxMembers)
	}
	unlock := lockConversation(convID)
	defer unlock()
	c, err := s.changeable(ctx, id, convID, false)
	if err != nil {
		return 0, err
	}
	var add []string
	for _, u := range userIDs {
		if !slices.Contains(c.Members, u) && !slices.Contains(add, u) {
			add = append(add, u)
		}
	}
	if len(add) == 0 {
		return c.HeadSeq, nil
	}
	if len(c.Members)+len(add) > s.cfg.MaxMembers {
		return 0, sb.Errorf(sb.EINVALID, wire.CodeInvalidConversation, "at most %d members", s.cfg.MaxMembers)
	}
	for _, u := range add {
		ok, err := s.store.UserExists(ctx, u)
		if err != nil {
			return 0, fmt.Errorf("add members: %w", err)
		}
		if !ok {
			return 0, sb.Errorf(sb.EINVALID, wire.CodeInvalidConversation, "unknown user %q", u)
		}
	}
	// A user who blocks the caller is not put into the caller's groups.
	if err := s.creationBlocked(ctx, id, add); err != nil {
		return 0, err
	}
	members := slices.Clone(c.Members)
	var seq int64
	for _, u := range add {
		members = append(members, u)
		m, err := s.appendEvent(ctx, id, convID, wire.Event{Kind: wire.EventMemberAdded, UserID: u, By: id.UserID},
			&sb.MemberChange{Op: sb.MemberAdd, UserID: u}, members)
		if err != nil {
			return 0, err
		}
		seq = m.Seq
	}
	// The added users' nodes may hold no socket in the conversation, so
	// be subscribed to it nowhere: as for a new conversation, they hold it
	// now and read what these users' devices have of it from the store
	// (their member_added events), whatever came live before.
	s.publishControl(ctx, topicJoined, Control{Joined: convID, Notify: add})
	return seq, nil
}

// RemoveMember removes userID from a group: an admin removes anyone
// (member_removed), any member removes themself (member_left). It
// returns the event's seq. When the last admin leaves a group that still
// has members, the first of them (by id) becomes its admin, with a
// role_changed event of its own, as in WhatsApp: a group is never left
// without anyone who can manage it.
func (s *Service) RemoveMember(ctx context.Context, id Identity, convID, userID string) (int64, error) {
	self := userID == id.UserID
	unlock := lockConversation(convID)
	defer unlock()
	c, err := s.changeable(ctx, id, convID, self)
	if err != nil {
		return 0, err
	}
	if !slices.Contains(c.Members, userID) {
		return 0, sb.Errorf(sb.EINVALID, wire.CodeInvalidConversation, "user %q is not a member", userID)
	}
	kind := wire.EventMemberRemoved
	if self {
		kind = wire.EventMemberLeft
	}
	// The removed user's devices get their own removal.
	m, err := s.appendEvent(ctx, id, convID, wire.Event{Kind: kind, UserID: userID, By: id.UserID},
		&sb.MemberChange{Op: sb.MemberRemove, UserID: userID}, c.Members)
	if err != nil {
		return 0, err
	}
	rest := slices.DeleteFunc(slices.Clone(c.Members), func(u string) bool { return u == userID })
	admins := slices.DeleteFunc(slices.Clone(c.Admins), func(u string) bool { return u == userID })
	if len(admins) > 0 || len(rest) == 0 {
		return m.Seq, nil
	}
	heir := rest[0]
	if _, err := s.appendEvent(ctx, id, convID, wire.Event{Kind: wire.EventRoleChanged, UserID: heir, By: id.UserID, Role: wire.RoleAdmin},
		&sb.MemberChange{Op: sb.MemberSetAdmin, UserID: heir, Admin: true}, rest); err != nil {
		return 0, err
	}
	return m.Seq, nil
}

// SetRole makes a member of a group an admin or a plain member (the
// caller must be an admin) and returns the event's seq, or the head seq
// when the role is already that. The last admin cannot step down.
func (s *Service) SetRole(ctx context.Context, id Identity, convID, userID, role string) (int64, error) {
	if role != wire.RoleAdmin && role != wire.RoleMember {
		return 0, sb.Errorf(sb.EINVALID, wire.CodeBadRequest, "role must be %s or %s", wire.RoleAdmin, wire.RoleMember)
	}
	unlock := lockConversation(convID)
	defer unlock()
	c, err := s.changeable(ctx, id, convID, false)
	if err != nil {
		return 0, err
	}
	if !slices.Contains(c.Members, userID) {
		return 0, sb.Errorf(sb.EINVALID, wire.CodeInvalidConversation, "user %q is not a member", userID)
	}
	admin := role == wire.RoleAdmin
	switch {
	case slices.Contains(c.Admins, userID) == admin:
		return c.HeadSeq, nil
	case !admin && len(c.Admins) == 1:
		return 0, sb.Errorf(sb.EINVALID, wire.CodeInvalidConversation, "a group keeps at least one admin")
	}
	m, err := s.appendEvent(ctx, id, convID, wire.Event{Kind: wire.EventRoleChanged, UserID: userID, By: id.UserID, Role: role},
		&sb.MemberChange{Op: sb.MemberSetAdmin, UserID: userID, Admin: admin}, c.Members)
	if err != nil {
		return 0, err
	}
	return m.Seq, nil
}

// AppendEvent stores ev as the next seq of a conversation, from the
// device id (its user is the event's actor), for every active device of
// its members, and delivers it like a message (live, then at sync and in
// history). It changes no member: it is for events such as call_missed.
// It returns the event's seq.
func (s *Service) AppendEvent(ctx context.Context, id Identity, convID string, ev wire.Event) (int64, error) {
	members, err := s.cache.conversation(ctx, convID)
	if errors.Is(err, sb.ErrNotFound) {
		return 0, errNoConversation
	}
	if err != nil {
		return 0, fmt.Errorf("conversation: %w", err)
	}
	m, err := s.appendEvent(ctx, id, convID, ev, nil, members)
	if err != nil {
		return 0, err
	}
	return m.Seq, nil
}

// appendEvent stores an event addressed to every active device of users
// (the acting device included) with its change, and drops this node's
// cached members of the conversation.
func (s *Service) appendEvent(ctx context.Context, id Identity, convID string, ev wire.Event, change *sb.MemberChange, users []string) (*sb.Message, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	devices, err := s.cache.activeDevices(ctx, users)
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	m := &sb.Message{ConversationID: convID, SenderUserID: id.UserID, SenderDeviceID: id.DeviceID, SentAt: s.now(),
		Ciphertexts: make(map[string][]byte, devices.count()), Event: body, Change: change}
	for _, ds := range devices {
		for i := range ds {
			m.Ciphertexts[ds[i].ID] = nil
		}
	}
	stored, _, err := s.store.AppendMessage(ctx, m)
	if change != nil {
		s.cache.forgetConversation(convID)
	}
	if err != nil {
		s.cfg.Logger.Warn("event not stored", "conversation", convID, "kind", ev.Kind, "err", err)
		return nil, sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable, "the change could not be stored; retry")
	}
	return stored, nil
}

// readable returns up to which seq id's device may read a conversation:
// all of it for a member, up to their removal for a former member asking
// for what came before it; otherwise not_member (or no_such_conversation).
func (s *Service) readable(ctx context.Context, id Identity, convID string, after int64) (int64, error) {
	_, err := s.member(ctx, id, convID)
	if err == nil {
		return math.MaxInt64, nil
	}
	if sb.ErrorCode(err) != wire.CodeNotMember {
		return 0, err
	}
	ms, merr := s.store.Membership(ctx, convID, id.UserID)
	if merr != nil || ms.LeftSeq == 0 || after >= ms.LeftSeq {
		return 0, err
	}
	return ms.LeftSeq, nil
}

// resumed wraps the node's Resumed: after the bus was interrupted, the
// events that would have dropped cached members may be lost.
func (s *Service) resumed(next func()) func() {
	return func() {
		s.cache.forgetConversations()
		if next != nil {
			next()
		}
	}
}

// forgetConversation drops a conversation's cached members.
func (c *cache) forgetConversation(id string) {
	c.mu.Lock()
	delete(c.members, id)
	c.convEpoch++
	c.mu.Unlock()
}

// forgetConversations drops every conversation's cached members.
func (c *cache) forgetConversations() {
	c.mu.Lock()
	clear(c.members)
	c.convEpoch++
	c.mu.Unlock()
}
