package main

import (
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard-chat/switchboard/client"
)

// rtcSignal is the payload of a signal frame between the two peers.
type rtcSignal struct {
	SDP       *webrtc.SessionDescription `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit   `json:"candidate,omitempty"`
}

// rtcPeer is one side of the call: a pion PeerConnection whose offer,
// answer and ICE candidates travel as switchboard signal frames only.
type rtcPeer struct {
	t    *testing.T
	p    *phone
	pc   *webrtc.PeerConnection
	call client.Call
	to   string // the other party's device

	mu      sync.Mutex
	remote  bool                      // the remote description is set
	waiting []webrtc.ICECandidateInit // candidates that came before it
	got     chan string               // data channel messages
}

// newRTCPeer makes a PeerConnection restricted to loopback host
// candidates: no STUN or TURN server, no mDNS, UDP over 127.0.0.1 only.
func newRTCPeer(t *testing.T, p *phone) *rtcPeer {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	r := &rtcPeer{t: t, p: p, pc: pc, got: make(chan string, 4)}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return // gathering is done
		}
		init := c.ToJSON()
		r.signal(rtcSignal{Candidate: &init})
	})
	return r
}

func (r *rtcPeer) signal(s rtcSignal) {
	b, _ := json.Marshal(s)
	if err := r.p.conn.Signal(context.Background(), r.call, r.to, b); err != nil {
		r.t.Errorf("signal: %v", err)
	}
}

// onSignal applies a signal from the other peer; an offer is answered.
func (r *rtcPeer) onSignal(payload json.RawMessage) error {
	var s rtcSignal
	if err := json.Unmarshal(payload, &s); err != nil {
		return err
	}
	if s.Candidate != nil {
		r.mu.Lock()
		if !r.remote {
			r.waiting = append(r.waiting, *s.Candidate)
			r.mu.Unlock()
			return nil
		}
		r.mu.Unlock()
		return r.pc.AddICECandidate(*s.Candidate)
	}
	if s.SDP == nil {
		return nil
	}
	if err := r.pc.SetRemoteDescription(*s.SDP); err != nil {
		return err
	}
	if s.SDP.Type == webrtc.SDPTypeOffer {
		answer, err := r.pc.CreateAnswer(nil)
		if err != nil {
			return err
		}
		if err := r.pc.SetLocalDescription(answer); err != nil {
			return err
		}
		r.signal(rtcSignal{SDP: r.pc.LocalDescription()})
	}
	r.mu.Lock()
	r.remote = true
	waiting := r.waiting
	r.waiting = nil
	r.mu.Unlock()
	for _, c := range waiting {
		if err := r.pc.AddICECandidate(c); err != nil {
			return err
		}
	}
	return nil
}

// listen applies the signals the phone receives until the call ends.
func (r *rtcPeer) listen(ctx context.Context) {
	for {
		select {
		case e := <-r.p.conn.CallEvents():
			switch e.Action {
			case client.CallSignal:
				if err := r.onSignal(e.Payload); err != nil {
					r.t.Errorf("%s: signal: %v", r.p.s.DeviceID, err)
				}
			case client.CallEnd:
				return
			default:
				r.t.Errorf("%s: unexpected call event %+v (%v)", r.p.s.DeviceID, e, e.Err)
			}
		case <-ctx.Done():
			return
		}
	}
}

// TestWebRTCDataChannelThroughSwitchboard: two pion/webrtc peers, on two
// nodes behind NGINX that share Redis, negotiate through switchboard only
// (invite and accept, then offer, answer and ICE candidates as signal
// frames) and exchange messages over a data channel on loopback.
func TestWebRTCDataChannelThroughSwitchboard(t *testing.T) {
	cc := newCallCluster(t, 30*time.Second, 10*time.Second)
	ctx := cc.ctx
	alice, bob := cc.user("alice"), cc.user("bob")
	ap := cc.connect(alice)
	bp := cc.connect(bob, 1-ap.node)
	dm, err := ap.s.CreateConversation(ctx, "direct", []string{bob.id}, "")
	if err != nil {
		t.Fatal(err)
	}

	call, err := ap.conn.Invite(ctx, dm, nil)
	if err != nil {
		t.Fatal(err)
	}
	ring := bp.expect(client.CallInvite, ap.s.DeviceID)
	if err := bp.conn.Accept(ctx, ring.Call, nil); err != nil {
		t.Fatal(err)
	}
	ap.expect(client.CallAccept, bp.s.DeviceID)

	a, b := newRTCPeer(t, ap), newRTCPeer(t, bp)
	a.call, a.to = call, bp.s.DeviceID
	b.call, b.to = ring.Call, ap.s.DeviceID
	b.pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			b.got <- string(m.Data)
			if err := dc.SendText("hello alice, from bob"); err != nil {
				t.Errorf("bob's send: %v", err)
			}
		})
	})
	dc, err := a.pc.CreateDataChannel("chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	dc.OnOpen(func() {
		if err := dc.SendText("hello bob, from alice"); err != nil {
			t.Errorf("alice's send: %v", err)
		}
	})
	dc.OnMessage(func(m webrtc.DataChannelMessage) { a.got <- string(m.Data) })

	listenCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.listen(listenCtx) })
	wg.Go(func() { b.listen(listenCtx) })
	defer func() { stop(); wg.Wait() }()

	offer, err := a.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	a.signal(rtcSignal{SDP: a.pc.LocalDescription()})

	for _, want := range []struct {
		peer *rtcPeer
		text string
	}{{b, "hello bob, from alice"}, {a, "hello alice, from bob"}} {
		select {
		case got := <-want.peer.got:
			if got != want.text {
				t.Fatalf("%s got %q, want %q", want.peer.p.s.DeviceID, got, want.text)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("%s got nothing over the data channel within 60 s (ICE %s / %s)",
				want.peer.p.s.DeviceID, a.pc.ICEConnectionState(), b.pc.ICEConnectionState())
		}
	}
	if err := ap.conn.EndCall(ctx, call, nil); err != nil {
		t.Fatal(err)
	}
}
