package server

import (
	"context"
	"encoding/json"
	"net/http"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/gateway"
	"github.com/switchboard-chat/switchboard/wire"
)

// Typing notices and read receipts on the node's side (issue 19): the
// frames a socket sends, the notices from the bus written to the local
// devices of the conversation's members, and the receipts endpoints. The
// rules (rates, timeouts, coalescing, the opt-out) are chat's.

// typing handles a typing frame.
func (s *Server) typing(ctx context.Context, c *gateway.Conn, p *peer, data []byte) {
	if s.cfg.NoTyping {
		return // shed: typing is best effort, a client needs no answer
	}
	var f wire.Typing
	if err := json.Unmarshal(data, &f); err != nil || f.Conversation == "" {
		s.writeError(c, "", sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "typing needs conversation and state"))
		return
	}
	if err := s.svc.Typing(ctx, p.id, f.Conversation, f.State); err != nil {
		s.writeError(c, "", err)
	}
}

// read handles a read frame.
func (s *Server) read(ctx context.Context, c *gateway.Conn, p *peer, data []byte) {
	var f struct {
		Conversation string `json:"conversation"`
		Seq          *int64 `json:"seq"`
	}
	if err := json.Unmarshal(data, &f); err != nil || f.Conversation == "" || f.Seq == nil {
		s.writeError(c, "", sb.Errorf(sb.EINVALID, wire.CodeBadFrame, "read needs conversation and seq"))
		return
	}
	if err := s.svc.Read(ctx, p.id, f.Conversation, *f.Seq); err != nil {
		s.writeError(c, "", err)
	}
}

// relayTyping writes a typing notice to the local devices of the
// conversation's other members.
func (s *Server) relayTyping(ev *chat.Typing, members []string) {
	if s.cfg.NoTyping {
		return
	}
	b, _ := json.Marshal(wire.Typing{Type: wire.TypeTyping, Conversation: ev.Conversation, UserID: ev.UserID, State: ev.State})
	for _, p := range s.hub.ofUsers(members) {
		if p.id.UserID != ev.UserID {
			p.conn.Write(b)
		}
	}
}

// relayReceipt writes a receipt to the local devices of the conversation's
// members but the one that moved it, with the read mark hidden from (and
// for) users who turned read receipts off; in a conversation of more than
// chat.ReceiptMaxMembers, to the user's own devices only.
func (s *Server) relayReceipt(r *chat.Receipt, members []string) {
	if len(members) > chat.ReceiptMaxMembers {
		members = []string{r.UserID} // a large group: the reader's own devices only
	}
	peers := s.hub.ofUsers(members)
	if len(peers) == 0 {
		return
	}
	users := make([]string, 0, len(peers))
	for _, p := range peers {
		users = append(users, p.id.UserID)
	}
	off, err := s.svc.ReceiptsOff(s.ctx, users)
	if err != nil {
		s.log.Warn("receipt not relayed: settings unreadable", "err", err)
		return
	}
	var full, hidden []byte
	for _, p := range peers {
		if p.id.DeviceID == r.DeviceID {
			continue
		}
		if p.id.UserID == r.UserID || !(r.Hidden || off[p.id.UserID]) {
			if full == nil {
				full, _ = json.Marshal(wire.Receipt{Type: wire.TypeReceipt, Conversation: r.Conversation, UserID: r.UserID, Delivered: r.Delivered, Read: r.Read})
			}
			p.conn.Write(full)
			continue
		}
		if r.Delivered == 0 {
			continue // only the hidden read moved
		}
		if hidden == nil {
			hidden, _ = json.Marshal(wire.Receipt{Type: wire.TypeReceipt, Conversation: r.Conversation, UserID: r.UserID, Delivered: r.Delivered})
		}
		p.conn.Write(hidden)
	}
}

// receipts is GET /v1/conversations/{conv}/receipts.
func (s *Server) receipts(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	rs, err := s.svc.Receipts(r.Context(), id, r.PathValue("conv"))
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	out := make([]wire.Receipt, len(rs))
	for i, rc := range rs {
		out[i] = wire.Receipt{UserID: rc.UserID, Delivered: rc.Delivered, Read: rc.Read}
	}
	writeJSON(w, http.StatusOK, map[string]any{"receipts": out})
}

// patchAccount is PATCH /v1/accounts/me: today only {"read_receipts": bool}.
func (s *Server) patchAccount(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	var req struct {
		ReadReceipts *bool `json:"read_receipts"`
	}
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	if req.ReadReceipts == nil {
		writeProblem(w, s.log, sb.Errorf(sb.EINVALID, wire.CodeBadRequest, "nothing to change: read_receipts is the setting an account has"))
		return
	}
	if err := s.svc.SetReadReceipts(r.Context(), id, *req.ReadReceipts); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"read_receipts": *req.ReadReceipts})
}
