package load

import (
	"slices"
	"testing"
)

func TestChatLayout(t *testing.T) {
	const users, dms, small, large = 50, 3, 8, 20
	l := newChatLayout(users, dms, small, large)
	var count [numKinds]int
	pairs := map[[2]int32]bool{}
	for c, k := range l.kinds {
		count[k]++
		ms := l.members[c]
		if k == kindDM {
			if len(ms) != 2 || ms[0] == ms[1] {
				t.Fatalf("direct conversation %d has members %v", c, ms)
			}
			p := [2]int32{min(ms[0], ms[1]), max(ms[0], ms[1])}
			if pairs[p] {
				t.Errorf("two direct conversations between users %v", p)
			}
			pairs[p] = true
		}
	}
	if want := [numKinds]int{users * dms, 7, 3}; count != want {
		t.Errorf("conversations per kind %v, want %v", count, want)
	}
	for u, cs := range l.ofUser {
		var per [numKinds]int
		for _, c := range cs {
			per[l.kinds[c]]++
			if !slices.Contains(l.members[c], int32(u)) {
				t.Errorf("user %d lists conversation %d without being a member", u, c)
			}
		}
		if per != [numKinds]int{2 * dms, 1, 1} {
			t.Errorf("user %d is in %v conversations per kind, want %v", u, per, [numKinds]int{2 * dms, 1, 1})
		}
		if !slices.IsSorted(cs) {
			t.Errorf("user %d's conversations %v are not in order", u, cs)
		}
	}
	// Small groups spread over the users; large groups are consecutive.
	for c, k := range l.kinds {
		ms := l.members[c]
		switch k {
		case kindSmall:
			if len(ms) < 7 || len(ms) > 8 || ms[1]-ms[0] != 7 {
				t.Errorf("small group %v: want 7-8 users, 7 apart", ms)
			}
		case kindLarge:
			if len(ms) > large || ms[len(ms)-1]-ms[0] != int32(len(ms)-1) {
				t.Errorf("large group %v: want up to %d consecutive users", ms, large)
			}
		}
	}
}
