package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/switchboard-chat/switchboard/client"
)

// ExampleConn_Invite calls the other member of a direct conversation and
// relays WebRTC signalling until the call ends. The offer, answer and ICE
// candidates are the app's WebRTC stack's (e.g. github.com/pion/webrtc);
// switchboard carries them as opaque payloads to the other party's device.
func ExampleConn_Invite() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, bob := exampleUser(url, "alice"), exampleUser(url, "bob")
	cnv, _ := alice.CreateConversation(ctx, client.KindDirect, []string{bob.UserID}, "")
	conn, bobConn := exampleConn(alice), exampleConn(bob)
	defer conn.Close()
	defer bobConn.Close()
	go func() { // bob's phone: he answers, and hangs up once he has the offer
		for e := range bobConn.CallEvents() {
			switch e.Action {
			case client.CallInvite:
				bobConn.Accept(ctx, e.Call, nil)
			case client.CallSignal:
				bobConn.Signal(ctx, e.Call, e.FromDeviceID, json.RawMessage(`{"sdp":"answer"}`))
				bobConn.EndCall(ctx, e.Call, nil)
			}
		}
	}()

	call, err := conn.Invite(ctx, cnv, json.RawMessage(`{"video":true}`))
	if err != nil {
		log.Fatal(err)
	}
	for e := range conn.CallEvents() {
		if e.ID != call.ID {
			continue // another call: ring, or decline with conn.Decline
		}
		switch e.Action {
		case client.CallAccept:
			fmt.Println("accepted by bob:", e.FromUserID == bob.UserID)
			// Send the offer to the device that answered.
			if err := conn.Signal(ctx, call, e.FromDeviceID, json.RawMessage(`{"sdp":"offer"}`)); err != nil {
				log.Fatal(err)
			}
		case client.CallSignal:
			fmt.Printf("signal: %s\n", e.Payload) // an answer or ICE candidate for the WebRTC stack
		case client.CallDeclined, client.CallMissed, client.CallEnd:
			fmt.Println("call over:", e.Action)
			return
		case client.CallError:
			fmt.Println("refused:", e.Err.Code)
			return
		}
	}
	// Output:
	// accepted by bob: true
	// signal: {"sdp":"answer"}
	// call over: end
}

// ExampleConn_Accept answers a call that rings this device and answers the
// caller's offer, until the caller hangs up.
func ExampleConn_Accept() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, bob := exampleUser(url, "alice"), exampleUser(url, "bob")
	cnv, _ := alice.CreateConversation(ctx, client.KindDirect, []string{bob.UserID}, "")
	aliceConn, conn := exampleConn(alice), exampleConn(bob)
	defer aliceConn.Close()
	defer conn.Close()
	go func() { // alice calls, sends her offer, and hangs up once she has the answer
		call, _ := aliceConn.Invite(ctx, cnv, nil)
		for e := range aliceConn.CallEvents() {
			switch e.Action {
			case client.CallAccept:
				aliceConn.Signal(ctx, call, e.FromDeviceID, json.RawMessage(`{"sdp":"offer"}`))
			case client.CallSignal:
				aliceConn.EndCall(ctx, call, nil)
			}
		}
	}()

	for e := range conn.CallEvents() {
		switch e.Action {
		case client.CallInvite:
			fmt.Println("ringing; alice calls:", e.FromUserID == alice.UserID)
			if err := conn.Accept(ctx, e.Call, nil); err != nil {
				log.Fatal(err)
			}
		case client.CallAnsweredElsewhere, client.CallMissed:
			fmt.Println("stop ringing:", e.Action) // another device answered, or nobody did
		case client.CallSignal:
			fmt.Printf("signal: %s\n", e.Payload)
			// Apply the offer, then answer it.
			if err := conn.Signal(ctx, e.Call, e.FromDeviceID, json.RawMessage(`{"sdp":"answer"}`)); err != nil {
				log.Fatal(err)
			}
		case client.CallEnd:
			fmt.Println("call over: the caller hung up")
			return
		}
	}
	// Output:
	// ringing; alice calls: true
	// signal: {"sdp":"offer"}
	// call over: the caller hung up
}
