package chat

import (
	"crypto/ed25519"
	"errors"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/e2e"
)

const (
	maxUsername   = 32
	minPassword   = 8
	maxPassword   = 1024
	maxDeviceName = 64
	maxTitle      = 256
	maxClientID   = 64
)

func validUsername(name string) error {
	if name == "" || len(name) > maxUsername {
		return sb.Errorf(sb.EINVALID, "invalid_username", "username must be 1 to %d bytes", maxUsername)
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return sb.Errorf(sb.EINVALID, "invalid_username", "username may hold only letters, digits, '_', '.' and '-'")
		}
	}
	return nil
}

func validPassword(pw string) error {
	if len(pw) < minPassword || len(pw) > maxPassword {
		return sb.Errorf(sb.EINVALID, "invalid_password", "password must be %d to %d bytes", minPassword, maxPassword)
	}
	return nil
}

// DeviceInfo is what a login registers for its new device.
type DeviceInfo struct {
	Name       string
	KEM        string
	PublicKey  []byte
	SigningKey []byte
}

// Validate checks the name and that both keys parse for their algorithms.
func (d *DeviceInfo) Validate() error {
	if d.Name == "" || len(d.Name) > maxDeviceName {
		return sb.Errorf(sb.EINVALID, "invalid_device", "device name must be 1 to %d bytes", maxDeviceName)
	}
	if err := e2e.ParsePublicKey(d.KEM, d.PublicKey); errors.Is(err, e2e.ErrUnknownKEM) {
		return sb.Errorf(sb.EINVALID, "invalid_device", "unknown kem %q: use %s or %s", d.KEM, e2e.KEMX25519, e2e.KEMMLKEM768X25519)
	} else if err != nil {
		return sb.Errorf(sb.EINVALID, "invalid_device", "public_key is not a valid %s public key", d.KEM)
	}
	if err := e2e.ParseSigningKey(d.SigningKey); err != nil {
		return sb.Errorf(sb.EINVALID, "invalid_device", "signing_key must be a %d-byte Ed25519 public key", ed25519.PublicKeySize)
	}
	return nil
}
