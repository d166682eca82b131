package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/media"
	"github.com/switchboard-chat/switchboard/wire"
)

// The media routes (docs/protocol.md, "Media and attachments"). Images the
// server may see go through media.Pipeline and are served publicly at a
// content-addressed, immutable URL; end-to-end-encrypted attachments are
// stored as opaque bytes and served only to their owner and to members of
// a conversation they were sent in.

// immutable is the Cache-Control of a content-addressed image: its URL
// never changes meaning, so every cache may keep it for a year.
const immutable = "public, max-age=31536000, immutable"

// mediaRoutes are appended to routeTable.
func (s *Server) mediaRoutes() []route {
	return []route{
		{pattern: "POST /v1/media", access: authenticated, a: s.uploadMedia},
		{pattern: "GET /media/{name}", h: s.serveMedia},
		{pattern: "POST /v1/attachments", access: authenticated, a: s.uploadAttachment},
		{pattern: "GET /v1/attachments/{id}", access: authenticated, a: s.serveAttachment},
	}
}

func errMediaOff() error {
	return sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable, "media is not enabled on this node")
}

// uploadBody returns the upload's bytes: the body itself, or the file
// field of a multipart form. Either is read with the pipeline's limit and
// stops as soon as it passes.
func uploadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, sb.Errorf(sb.ETOOLARGE, wire.CodeTooLarge, "upload of %d bytes, over %d", r.ContentLength, max)
	}
	body := http.MaxBytesReader(w, r.Body, max+64<<10) // a form's own headers ride above max
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return media.ReadLimited(body, max)
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil, sb.Errorf(sb.EINVALID, wire.CodeBadRequest, "the multipart form has no file field")
		}
		if err != nil {
			if errors.As(err, new(*http.MaxBytesError)) {
				return nil, sb.Errorf(sb.ETOOLARGE, wire.CodeTooLarge, "upload over %d bytes", max)
			}
			return nil, sb.Errorf(sb.EINVALID, wire.CodeBadRequest, "bad multipart form: %v", err)
		}
		if part.FormName() == "file" {
			return media.ReadLimited(part, max)
		}
	}
}

func (s *Server) uploadMedia(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	p := s.cfg.Media
	if p == nil {
		writeProblem(w, s.log, errMediaOff())
		return
	}
	release, err := p.Admit()
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	defer release()
	b, err := uploadBody(w, r, p.Config().MaxBytes)
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	res, err := p.Process(r.Context(), b)
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	s.log.Debug("media stored", "user", id.UserID, "media", res.ID, "bytes", res.Bytes, "original", res.OriginalBytes)
	writeJSON(w, http.StatusCreated, map[string]any{
		"media_id": res.ID, "url": s.cfg.MediaURL + "/media/" + res.Name,
		"thumbnail_url": s.cfg.MediaURL + "/media/" + res.ThumbName,
		"width":         res.Width, "height": res.Height, "bytes": res.Bytes, "original_bytes": res.OriginalBytes,
	})
}

// serveMedia serves a stored image: immutable, a strong ETag (its hash),
// 304 and Range through http.ServeContent. A name that is not a hash.webp
// (a traversal attempt, an attachment's .bin) is a plain 404.
func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	hash, ok := strings.CutSuffix(name, ".webp")
	if s.cfg.Media == nil || !ok || len(hash) != 64 || !media.ValidName(name) {
		writeProblem(w, s.log, sb.Errorf(sb.ENOTFOUND, wire.CodeNotFound, "no such media"))
		return
	}
	s.serveBlob(w, r, s.cfg.Media.Blobs(), name, `"`+hash+`"`, "image/webp", immutable)
}

// serveBlob answers GET/HEAD for an immutable blob. ServeContent handles
// If-None-Match (304), Range (206/416) and HEAD; the ETag is strong, since
// the bytes behind a name never change.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, blobs media.Blobs, name, etag, ctype, cache string) {
	f, err := blobs.Open(r.Context(), name)
	if errors.Is(err, fs.ErrNotExist) {
		writeProblem(w, s.log, sb.Errorf(sb.ENOTFOUND, wire.CodeNotFound, "no such media"))
		return
	}
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("ETag", etag)
	h.Set("Cache-Control", cache)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", f.ModTime(), f)
}

func (s *Server) uploadAttachment(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	p, att := s.cfg.Media, s.cfg.Attachments
	if p == nil || att == nil {
		writeProblem(w, s.log, errMediaOff())
		return
	}
	b, err := uploadBody(w, r, p.Config().MaxBytes)
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	if len(b) == 0 {
		writeProblem(w, s.log, sb.Errorf(sb.EINVALID, wire.CodeBadRequest, "the attachment is empty"))
		return
	}
	a, err := att.Create(r.Context(), id.UserID, b)
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"attachment_id": a.ID, "url": "/v1/attachments/" + a.ID, "bytes": a.Bytes})
}

// serveAttachment serves an attachment's ciphertext to its owner and to a
// current member of a conversation it was sent in; to anyone else it does
// not exist (404, as for an unknown id, so ids cannot be probed).
func (s *Server) serveAttachment(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	att := s.cfg.Attachments
	notFound := sb.Errorf(sb.ENOTFOUND, wire.CodeNotFound, "no such attachment")
	if att == nil {
		writeProblem(w, s.log, notFound)
		return
	}
	a, err := att.Get(r.PathValue("id"))
	if err != nil {
		if errors.Is(err, media.ErrNoAttachment) {
			err = notFound
		}
		writeProblem(w, s.log, err)
		return
	}
	ok, err := s.mayRead(r.Context(), id, a)
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	if !ok {
		writeProblem(w, s.log, notFound)
		return
	}
	// private: a shared cache must never hand it to someone the rule refuses.
	s.serveBlob(w, r, att.Blobs, a.BlobName(), `"`+a.ID+`"`, "application/octet-stream", "private, max-age=31536000, immutable")
}

// mayRead is the attachment access rule (docs/security.md).
func (s *Server) mayRead(ctx context.Context, id chat.Identity, a *media.Attachment) (bool, error) {
	if a.Owner == id.UserID {
		return true, nil
	}
	if len(a.Conversations) == 0 {
		return false, nil
	}
	heads, err := s.svc.Heads(ctx, id) // the conversations id is a member of now
	if err != nil {
		return false, err
	}
	for _, c := range a.Conversations {
		if _, ok := heads[c]; ok {
			return true, nil
		}
	}
	return false, nil
}

// grantAttachments is called before a send that names attachments is
// handed to the send path: each must be readable by the sender (its own,
// or one it received and forwards), and the sender must be a member of
// the conversation. The grant comes first so that no recipient can see
// the message before the attachment is readable; a send that then fails
// leaves a grant to a conversation the sender belongs to, which the
// sender could have made anyway.
func (s *Server) grantAttachments(ctx context.Context, id chat.Identity, conv string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	att := s.cfg.Attachments
	if att == nil {
		// Permanent, unlike a 503: no attachment can exist on this node,
		// and a client that retries "unavailable" would retry forever.
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidMessage, "this node keeps no attachments (media is off)")
	}
	if len(ids) > 32 {
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidMessage, "at most 32 attachments per message, not %d", len(ids))
	}
	heads, err := s.svc.Heads(ctx, id)
	if err != nil {
		return err
	}
	if _, ok := heads[conv]; !ok {
		return nil // the send path refuses it with its own answer
	}
	for _, aid := range ids {
		a, err := att.Get(aid)
		if errors.Is(err, media.ErrNoAttachment) {
			return sb.Errorf(sb.EINVALID, wire.CodeInvalidMessage, "no such attachment: %q", aid)
		}
		if err != nil {
			return err
		}
		if ok, err := s.mayRead(ctx, id, a); err != nil || !ok {
			if err == nil {
				err = sb.Errorf(sb.EINVALID, wire.CodeInvalidMessage, "no such attachment: %q", aid)
			}
			return err
		}
		if err := att.Grant(aid, conv); err != nil {
			return fmt.Errorf("grant attachment: %w", err)
		}
	}
	return nil
}

// mediaMaxBytes is the largest upload, which the gateway must buffer whole
// (nbio reads a request before its handler runs): with media on, every
// request may be that large before its route's own limit refuses it.
func mediaMaxBytes(p *media.Pipeline) int64 {
	if p == nil {
		return 0
	}
	return p.Config().MaxBytes + 64<<10
}
