// Package client is the Go SDK for a switchboard server: HTTP calls for
// accounts, sessions, devices, conversations and history, and one WebSocket
// per device for live messages. It speaks docs/protocol.md and nothing else.
// The transport ([Session], [Conn]) carries ciphertexts only; [Secure]
// seals and opens them end to end (see below and docs/crypto.md).
//
// # Calls
//
// A [Client] holds the base URL and an *http.Client. [Client.CreateAccount]
// and [Client.Login] need no token; Login returns a [*Session] whose methods
// (Devices, RevokeDevice, CreateConversation, Conversations and
// ConversationsPage, Messages and MessagesPage, SendHTTP, Block, Unblock,
// and a group's AddMembers, RemoveMember, Leave and SetRole) send its
// bearer token. A membership change is an [Event] in the conversation: it
// arrives on [Conn.Messages] and in history as a [Message] with Event set,
// in seq order with the messages. A saved session is bound again with
// [Client.Resume]. Every refusal from the server is an [*Error] carrying
// the HTTP status and the machine code of the problem document; use
// errors.As.
//
// # Connections and the delivery guarantees
//
// [Connect] opens a [*Conn]. The protocol delivers at least once: the
// server replays on every connection whatever the device has not acked, and
// a message may therefore arrive again after a reconnect. On top of that the
// SDK gives, for the life of one Conn:
//
//   - Exactly once, in order, per conversation. The Conn remembers the
//     highest seq it handed to the application in each conversation and
//     drops anything at or below it, so Messages yields every message once
//     and with increasing seq per conversation. Nothing is promised about
//     the order between conversations. A device never receives its own sends,
//     so seqs may skip. To carry this across process restarts, pass what the
//     application already holds in [ConnOptions].Delivered.
//   - Automatic reconnect. When the socket drops for any reason except
//     [Conn.Close], close code 4001 (device revoked), 4002 (replaced), 4003
//     (session expired) or 1008 (policy), or an upgrade refused with a 4xx
//     status such as 401 (but not 408 or 429), the Conn dials again
//     with exponential backoff and jitter ([ConnOptions].MinBackoff to
//     MaxBackoff), and the replay fills the gap. Otherwise the Conn ends:
//     [Conn.Done] is closed, [Conn.Err] says why (a [*CloseError] with the
//     code and reason, an [*Error] for a refused upgrade, or [ErrClosed]),
//     and the Messages and Synced channels are closed.
//   - Sends survive reconnects. [Conn.Send] waits for the server's answer
//     with the same id: a sent frame (the message is committed) or an error
//     frame (an [*Error] with Status 0; nothing was stored). If the socket
//     drops first, the frame is written again on the next socket with the
//     same id, which the server stores at most once. Send frames go out in
//     the order the Sends were called, on one socket and when written
//     again after a reconnect, so sends pipelined into one conversation get
//     their seqs in that order. If ctx ends first the
//     message may or may not be stored; sending again with the same
//     [SendRequest].ID finds out without storing it twice. The one exception
//     is close code 1009 (a frame over the server's limit): the sends
//     written on that socket and not answered fail with that [*CloseError]
//     instead of being written again forever.
//   - Acks are the application's promise, not the SDK's. The server moves
//     its cursor only on [Conn.Ack] (or with [ConnOptions].AutoAck, which
//     acks each message as soon as it is in the Messages channel). Ack when
//     a message is stored safely and it will not come back on the next
//     connection; the highest ack per conversation is sent again after each
//     reconnect, so an ack lost with a socket is not lost for good. Acks are
//     coalesced: acking every message is fine, the Conn writes at most one
//     ack frame per conversation every [ConnOptions].AckInterval (200ms by
//     default) with the highest seq, and [Conn.Close] writes what is still
//     waiting. An ack may therefore reach the server up to AckInterval late;
//     a message acked but not yet sent when the process dies comes back on
//     the next connection, as any unacked message does.
//   - Bounded memory, never a stuck reader. The Conn's single reader
//     goroutine never blocks on the application: message frames go into a
//     buffered channel ([ConnOptions].Buffer). If it is full, the Conn stops
//     taking messages (answers to Send still flow), waits until the
//     application has drained half of it, then reconnects so the server
//     replays what was skipped. A slow application therefore delays messages
//     but does not lose, reorder or duplicate them, and may call Send from
//     the goroutine that reads Messages.
//
// [Conn.Synced] receives a value each time the server has finished replaying
// the backlog of a connection (once after Connect and once after each
// reconnect): every backlog message is then in the Messages channel, though
// maybe not yet read from it.
//
// # End-to-end encryption
//
// A device's secret keys are an [e2e.Identity]: generate one once, save it,
// and register it with [Client.LoginIdentity]. [NewSecure] wraps the
// Session, the Conn and the Identity. [Secure.Send] fetches the members of
// the conversation and their device lists (cached), seals one
// [e2e.Seal] envelope per recipient device (every active device of every
// member except this one) and sends them; on devices_mismatch it refreshes
// what is stale and retries once with the same id. [Secure.Receive] opens
// what the Conn delivers after checking the sender device's signature
// against the device directory; a message that does not open is a
// [*DecryptError], not the end of the Conn. The Conn's
// [Conn.DevicesChanged] frames drop the cached device lists of the user
// concerned. [Secure.Open] opens history from [Session.Messages].
//
// # Attachments
//
// [Session.UploadAttachment] shrinks a JPEG or PNG to fit 2048 px on this
// device (upright, metadata gone, pure Go), encrypts it with a fresh
// AES-256-GCM key and uploads the ciphertext; [Secure.SendContent] sends a
// [Content] whose [Attachment] values (id, key, digest) are sealed with the
// text, and names the ids in the send so the members may download them.
// A recipient reads them with [ParseContent] and [Session.DownloadAttachment].
// docs/crypto.md says what the server sees.
//
// Everything here is safe for concurrent use. A Conn runs one reader
// goroutine, plus one small keepalive goroutine per socket; both are gone
// when Close returns.
package client
