package client

import (
	"context"
	"encoding/json"
	"errors"
)

// Content is a message with attachments as [Secure.SendContent] seals it:
// a small JSON document (with "v": 1) inside the end-to-end ciphertext, so
// the attachments' keys reach the recipients' devices and nothing else.
// Applications with their own message format may instead put the
// [Attachment] values in it and send with [SendRequest].Attachments.
type Content struct {
	Text        string       `json:"text,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
}

// contentDoc is Content on the wire, versioned.
type contentDoc struct {
	V int `json:"v"`
	Content
}

// ErrNotContent is ParseContent's error for a plaintext SendContent did not make.
var ErrNotContent = errors.New("client: the message is not a Content")

// SendContent seals c for every recipient device like [Secure.Send] and
// names its attachments in the send, which lets the conversation's members
// download them (each must be one this user uploaded or can read).
func (x *Secure) SendContent(ctx context.Context, conversation string, c Content) (Sent, error) {
	pt, err := json.Marshal(contentDoc{V: 1, Content: c})
	if err != nil {
		return Sent{}, err
	}
	ids := make([]string, len(c.Attachments))
	for i, a := range c.Attachments {
		ids[i] = a.ID
	}
	return x.send(ctx, conversation, "", pt, ids)
}

// ParseContent reads the plaintext of a message made by SendContent
// ([Received].Plaintext); anything else is ErrNotContent.
func ParseContent(plaintext []byte) (Content, error) {
	var d contentDoc
	if err := json.Unmarshal(plaintext, &d); err != nil || d.V != 1 {
		return Content{}, ErrNotContent
	}
	return d.Content, nil
}
