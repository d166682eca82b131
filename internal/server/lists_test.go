package server_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/server"
)

func TestConversationPages(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	alice := n.signup(t, "alice", "phone")[0]
	bob := n.signup(t, "bob", "phone")[0]
	var want []string
	for range 5 {
		want = append(want, n.conversation(t, alice, "group", bob.user))
	}
	n.conversation(t, bob, "group") // not alice's
	slices.Sort(want)

	// pages follows next from the first page of the given limit to the end
	// and returns the conversations listed and each page's size.
	pages := func(t *testing.T, limit int) (got []string, sizes []int) {
		t.Helper()
		path := fmt.Sprintf("/v1/conversations?limit=%d", limit)
		for {
			st, body := n.call(t, "GET", path, alice.token, nil)
			if st != 200 {
				t.Fatalf("GET %s: %d %v", path, st, body)
			}
			page := body["conversations"].([]any)
			sizes = append(sizes, len(page))
			for _, c := range page {
				got = append(got, c.(map[string]any)["conversation_id"].(string))
			}
			next, ok := body["next"].(string)
			if !ok {
				return got, sizes
			}
			if len(sizes) > 5 {
				t.Fatal("next never ends")
			}
			path = fmt.Sprintf("/v1/conversations?limit=%d&after=%s", limit, next)
		}
	}
	t.Run("pages of limit follow next to the end, each conversation once and in order", func(t *testing.T) {
		got, sizes := pages(t, 2)
		if slices.Max(sizes) > 2 {
			t.Fatalf("pages of %v with limit=2", sizes)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages listed %v, want %v", got, want)
		}
	})
	t.Run("a page ends at its byte bound before its limit, and next goes on from there", func(t *testing.T) {
		// Each of alice's conversations is about 200 bytes of JSON: a bound of
		// 300 bytes ends a page at its second conversation.
		defer server.SetConversationsPageBytes(300)()
		got, sizes := pages(t, 500)
		if !slices.Equal(sizes, []int{2, 2, 1}) {
			t.Fatalf("pages of %v conversations, want 2, 2, 1 (the one that passes 300 bytes ends a page)", sizes)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages listed %v, want %v", got, want)
		}
	})
	t.Run("a limit out of range is a bad request", func(t *testing.T) {
		for _, q := range []string{"limit=0", "limit=501", "limit=x"} {
			if st, body := n.call(t, "GET", "/v1/conversations?"+q, alice.token, nil); st != 400 || body["code"] != "bad_request" {
				t.Fatalf("?%s: %d %v, want 400 bad_request", q, st, body)
			}
		}
	})
}

func TestConversationCreationPerAddress(t *testing.T) {
	n := limitedNode(t, func(cc *chat.Config, _ *server.Config) { cc.Limits.ConvPerIP = chat.Rate{N: 2, Per: time.Hour} })
	alice := n.signup(t, "alice", "phone")[0]
	create := func(hdr ...string) (*http.Response, map[string]any) {
		return n.do(t, "POST", "/v1/conversations", alice.token, map[string]any{"kind": "group", "members": []string{}}, hdr...)
	}
	for i := range 2 {
		if resp, body := create(); resp.StatusCode != 201 {
			t.Fatalf("creation %d: %d %v", i, resp.StatusCode, body)
		}
	}
	resp, body := create()
	wantLimited(t, resp, body, 1000) // one per half hour
	if resp, body := create("X-Forwarded-For", "203.0.113.7"); resp.StatusCode != 201 {
		t.Fatalf("a creation from another address: %d %v", resp.StatusCode, body)
	}
}

// TestConversationCreationPerDevice: a device past its creations gets 429
// before its body is even decoded (one that is not a conversation too:
// decoding a 1,000-member list cost each refusal 1.4 ms), and another
// device still creates.
func TestConversationCreationPerDevice(t *testing.T) {
	n := limitedNode(t, func(cc *chat.Config, _ *server.Config) { cc.Limits.ConvPerDevice = chat.Rate{N: 3, Per: time.Hour} })
	alice := n.signup(t, "alice", "phone")[0]
	bob := n.signup(t, "bob", "phone")[0]
	group := map[string]any{"kind": "group", "members": []string{bob.user}}
	for i := range 3 {
		if resp, body := n.do(t, "POST", "/v1/conversations", alice.token, group); resp.StatusCode != 201 {
			t.Fatalf("creation %d: %d %v", i, resp.StatusCode, body)
		}
	}
	resp, body := n.do(t, "POST", "/v1/conversations", alice.token, "not a conversation")
	wantLimited(t, resp, body, 1000) // one per 20 minutes
	if resp, body := n.do(t, "POST", "/v1/conversations", bob.token, map[string]any{"kind": "group", "members": []string{alice.user}}); resp.StatusCode != 201 {
		t.Fatalf("bob's creation: %d %v", resp.StatusCode, body)
	}
}

func TestHistoryPagesOverHTTP(t *testing.T) {
	const size = 40 << 10
	n := startNode(t, backends[0].open(t), func(cc *chat.Config, _ *server.Config) { cc.Limits.HistoryBytes = 100 << 10 })
	alice := n.signup(t, "alice", "phone")[0]
	bob := n.signup(t, "bob", "phone")[0]
	conv := n.conversation(t, alice, "direct", bob.user)
	const total = 5
	for i := range total {
		ct := make([]byte, size)
		ct[0] = byte(i)
		if st, body := n.call(t, "POST", "/v1/conversations/"+conv+"/messages", alice.token, map[string]any{"id": fmt.Sprint(i), "ciphertext": ct}); st != 201 {
			t.Fatalf("send %d: %d %v", i, st, body)
		}
	}
	type page struct {
		Messages []struct {
			Seq        int64  `json:"seq"`
			Ciphertext []byte `json:"ciphertext"`
		} `json:"messages"`
		NextAfter *int64 `json:"next_after"`
	}
	get := func(t *testing.T, after int64) page {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/conversations/%s/messages?limit=1000&after=%d", n.url, conv, after), nil)
		req.Header.Set("Authorization", "Bearer "+bob.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var p page
		if resp.StatusCode != 200 || json.Unmarshal(raw, &p) != nil {
			t.Fatalf("after %d: %d, body %.200q", after, resp.StatusCode, raw)
		}
		return p
	}
	var seqs []int64
	after := int64(0)
	for pages := 0; ; pages++ {
		p := get(t, after)
		if len(p.Messages) > 2 {
			t.Fatalf("a page of %d messages of %d bytes: past the 100 KiB bound", len(p.Messages), size)
		}
		for _, m := range p.Messages {
			if len(m.Ciphertext) != size || int64(m.Ciphertext[0]) != m.Seq-1 {
				t.Fatalf("message %d came back with %d bytes starting %d", m.Seq, len(m.Ciphertext), m.Ciphertext[0])
			}
			seqs = append(seqs, m.Seq)
		}
		if p.NextAfter == nil {
			break
		}
		if pages > total {
			t.Fatal("next_after never ends")
		}
		after = *p.NextAfter
	}
	if want := []int64{1, 2, 3, 4, 5}; !slices.Equal(seqs, want) {
		t.Fatalf("pages gave seqs %v, want %v", seqs, want)
	}
}

func TestBlocksOverHTTP(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	alice := n.signup(t, "alice", "phone")[0]
	bob := n.signup(t, "bob", "phone")[0]
	carol := n.signup(t, "carol", "phone")[0]
	direct := n.conversation(t, bob, "direct", alice.user)
	send := func(d device, id string) (int, map[string]any) {
		return n.call(t, "POST", "/v1/conversations/"+direct+"/messages", d.token,
			map[string]any{"id": id, "ciphertext": base64.StdEncoding.EncodeToString([]byte("x"))})
	}
	if st, body := n.call(t, "POST", "/v1/blocks/"+bob.user, alice.token, nil); st != 204 {
		t.Fatalf("alice blocks bob: %d %v", st, body)
	}
	forbidden := func(t *testing.T, what string, st int, body map[string]any) {
		t.Helper()
		if st != 403 || body["code"] != "blocked" {
			t.Fatalf("%s: %d %v, want 403 blocked", what, st, body)
		}
	}
	t.Run("the blocked user cannot send to the blocker over HTTP", func(t *testing.T) {
		st, body := send(bob, "h1")
		forbidden(t, "bob's send", st, body)
	})
	t.Run("nor on a socket", func(t *testing.T) {
		s := n.dial(t, bob.token)
		for f := s.read(t); f["type"] != "synced"; f = s.read(t) {
		}
		s.send(t, map[string]any{"type": "send", "id": "w1", "conversation": direct, "ciphertext": []byte("x")})
		s.expect(t, "error", "blocked")
	})
	t.Run("nor put the blocker into a new conversation", func(t *testing.T) {
		st, body := n.call(t, "POST", "/v1/conversations", bob.token, map[string]any{"kind": "group", "members": []string{carol.user, alice.user}})
		forbidden(t, "bob's group with alice", st, body)
	})
	t.Run("unknown users cannot be blocked", func(t *testing.T) {
		if st, body := n.call(t, "POST", "/v1/blocks/usr_nobody", alice.token, nil); st != 404 || body["code"] != "not_found" {
			t.Fatalf("%d %v, want 404 not_found", st, body)
		}
	})
	t.Run("after the unblock the send goes through", func(t *testing.T) {
		if st, body := n.call(t, "DELETE", "/v1/blocks/"+bob.user, alice.token, nil); st != 204 {
			t.Fatalf("unblock: %d %v", st, body)
		}
		if st, body := send(bob, "h2"); st != 201 {
			t.Fatalf("bob's send after the unblock: %d %v", st, body)
		}
	})
}
