package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Image uploads mixed into a run (--media-dir, --upload-rate): during the
// steady phase the coordinator posts real photos to POST /v1/media at a
// fixed rate, open loop, as devices of the run, while the scenario's chat
// traffic goes on. The summary then has the uploads' rate and latency, and
// the scenario's chat latency is the chat latency while uploads run (run
// once without the flags for the baseline).

// maxUploadFiles bounds what a run loads from --media-dir (memory).
const maxUploadFiles = 64

// UploadSummary is the upload part of the summary.
type UploadSummary struct {
	Files        int     `json:"files"`
	AvgFileBytes int64   `json:"avg_file_bytes"`
	RateTarget   float64 `json:"rate_target_per_second"`
	MaxInFlight  int     `json:"max_in_flight"`
	Attempted    int64   `json:"attempted"`
	OK           int64   `json:"ok"`
	// Busy are 503 answers (the node's image pool and its queue were full:
	// the Retry-After refusal); SkippedFull are uploads not started because
	// MaxInFlight were already waiting for answers.
	Busy          int64   `json:"busy_503"`
	Errors        int64   `json:"errors"`
	SkippedFull   int64   `json:"skipped_in_flight_full"`
	PerSecond     float64 `json:"ok_per_second"`
	AvgOutBytes   int64   `json:"avg_webp_bytes"`
	Latency       Latency `json:"latency"` // request to 201, the uploads that succeeded
	ErrorSample   string  `json:"error_sample,omitempty"`
	SteadySeconds float64 `json:"seconds"`
}

// uploader posts photos at a rate until its context ends.
type uploader struct {
	target  string
	hc      *http.Client
	files   [][]byte
	tokens  []string
	rate    float64
	inFl    int
	lat     Histogram
	ok      atomic.Int64
	busy    atomic.Int64
	errs    atomic.Int64
	skipped atomic.Int64
	tried   atomic.Int64
	outB    atomic.Int64
	mu      sync.Mutex
	sample  string
}

// loadPhotos reads the JPEG, PNG and WebP files of dir (sorted, at most maxUploadFiles).
func loadPhotos(dir string) ([][]byte, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--media-dir: %w", err)
	}
	var files [][]byte
	for _, e := range ents {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || !slices.Contains([]string{".jpg", ".jpeg", ".png", ".webp"}, ext) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files = append(files, b)
		if len(files) == maxUploadFiles {
			break
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("--media-dir %s has no .jpg, .png or .webp file", dir)
	}
	return files, nil
}

func newUploader(cfg Config, devs []Device) (*uploader, error) {
	files, err := loadPhotos(cfg.MediaDir)
	if err != nil {
		return nil, err
	}
	u := &uploader{target: cfg.Target, files: files, rate: cfg.UploadRate, inFl: cfg.UploadConcurrency,
		hc: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.UploadConcurrency}}}
	for _, d := range devs {
		u.tokens = append(u.tokens, d.Token)
	}
	if len(u.tokens) == 0 {
		return nil, fmt.Errorf("uploads: no logged-in device")
	}
	return u, nil
}

// run uploads at u.rate until ctx ends, then waits for the uploads in flight.
func (u *uploader) run(ctx context.Context) {
	slots := make(chan struct{}, u.inFl)
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for next := 0; ; {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for due := int(now.Sub(start).Seconds() * u.rate); next < due; next++ {
				select {
				case slots <- struct{}{}:
				default:
					u.skipped.Add(1)
					continue
				}
				wg.Add(1)
				go func(i int) {
					defer func() { <-slots; wg.Done() }()
					u.one(u.files[i%len(u.files)], u.tokens[i%len(u.tokens)])
				}(next)
			}
		}
	}
}

// one posts one photo. It is not tied to the run's context: an upload
// started in the steady phase is answered, so none is cut off and miscounted.
func (u *uploader) one(photo []byte, token string) {
	u.tried.Add(1)
	req, err := http.NewRequest(http.MethodPost, u.target+"/v1/media", bytes.NewReader(photo))
	if err != nil {
		u.fail(err.Error())
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	// The same photo gives the same media id: the upload is idempotent, and
	// the header lets net/http send it again when the node closed a
	// kept-alive connection just as it was reused.
	req.Header.Set("Idempotency-Key", fmt.Sprintf("%p-%d", photo, time.Now().UnixNano()))
	t0 := time.Now()
	resp, err := u.hc.Do(req)
	if err != nil {
		u.fail(err.Error())
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusCreated:
		u.lat.Record(time.Since(t0))
		u.ok.Add(1)
		var r struct {
			Bytes int64 `json:"bytes"`
		}
		if json.Unmarshal(body, &r) == nil {
			u.outB.Add(r.Bytes)
		}
	case http.StatusServiceUnavailable:
		u.busy.Add(1)
	default:
		u.fail(fmt.Sprintf("%d %s", resp.StatusCode, body))
	}
}

func (u *uploader) fail(msg string) {
	u.errs.Add(1)
	u.mu.Lock()
	if u.sample == "" {
		u.sample = msg
	}
	u.mu.Unlock()
}

func (u *uploader) summary(steady time.Duration) *UploadSummary {
	var total int64
	for _, f := range u.files {
		total += int64(len(f))
	}
	s := &UploadSummary{Files: len(u.files), AvgFileBytes: total / int64(len(u.files)), RateTarget: u.rate, MaxInFlight: u.inFl,
		Attempted: u.tried.Load(), OK: u.ok.Load(), Busy: u.busy.Load(), Errors: u.errs.Load(), SkippedFull: u.skipped.Load(),
		Latency: u.lat.Data().Latency(), ErrorSample: u.sample, SteadySeconds: secs(steady)}
	if s.OK > 0 {
		s.AvgOutBytes = u.outB.Load() / s.OK
	}
	if steady > 0 {
		s.PerSecond = round3(float64(s.OK) / steady.Seconds())
	}
	return s
}
