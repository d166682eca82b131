package server_test

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/media"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestNGINXEdgeCache runs the shipped deploy/nginx config in front of a
// node: an image is fetched from the origin once, and the second fetch is
// the edge's (X-Cache-Status: HIT) even with the origin's copy gone.
func TestNGINXEdgeCache(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, backends[0].open(t), withMedia(dir, media.Config{}))
	edge := testenv.NGINX(t, []string{n.url})
	proxied := &node{url: edge.URL()}
	alice := n.signup(t, "alice", "phone")[0]

	st, _, body := upload(t, proxied, "/v1/media", alice.token, "image/jpeg", realPhoto(t))
	if st != 201 {
		t.Fatalf("upload through NGINX: %d %v\n%s", st, body, edge.ErrorLog())
	}
	url := body["url"].(string)
	first, img := get(t, proxied, url, "", nil)
	if first.StatusCode != 200 || first.Header.Get("X-Cache-Status") != "MISS" {
		t.Fatalf("first fetch: %d, X-Cache-Status %q, want 200 MISS", first.StatusCode, first.Header.Get("X-Cache-Status"))
	}
	// The origin's copy goes: only the edge can answer now.
	removed := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == filepath.Base(url) {
			removed++
			return os.Remove(p)
		}
		return nil
	})
	if removed != 1 {
		t.Fatalf("found %d copies of %s at the origin", removed, url)
	}
	if resp, _ := get(t, n, url, "", nil); resp.StatusCode != 404 {
		t.Fatalf("the origin still serves it: %d", resp.StatusCode)
	}
	second, again := get(t, proxied, url, "", nil)
	if second.StatusCode != 200 || second.Header.Get("X-Cache-Status") != "HIT" || string(again) != string(img) {
		t.Fatalf("second fetch: %d, X-Cache-Status %q, %d bytes; want 200 HIT with the same %d bytes",
			second.StatusCode, second.Header.Get("X-Cache-Status"), len(again), len(img))
	}
	for _, h := range []string{"Cache-Control", "ETag", "X-Content-Type-Options", "Content-Type"} {
		if second.Header.Get(h) != first.Header.Get(h) {
			t.Errorf("%s from the edge %q, from the origin %q", h, second.Header.Get(h), first.Header.Get(h))
		}
	}
	resp, _ := get(t, proxied, url, "", map[string]string{"If-None-Match": first.Header.Get("ETag")})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match at the edge: %d, want 304", resp.StatusCode)
	}
	resp, part := get(t, proxied, url, "", map[string]string{"Range": "bytes=4-7"})
	if resp.StatusCode != http.StatusPartialContent || string(part) != string(img[4:8]) {
		t.Errorf("Range at the edge: %d %q", resp.StatusCode, part)
	}
}
