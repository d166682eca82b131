package server

import (
	"net/http"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/wire"
)

// Membership changes of a group (chat/members.go): each answers the seq
// of its (last) event, which every member device then receives like a
// message.

func (s *Server) addMembers(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	var req wire.AddMembers
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	seq, err := s.svc.AddMembers(r.Context(), id, r.PathValue("conv"), req.UserIDs)
	s.membersChanged(w, seq, err)
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	seq, err := s.svc.RemoveMember(r.Context(), id, r.PathValue("conv"), r.PathValue("user"))
	s.membersChanged(w, seq, err)
}

func (s *Server) setRole(w http.ResponseWriter, r *http.Request, id chat.Identity) {
	var req wire.SetRole
	if err := decode(w, r, s.cfg.MaxBody, &req); err != nil {
		writeProblem(w, s.log, err)
		return
	}
	seq, err := s.svc.SetRole(r.Context(), id, r.PathValue("conv"), r.PathValue("user"), req.Role)
	s.membersChanged(w, seq, err)
}

func (s *Server) membersChanged(w http.ResponseWriter, seq int64, err error) {
	if err != nil {
		writeProblem(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.MembersChanged{Seq: seq})
}

// appendEvent appends the event frame of a delivered event: not the hot
// path (membership changes and missed calls are rare), but encoded by hand
// like a message, the stored event's JSON copied as is.
func appendEvent(b []byte, d *sb.Delivery) []byte {
	return wire.AppendEvent(b, d.ConversationID, d.Seq, d.SentAt, d.Event)
}

// toEventJSON is an event as the HTTP API lists it among messages.
func toEventJSON(d *sb.Delivery) wire.EventFrame {
	return wire.EventFrame{Conversation: d.ConversationID, Seq: d.Seq, TS: wire.Time(d.SentAt), Event: d.Event}
}
