package client_test

import (
	"context"
	"encoding/json"
	"log"

	"github.com/switchboard-chat/switchboard/client"
)

// ExampleConn_Invite calls the other member of a direct conversation and
// relays WebRTC signalling until the call ends. The offer, answer and ICE
// candidates are the app's WebRTC stack's (e.g. github.com/pion/webrtc);
// switchboard carries them as opaque payloads to the other party's device.
func ExampleConn_Invite() {
	ctx := context.Background()
	c, err := client.New("http://localhost:8080")
	if err != nil {
		log.Fatal(err)
	}
	s := c.Resume(client.Session{UserID: "usr_alice", DeviceID: "dev_laptop", Token: "a saved token"})
	conn, err := client.Connect(ctx, s, client.ConnOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	call, err := conn.Invite(ctx, "cnv_direct_with_bob", json.RawMessage(`{"video":true}`))
	if err != nil {
		log.Fatal(err)
	}
	for e := range conn.CallEvents() {
		if e.ID != call.ID {
			continue // another call: ring, or decline with conn.Decline
		}
		switch e.Action {
		case client.CallAccept:
			// Bob's device e.FromDeviceID answered: send it the offer.
			offer := json.RawMessage(`{"sdp":{"type":"offer","sdp":"v=0…"}}`)
			if err := conn.Signal(ctx, call, e.FromDeviceID, offer); err != nil {
				log.Fatal(err)
			}
		case client.CallSignal:
			log.Printf("answer or ICE candidate for the WebRTC stack: %s", e.Payload)
		case client.CallDeclined, client.CallMissed, client.CallEnd:
			log.Printf("call over: %s", e.Action)
			return
		case client.CallError:
			log.Printf("refused: %v", e.Err)
			return
		}
	}
}

// ExampleConn_Accept answers the first call that rings this device.
func ExampleConn_Accept() {
	ctx := context.Background()
	c, _ := client.New("http://localhost:8080")
	s := c.Resume(client.Session{UserID: "usr_bob", DeviceID: "dev_phone", Token: "a saved token"})
	conn, err := client.Connect(ctx, s, client.ConnOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	for e := range conn.CallEvents() {
		switch e.Action {
		case client.CallInvite:
			if err := conn.Accept(ctx, e.Call, nil); err != nil {
				log.Fatal(err)
			}
		case client.CallAnsweredElsewhere:
			log.Print("answered on another device")
		case client.CallSignal:
			// Apply the offer, then answer it: conn.Signal(ctx, e.Call, e.FromDeviceID, answer).
		case client.CallEnd:
			if err := conn.EndCall(ctx, e.Call, nil); err != nil {
				log.Print(err)
			}
			return
		}
	}
}
