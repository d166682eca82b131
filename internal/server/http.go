package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/wire"
)

// access says who may call a route. TestAuthorizationMatrix (authz_test.go)
// checks every route of routeTable against the answers documented for it.
type access int

const (
	public        access = iota // anyone; a token, if any, is ignored
	authenticated               // a valid token of an active device (Authorization: Bearer)
	socket                      // the WebSocket upgrade: authenticates itself (header or ?token=)
	operator                    // the admin listener's routes (admin.go); no token: keep that address private
)

// route is one HTTP endpoint: h serves public, socket and operator routes, a authenticated ones.
type route struct {
	pattern string
	access  access
	h       http.HandlerFunc
	a       authedHandler
}

// routeTable is every HTTP endpoint of the node's API listener, in one
// place: the authorization matrix has a row per pattern and fails on a
// route without one.
func (s *Server) routeTable() []route {
	rs := []route{
		{pattern: "GET /healthz", h: s.healthz},
		{pattern: "GET /readyz", h: s.readyz},
		{pattern: "POST /v1/accounts", h: s.createAccount},
		{pattern: "POST /v1/sessions", h: s.createSession},
		{pattern: "GET /v1/users/{user}/devices", access: authenticated, a: s.listDevices},
		{pattern: "DELETE /v1/devices/{device}", access: authenticated, a: s.revokeDevice},
		{pattern: "POST /v1/conversations", access: authenticated, a: s.createConversation},
		{pattern: "GET /v1/conversations", access: authenticated, a: s.listConversations},
		{pattern: "GET /v1/conversations/{conv}/messages", access: authenticated, a: s.listMessages},
		{pattern: "POST /v1/conversations/{conv}/messages", access: authenticated, a: s.sendMessage},
		{pattern: "POST /v1/conversations/{conv}/members", access: authenticated, a: s.addMembers},
		{pattern: "DELETE /v1/conversations/{conv}/members/{user}", access: authenticated, a: s.removeMember},
		{pattern: "PATCH /v1/conversations/{conv}/members/{user}", access: authenticated, a: s.setRole},
		{pattern: "POST /v1/blocks/{user}", access: authenticated, a: s.block},
		{pattern: "DELETE /v1/blocks/{user}", access: authenticated, a: s.unblock},
		{pattern: "GET /v1/users/{user}/presence", access: authenticated, a: s.userPresence},
		{pattern: "GET /v1/conversations/{conv}/receipts", access: authenticated, a: s.receipts},
		{pattern: "PATCH /v1/accounts/me", access: authenticated, a: s.patchAccount},
		{pattern: "GET /v1/ws", access: socket, h: s.upgrade},
	}
	rs = append(rs, s.mediaRoutes()...) // media.go
	// /metrics and /debug/pprof are on the admin listener only (admin.go).
	return append(rs, route{pattern: "/", h: func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, s.log, sb.Errorf(sb.ENOTFOUND, wire.CodeNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	}})
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routeTable() {
		if rt.pattern == "/" {
			mux.HandleFunc(rt.pattern, methodNotAllowed(mux, s.log, rt.h))
			continue
		}
		if rt.access == authenticated {
			mux.HandleFunc(rt.pattern, s.authed(rt.a))
		} else {
			mux.HandleFunc(rt.pattern, rt.h)
		}
	}
	return mux
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.full() {
		writeProblem(w, s.log, errFull)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.svc.Ready(ctx); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	if err := s.limitAddress(r, chat.LimitSignupIP); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	id, err := s.svc.CreateAccount(r.Context(), req.Username, req.Password)
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"user_id": id})
}

type deviceJSON struct {
	DeviceID   string    `json:"device_id,omitempty"`
	Name       string    `json:"name"`
	KEM        string    `json:"kem"`
	PublicKey  []byte    `json:"public_key"`
	SigningKey []byte    `json:"signing_key"`
	CreatedAt  *jsonTime `json:"created_at,omitempty"`
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string      `json:"username"`
		Password string      `json:"password"`
		Device   *deviceJSON `json:"device"`
	}
	if err := s.limitAddress(r, chat.LimitLoginIP); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	d := req.Device
	if d == nil {
		writeProblem(w, s.log, sb.Errorf(sb.EINVALID, wire.CodeInvalidDevice,
			"device is required: a login registers a device (name, kem, public_key, signing_key)"))
		return
	}
	login, err := s.svc.Login(r.Context(), req.Username, req.Password,
		chat.DeviceInfo{Name: d.Name, KEM: d.KEM, PublicKey: d.PublicKey, SigningKey: d.SigningKey})
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"user_id": login.UserID, "device_id": login.DeviceID,
		"token": login.Token, "expires_at": jsonTime(login.ExpiresAt)})
}

// bearer returns the token of a request: the Authorization header, or
// (only where allowQuery, i.e. the WebSocket upgrade) the token query parameter.
func bearer(r *http.Request, allowQuery bool) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	if allowQuery {
		return r.URL.Query().Get("token")
	}
	return ""
}

type authedHandler func(w http.ResponseWriter, r *http.Request, id chat.Identity)

func (s *Server) authed(h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := s.svc.Authenticate(r.Context(), bearer(r, false))
		if err != nil {
			writeProblem(w, s.log, err)
			return
		}
		if err := s.chargeBody(r, id); err != nil {
			writeProblem(w, s.log, err)
			return
		}
		h(w, r, id)
	}
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request, _ chat.Identity) {
	devs, err := s.svc.DeviceDirectory(r.Context(), r.PathValue("user"))
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	out := make([]deviceJSON, len(devs))
	for i, d := range devs {
		at := jsonTime(d.CreatedAt)
		out[i] = deviceJSON{DeviceID: d.ID, Name: d.Name, KEM: d.KEM, PublicKey: d.PublicKey, SigningKey: d.SigningKey, CreatedAt: &at}
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

func (s *Server) revokeDevice(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	if err := s.svc.RevokeDevice(r.Context(), id, r.PathValue("device")); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) createConversation(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	if err := s.limitAddress(r, chat.LimitConvIP); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	// Before the body is decoded: a refused creation of a 1,000-member
	// group cost 1.4 ms of decoding when this came after (issue 18).
	if err := s.svc.Allow(r.Context(), chat.LimitConvDevice, id.DeviceID, 1); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	var req struct {
		Kind    string   `json:"kind"`
		Members []string `json:"members"`
		Title   string   `json:"title"`
	}
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	conv, err := s.svc.CreateConversation(r.Context(), id, req.Kind, req.Members, req.Title)
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"conversation_id": conv})
}

type conversationJSON struct {
	ID        string   `json:"conversation_id"`
	Kind      string   `json:"kind"`
	Title     string   `json:"title"`
	Members   []string `json:"members"`
	Admins    []string `json:"admins"`
	HeadSeq   int64    `json:"head_seq"`
	CreatedAt jsonTime `json:"created_at"`
}

// Pages of GET /v1/conversations: a user put into many groups gets them a
// page at a time, each read and written in bounded memory. A page ends at
// limit conversations or at the first that takes it past
// conversationsPageBytes of JSON, whichever comes first (groups list every
// member: 500 groups of 1,000 would be 16 MiB), and the store is read
// conversationsChunk at a time, so a page holds about a megabyte whatever
// the limit and the groups' sizes.
const (
	defaultConversationsPage = 100
	maxConversationsPage     = 500
	maxCursor                = 128 // bytes of an after cursor (a conversation id)
	conversationsChunk       = 50
)

var conversationsPageBytes = 1 << 20 // a variable for the tests

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	q := r.URL.Query()
	after := q.Get("after")
	limit, err := intParam(q.Get("limit"), defaultConversationsPage)
	if err != nil || limit < 1 || limit > maxConversationsPage || len(after) > maxCursor {
		writeProblem(w, s.log, sb.Errorf(sb.EINVALID, wire.CodeBadRequest,
			"limit must be 1 to %d and after a cursor from next", maxConversationsPage))
		return
	}
	buf := append(make([]byte, 0, 4096), `{"conversations":[`...)
	n, more := 0, true
	for more && n < int(limit) && len(buf) < conversationsPageBytes {
		want := min(int(limit)-n, conversationsChunk)
		convs, err := s.svc.Conversations(r.Context(), id, after, want)
		if err != nil {
			writeProblem(w, s.log, err)
			return
		}
		more = len(convs) == want // a short read is the end of the list
		for i, c := range convs {
			admins := c.Admins
			if admins == nil {
				admins = []string{}
			}
			b, err := json.Marshal(conversationJSON{c.ID, c.Kind, c.Title, c.Members, admins, c.HeadSeq, jsonTime(c.CreatedAt)})
			if err != nil {
				writeProblem(w, s.log, err)
				return
			}
			if n > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, b...)
			n++
			after = c.ID
			if len(buf) >= conversationsPageBytes && i < len(convs)-1 {
				more = true // the rest of this chunk goes on the next page
				break
			}
		}
	}
	buf = append(buf, ']')
	if more && n > 0 { // there may be more: the cursor continues after the last
		buf = append(buf, `,"next":`...)
		buf = append(buf, '"')
		buf = append(buf, after...) // an id: letters, digits and _
		buf = append(buf, '"')
	}
	buf = append(buf, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf)
}

// listMessages writes a history page as it reads it: the messages go out
// one by one (chat.Service.History reads the store a chunk at a time), so
// the node never holds a whole page.
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	q := r.URL.Query()
	after, err1 := intParam(q.Get("after"), 0)
	limit, err2 := intParam(q.Get("limit"), 100)
	if err1 != nil || err2 != nil || after < 0 || limit < 1 || limit > 1000 {
		writeProblem(w, s.log, sb.Errorf(sb.EINVALID, wire.CodeBadRequest, "after must be >= 0 and limit 1 to 1000"))
		return
	}
	started := false
	var buf []byte
	begin := func() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		buf = append(buf, `{"messages":[`...)
		started = true
	}
	next, err := s.svc.History(r.Context(), id, r.PathValue("conv"), after, int(limit),
		func(d *sb.Delivery) error {
			if !started {
				begin()
			} else {
				buf = append(buf, ',')
			}
			var b []byte
			var err error
			if d.Event != nil {
				b, err = json.Marshal(toEventJSON(d))
			} else {
				b, err = json.Marshal(toMessageJSON(d))
			}
			if err != nil {
				return err
			}
			buf = append(buf, b...)
			_, err = w.Write(buf)
			buf = buf[:0]
			return err
		})
	if err != nil {
		if !started {
			writeProblem(w, s.log, err)
			return
		}
		// The status is sent: the body is left unfinished, so the client's
		// decoding fails instead of taking a cut page for a whole one.
		s.log.Warn("history page failed midway", "conversation", r.PathValue("conv"), "err", err)
		return
	}
	if !started {
		begin()
	}
	buf = append(buf, ']')
	if next > 0 {
		buf = append(buf, `,"next_after":`...)
		buf = strconv.AppendInt(buf, next, 10)
	}
	buf = append(buf, "}\n"...)
	w.Write(buf)
}

func intParam(v string, def int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	var f wire.ClientFrame
	if err := decode(w, r, s.cfg.MaxBody, &f); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	conv := r.PathValue("conv")
	if f.Type != "" || f.Seq != nil || (f.Conversation != "" && f.Conversation != conv) {
		writeProblem(w, s.log, sb.Errorf(sb.EINVALID, wire.CodeBadRequest, "body must be a send frame without type for this conversation"))
		return
	}
	if err := s.grantAttachments(r.Context(), id, conv, f.Attachments); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	m, dup, err := s.svc.Send(r.Context(), id, &chat.SendRequest{ClientID: f.ID, ConversationID: conv,
		Ciphertexts: f.Ciphertexts, Ciphertext: f.Ciphertext, Plaintext: f.Plaintext})
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	status := http.StatusCreated
	if dup {
		status = http.StatusOK
	}
	writeJSON(w, status, wire.Sent{ID: f.ID, Conversation: conv, Seq: m.Seq, TS: jsonTime(m.SentAt)})
}

func (s *Server) block(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	if err := s.svc.Block(r.Context(), id, r.PathValue("user")); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) unblock(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	if err := s.svc.Unblock(r.Context(), id, r.PathValue("user")); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// methodNotAllowed wraps the catch-all route: a path that mux knows under
// other methods gets 405 with Allow; anything else goes to notFound.
func methodNotAllowed(mux *http.ServeMux, log *slog.Logger, notFound http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		allow := allowedMethods(mux, r)
		if allow == "" {
			notFound(w, r)
			return
		}
		w.Header().Set("Allow", allow)
		writeProblem(w, log, sb.Errorf(sb.EMETHOD, wire.CodeMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, allow))
	}
}

// probeMethods are the methods a path is tried with to build an Allow header.
var probeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowedMethods lists the methods for which mux has a route (other than
// the catch-all) matching r's path, comma-separated; "" when there is none.
func allowedMethods(mux *http.ServeMux, r *http.Request) string {
	var allow []string
	for _, m := range probeMethods {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}
