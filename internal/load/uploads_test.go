package load_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

// TestChatWithUploadsAgainstRealNode is the CI's tiny version of the mixed
// run of docs/benchmarks.md: chat traffic on 20 sockets while the
// coordinator posts photos to /v1/media. It asserts that uploads succeed
// (201) or are refused as busy (503), never fail otherwise, and that the
// chat loses nothing meanwhile; not timings.
func TestChatWithUploadsAgainstRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two binaries")
	}
	dir := t.TempDir()
	photos := filepath.Join(dir, "photos")
	if err := os.MkdirAll(photos, 0o755); err != nil {
		t.Fatal(err)
	}
	real, err := os.ReadFile("../media/testdata/seeding-orientation6-gps.jpg") // a real photo (CC0)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(photos, "a-real.jpg"), real, 0o644)
	os.WriteFile(filepath.Join(photos, "b-gradient.jpg"), gradientJPEG(t, 1200, 900), 0o644)
	os.WriteFile(filepath.Join(photos, "notes.txt"), []byte("not a photo"), 0o644)

	bins := buildCommands(t, dir, "switchboard", "sbload")
	url, metrics := startNode(t, bins["switchboard"], filepath.Join(dir, "data"), "--send-rate-conversation", "0")
	s, out := runSbload(t, bins["sbload"], filepath.Join(dir, "summary.json"), "run", "--target", url, "--metrics", metrics,
		"--scenario", "chat", "--conns", "20", "--devices-per-user", "2", "--dms", "1", "--small-group", "5",
		"--chat-rate", "20", "--payload", "200", "--ramp", "1s", "--hold", "3s", "--ack-interval", "300ms",
		"--media-dir", photos, "--upload-rate", "4", "--upload-concurrency", "2")
	u := s.Uploads
	if u == nil {
		t.Fatalf("no uploads summary\n%s", out)
	}
	if u.Files != 2 || u.OK == 0 || u.Errors != 0 || u.OK+u.Busy != u.Attempted || u.Latency.Count != u.OK {
		t.Errorf("uploads %+v: want 2 files, some ok, every one ok or busy", *u)
	}
	if u.AvgOutBytes <= 0 || u.AvgOutBytes >= u.AvgFileBytes {
		t.Errorf("uploads: %d bytes out for %d in", u.AvgOutBytes, u.AvgFileBytes)
	}
	if c := s.Chat; c == nil || !c.ZeroLoss || c.SentOK == 0 {
		t.Errorf("chat %+v: want traffic and zero loss while uploads run", c)
	}
	if s.ErrorsTotal != 0 {
		t.Errorf("errors %v (samples %v)", s.Errors, s.ErrorSample)
	}
	if t.Failed() {
		t.Logf("sbload output:\n%s", out)
	}
}

func gradientJPEG(t *testing.T, w, h int) []byte {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, color.RGBA{uint8(x / 5), uint8(y / 4), uint8((x + y) / 8), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
