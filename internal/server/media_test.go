package server_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/media"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// rawBody is a request body sent as is (not JSON-encoded) by rawCall.
type rawBody []byte

// withMedia turns media on with its files under dir.
func withMedia(dir string, cfg media.Config) nodeOption {
	return func(_ *chat.Config, sc *server.Config) {
		blobs := &media.Dir{Path: filepath.Join(dir, "blobs")}
		sc.Media = media.New(blobs, cfg)
		sc.Attachments = &media.Attachments{Blobs: blobs, Path: filepath.Join(dir, "attachments")}
	}
}

// realPhoto is the committed CC0 camera photo with orientation 6, GPS,
// camera, author and XMP (internal/media/testdata/README.md).
func realPhoto(t *testing.T) []byte {
	b, err := os.ReadFile("../media/testdata/seeding-orientation6-gps.jpg")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bigJPEG(t *testing.T, w, h int) []byte {
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for i := range m.Y {
		m.Y[i] = uint8(i * 7)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 70}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func upload(t *testing.T, n *node, path, token, ctype string, body []byte) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", n.url+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, resp.Header, out
}

func get(t *testing.T, n *node, path, token string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", n.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestMediaUpload(t *testing.T) {
	n := startNode(t, backends[0].open(t), withMedia(t.TempDir(), media.Config{}))
	alice := n.signup(t, "alice", "phone")[0]

	t.Run("a real sideways photo with GPS is stored upright as WebP without metadata, whatever its Content-Type", func(t *testing.T) {
		st, _, body := upload(t, n, "/v1/media", alice.token, "text/plain", realPhoto(t))
		if st != 201 {
			t.Fatalf("upload: %d %v", st, body)
		}
		if body["width"] != 640.0 || body["height"] != 360.0 {
			t.Fatalf("%vx%v, want 640x360 (upright)", body["width"], body["height"])
		}
		url := body["url"].(string)
		if !strings.HasPrefix(url, "/media/") || !strings.HasSuffix(url, ".webp") || body["thumbnail_url"] == url {
			t.Fatalf("urls %v", body)
		}
		resp, img := get(t, n, url, "", nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/webp" {
			t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if string(img[:4]) != "RIFF" || string(img[8:12]) != "WEBP" || float64(len(img)) != body["bytes"] {
			t.Fatalf("not the WebP announced (%d bytes, %v announced)", len(img), body["bytes"])
		}
		for _, s := range []string{"PlantedCameraMaker", "PlantedModel", "Planted Author", "Planted XMP", "Exif", "xmpmeta", "GPS"} {
			if bytes.Contains(img, []byte(s)) {
				t.Errorf("the served image contains %q", s)
			}
		}
		h := resp.Header
		if h.Get("Cache-Control") != "public, max-age=31536000, immutable" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("headers %v", h)
		}
		etag := h.Get("ETag")
		if etag != `"`+body["media_id"].(string)+`"` {
			t.Errorf("ETag %q, want the strong hash %q", etag, body["media_id"])
		}
		resp, b := get(t, n, url, "", map[string]string{"If-None-Match": etag})
		if resp.StatusCode != 304 || len(b) != 0 {
			t.Errorf("If-None-Match: %d with %d bytes, want 304", resp.StatusCode, len(b))
		}
		resp, b = get(t, n, url, "", map[string]string{"Range": "bytes=0-11"})
		if resp.StatusCode != 206 || string(b) != string(img[:12]) {
			t.Errorf("Range: %d %q", resp.StatusCode, b)
		}
		if resp, _ := get(t, n, body["thumbnail_url"].(string), "", nil); resp.StatusCode != 200 {
			t.Errorf("thumbnail: %d", resp.StatusCode)
		}
	})
	t.Run("a large photo in a multipart form named .png is fit to 2048", func(t *testing.T) {
		var form bytes.Buffer
		mw := multipart.NewWriter(&form)
		mw.WriteField("note", "ignored")
		fw, _ := mw.CreateFormFile("file", "holiday.png")
		fw.Write(bigJPEG(t, 3000, 1000))
		mw.Close()
		st, _, body := upload(t, n, "/v1/media", alice.token, mw.FormDataContentType(), form.Bytes())
		if st != 201 || body["width"] != 2048.0 || body["height"] != 682.0 {
			t.Fatalf("upload: %d %v, want 2048x682", st, body)
		}
	})
	for _, path := range []string{"/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/media/..%2fblobs", "/media/" + strings.Repeat("a", 64) + ".webp",
		"/media/" + strings.Repeat("a", 32) + ".bin", "/media/x.webp"} {
		t.Run("GET "+path+" is 404", func(t *testing.T) {
			if resp, b := get(t, n, path, "", nil); resp.StatusCode != 404 {
				t.Fatalf("%d %q", resp.StatusCode, b)
			}
		})
	}
}

func pngClaiming(w, h uint32) []byte {
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2
	out := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d"), ihdr...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(ihdr))
}

func TestMediaBadInput(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, backends[0].open(t), withMedia(dir, media.Config{MaxBytes: 200 << 10}))
	alice := n.signup(t, "alice", "phone")[0]
	photo := realPhoto(t)
	cases := []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"a zero-byte upload", nil, 400, "invalid_image"},
		{"a truncated photo", photo[:len(photo)/3], 400, "invalid_image"},
		{"a PNG that claims 100000x100000", pngClaiming(100000, 100000), 413, "too_many_pixels"},
		{"a polyglot that starts as HTML", append([]byte("<!doctype html><script>x</script>"), photo...), 415, "unsupported_media"},
		{"an upload over the limit", bytes.Repeat(photo, 8), 413, "too_large"},
		{"an upload over the limit by far (the gateway stops reading)", make([]byte, 2<<20), 413, "too_large"},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused with "+c.code, func(t *testing.T) {
			st, _, body := upload(t, n, "/v1/media", alice.token, "image/jpeg", c.body)
			if st != c.status || body["code"] != c.code {
				t.Fatalf("got %d %v, want %d %s", st, body, c.status, c.code)
			}
		})
	}
	t.Run("nothing was written and the node still serves", func(t *testing.T) {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				t.Errorf("a refused upload left %s", p)
			}
			return nil
		})
		if st, _, body := upload(t, n, "/v1/media", alice.token, "", photo); st != 201 {
			t.Fatalf("a good upload after the bad ones: %d %v", st, body)
		}
	})
}

// TestAttachmentAccess is the attachment rule (docs/security.md): the
// owner, and members of a conversation it was sent in, read it; anyone
// else gets 404, as for an id that does not exist.
func TestAttachmentAccess(t *testing.T) {
	n := startNode(t, backends[0].open(t), withMedia(t.TempDir(), media.Config{}))
	alice := n.signup(t, "alice", "phone")[0]
	bob := n.signup(t, "bob", "phone")[0]
	eve := n.signup(t, "eve", "phone")[0]
	conv := n.conversation(t, alice, "direct", bob.user)
	evesConv := n.conversation(t, eve, "direct", alice.user)
	sealed := []byte("opaque ciphertext \x00\x01\x02 never decoded")

	st, _, body := upload(t, n, "/v1/attachments", alice.token, "application/octet-stream", sealed)
	if st != 201 {
		t.Fatalf("upload: %d %v", st, body)
	}
	id := body["attachment_id"].(string)
	path := "/v1/attachments/" + id
	read := func(d device) (int, []byte) {
		resp, b := get(t, n, path, d.token, nil)
		return resp.StatusCode, b
	}
	t.Run("the owner reads it before it is sent", func(t *testing.T) {
		if st, b := read(alice); st != 200 || !bytes.Equal(b, sealed) {
			t.Fatalf("%d %q", st, b)
		}
	})
	t.Run("a future recipient gets 404 before it is sent", func(t *testing.T) {
		if st, _ := read(bob); st != 404 {
			t.Fatalf("%d", st)
		}
	})
	t.Run("someone else cannot send it into their conversation", func(t *testing.T) {
		st, body := n.call(t, "POST", "/v1/conversations/"+evesConv+"/messages", eve.token,
			map[string]any{"id": "e1", "ciphertext": []byte("x"), "attachments": []string{id}})
		if st != 400 || body["code"] != "invalid_message" {
			t.Fatalf("%d %v", st, body)
		}
	})
	t.Run("once sent in a conversation, its members read it", func(t *testing.T) {
		st, body := n.call(t, "POST", "/v1/conversations/"+conv+"/messages", alice.token,
			map[string]any{"id": "m1", "ciphertext": []byte("x"), "attachments": []string{id}})
		if st != 201 {
			t.Fatalf("send: %d %v", st, body)
		}
		resp, b := get(t, n, path, bob.token, nil)
		if resp.StatusCode != 200 || !bytes.Equal(b, sealed) {
			t.Fatalf("bob: %d %q", resp.StatusCode, b)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
			t.Errorf("Cache-Control %q: a shared cache must not keep it", cc)
		}
	})
	t.Run("a non-member gets 404", func(t *testing.T) {
		if st, _ := read(eve); st != 404 {
			t.Fatalf("%d", st)
		}
	})
	t.Run("an unknown id and a traversal get 404", func(t *testing.T) {
		for _, p := range []string{"/v1/attachments/" + strings.Repeat("0", 32), "/v1/attachments/..%2f..%2fblobs"} {
			if resp, _ := get(t, n, p, alice.token, nil); resp.StatusCode != 404 {
				t.Errorf("%s: %d", p, resp.StatusCode)
			}
		}
	})
}

// TestAttachmentsOnTheSocket is the same rule for the socket's send frame:
// its attachments field grants the conversation's members, and a sender
// may name only attachments it can read.
func TestAttachmentsOnTheSocket(t *testing.T) {
	n := startNode(t, backends[0].open(t), withMedia(t.TempDir(), media.Config{}))
	alice := n.signup(t, "alice", "phone")[0]
	bob := n.signup(t, "bob", "phone")[0]
	eve := n.signup(t, "eve", "phone")[0]
	conv := n.conversation(t, alice, "direct", bob.user)
	evesConv := n.conversation(t, eve, "direct", alice.user)
	st, _, body := upload(t, n, "/v1/attachments", alice.token, "", []byte("sealed on the device"))
	if st != 201 {
		t.Fatalf("upload: %d %v", st, body)
	}
	id := body["attachment_id"].(string)
	a := n.dial(t, alice.token)
	a.expect(t, "synced")
	e := n.dial(t, eve.token)
	e.expect(t, "synced")
	send := func(s *socket, msgID, conv string, ids []string) {
		s.send(t, map[string]any{"type": "send", "id": msgID, "conversation": conv, "ciphertext": []byte("x"), "attachments": ids})
	}

	t.Run("someone else cannot send it into their conversation", func(t *testing.T) {
		send(e, "e1", evesConv, []string{id})
		if f := e.expect(t, "error", "invalid_message"); f["id"] != "e1" {
			t.Fatalf("%v", f)
		}
		if resp, _ := get(t, n, "/v1/attachments/"+id, eve.token, nil); resp.StatusCode != 404 {
			t.Fatalf("eve reads it: %d", resp.StatusCode)
		}
	})
	t.Run("an unknown id and too many ids are refused", func(t *testing.T) {
		send(a, "u1", conv, []string{strings.Repeat("0", 32)})
		a.expect(t, "error", "invalid_message")
		send(a, "u2", conv, slices.Repeat([]string{id}, 33))
		a.expect(t, "error", "invalid_message")
	})
	t.Run("bob gets 404 before it is sent", func(t *testing.T) {
		if resp, _ := get(t, n, "/v1/attachments/"+id, bob.token, nil); resp.StatusCode != 404 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("once sent over the socket, the members read it", func(t *testing.T) {
		send(a, "m1", conv, []string{id})
		if f := a.expect(t, "sent"); f["id"] != "m1" {
			t.Fatalf("%v", f)
		}
		if resp, b := get(t, n, "/v1/attachments/"+id, bob.token, nil); resp.StatusCode != 200 || string(b) != "sealed on the device" {
			t.Fatalf("bob: %d %q", resp.StatusCode, b)
		}
	})
	t.Run("a node without media refuses a send naming attachments for good", func(t *testing.T) {
		off := startNode(t, backends[0].open(t))
		al := off.signup(t, "alice", "phone")[0]
		bo := off.signup(t, "bob", "phone")[0]
		c := off.conversation(t, al, "direct", bo.user)
		s := off.dial(t, al.token)
		s.expect(t, "synced")
		send(s, "o1", c, []string{id})
		s.expect(t, "error", "invalid_message")
		if st, body := off.call(t, "POST", "/v1/conversations/"+c+"/messages", al.token,
			map[string]any{"id": "o2", "ciphertext": []byte("x"), "attachments": []string{id}}); st != 400 || body["code"] != "invalid_message" {
			t.Fatalf("HTTP: %d %v", st, body)
		}
	})
	t.Run("a member forwards what it received", func(t *testing.T) {
		b := n.dial(t, bob.token)
		for f := b.read(t); f["type"] != "synced"; f = b.read(t) { // alice's message comes first
		}
		bobsGroup := n.conversation(t, bob, "group", eve.user)
		send(b, "f1", bobsGroup, []string{id})
		b.expect(t, "sent")
		if resp, _ := get(t, n, "/v1/attachments/"+id, eve.token, nil); resp.StatusCode != 200 {
			t.Fatalf("eve after the forward: %d", resp.StatusCode)
		}
	})
}

func pngImage(w, h int) []byte {
	m := image.NewGray(image.Rect(0, 0, w, h))
	var b bytes.Buffer
	png.Encode(&b, m)
	return b.Bytes()
}

// sentAttachment uploads an attachment as d and sends it in conv.
func sentAttachment(t *testing.T, n *node, d device, conv string) string {
	t.Helper()
	st, _, body := upload(t, n, "/v1/attachments", d.token, "", []byte("sealed attachment"))
	if st != 201 {
		t.Fatalf("upload attachment: %d %v", st, body)
	}
	id := body["attachment_id"].(string)
	if st, body := n.call(t, "POST", "/v1/conversations/"+conv+"/messages", d.token,
		map[string]any{"id": "att-" + id, "ciphertext": []byte("x"), "attachments": []string{id}}); st != 201 {
		t.Fatalf("send attachment: %d %v", st, body)
	}
	return id
}
