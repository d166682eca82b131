package redisbus

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
	"github.com/switchboard-chat/switchboard"
)

var _ switchboard.Presence = (*Presence)(nil)

// Presence keeps presence in Redis: one sorted set per user
// (sb:presence:<user>) whose members are the nodes that hold a socket of
// the user, each scored with its last heartbeat (Unix ms), plus the member
// "." scored with the latest release. A user is online while some node's
// score is younger than the TTL, so a node that dies (no heartbeat, no
// release) takes its users offline within the TTL without anyone having
// to notice it died. The key lives 30 days past its last change, for
// last_seen. Scores come from the nodes' clocks: nodes must keep them in
// sync (NTP), as for the session expiry.
type Presence struct {
	client rueidis.Client
	node   string
	ttl    time.Duration
	now    func() time.Time
}

// presenceKeep is how long a user's key outlives its last change: the
// last_seen of a user away longer is forgotten.
const presenceKeep = 30 * 24 * time.Hour

// presenceBatch bounds the users of one pipeline.
const presenceBatch = 512

// releasedMember is the sorted set's member that holds the latest release;
// node names never are ".".
const releasedMember = "."

// Presence returns node's view of the presence kept in b's Redis; claims
// lapse after ttl without a heartbeat. It shares b's connection.
func (b *Bus) Presence(node string, ttl time.Duration) *Presence {
	return &Presence{client: b.client, node: node, ttl: ttl, now: time.Now}
}

func presenceKey(user string) string { return "sb:presence:" + user }

func ms(t time.Time) float64 { return float64(t.UnixMilli()) }

// Claim scores users with this node's heartbeat, now.
func (p *Presence) Claim(ctx context.Context, users []string) error {
	now := ms(p.now())
	for len(users) > 0 {
		n := min(len(users), presenceBatch)
		cmds := make(rueidis.Commands, 0, 2*n)
		for _, u := range users[:n] {
			k := presenceKey(u)
			cmds = append(cmds,
				p.client.B().Zadd().Key(k).ScoreMember().ScoreMember(now, p.node).Build(),
				p.client.B().Pexpire().Key(k).Milliseconds(presenceKeep.Milliseconds()).Build())
		}
		for _, r := range p.client.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return fmt.Errorf("redisbus: presence claim: %w", err)
			}
		}
		users = users[n:]
	}
	return nil
}

// Release removes this node's score and records at as a release (kept if later than the last).
func (p *Presence) Release(ctx context.Context, user string, at time.Time) error {
	k := presenceKey(user)
	for _, r := range p.client.DoMulti(ctx,
		p.client.B().Zrem().Key(k).Member(p.node).Build(),
		p.client.B().Zadd().Key(k).Gt().ScoreMember().ScoreMember(ms(at), releasedMember).Build(),
		p.client.B().Pexpire().Key(k).Milliseconds(presenceKeep.Milliseconds()).Build()) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("redisbus: presence release: %w", err)
		}
	}
	return nil
}

// States reads each user's sorted set (one pipeline per batch) and judges it by the TTL.
func (p *Presence) States(ctx context.Context, users []string) ([]switchboard.PresenceState, error) {
	out := make([]switchboard.PresenceState, 0, len(users))
	for len(users) > 0 {
		n := min(len(users), presenceBatch)
		now := p.now()
		cmds := make(rueidis.Commands, 0, n)
		for _, u := range users[:n] {
			cmds = append(cmds, p.client.B().Zrange().Key(presenceKey(u)).Min("0").Max("-1").Withscores().Build())
		}
		for i, r := range p.client.DoMulti(ctx, cmds...) {
			scores, err := r.AsZScores()
			if err != nil && !rueidis.IsRedisNil(err) {
				return nil, fmt.Errorf("redisbus: presence states: %w", err)
			}
			st := switchboard.PresenceState{UserID: users[i]}
			var last int64
			for _, z := range scores {
				at := int64(z.Score)
				if z.Member != releasedMember && now.Sub(time.UnixMilli(at)) < p.ttl {
					st.Online = true
				}
				last = max(last, at)
			}
			if !st.Online && last > 0 {
				st.LastSeen = time.UnixMilli(last).UTC()
			}
			out = append(out, st)
		}
		users = users[n:]
	}
	return out, nil
}

// Close does nothing: the connection is the bus's, and claims lapse by themselves.
func (p *Presence) Close() error { return nil }
