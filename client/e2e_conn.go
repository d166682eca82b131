package client

// devicesChangedBuffer is the capacity of the DevicesChanged channel.
const devicesChangedBuffer = 64

// DevicesChanged yields the user id of each devices_changed frame: that
// user (this device's own user included) added or revoked a device, so
// cached device lists of that user are stale. [Secure] reads it; read it
// yourself only if you seal without Secure.
//
// The Conn's reader never waits for the application, so the channel holds
// at most 64 values. When only one place is left, the Conn puts the empty
// string there instead of a user id, and drops what comes after until
// there is room again: an empty string means "changes were lost, refresh
// every cached device list" (every change it stands for arrived before it
// was read). The frames are a hint, not a promise: a device that was
// offline learns of changes only from devices_mismatch. The channel is
// closed when the Conn ends.
func (c *Conn) DevicesChanged() <-chan string { return c.devices }

// devicesChanged hands a devices_changed frame to the application without
// blocking. It runs on the reader goroutine, the channel's only sender, so
// the length it sees can only shrink before the send.
func (c *Conn) devicesChanged(userID string) {
	switch n := len(c.devices); {
	case userID == "":
		c.log.Warn("switchboard: devices_changed without user_id")
	case n < cap(c.devices)-1:
		c.devices <- userID
	case n == cap(c.devices)-1:
		c.devices <- "" // the last place: everything from here on is lost
		c.log.Warn("switchboard: DevicesChanged is full; dropping device changes until it is read")
	}
}
