package chat

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"

	sb "github.com/switchboard-chat/switchboard"
)

// KEMs maps the KEM names of the API to their HPKE KEM.
var KEMs = map[string]func() hpke.KEM{
	"x25519":         func() hpke.KEM { return hpke.DHKEM(ecdh.X25519()) },
	"mlkem768x25519": hpke.MLKEM768X25519,
}

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
	kem, ok := KEMs[d.KEM]
	if !ok {
		return sb.Errorf(sb.EINVALID, "invalid_device", "unknown kem %q: use x25519 or mlkem768x25519", d.KEM)
	}
	if _, err := kem().NewPublicKey(d.PublicKey); err != nil {
		return sb.Errorf(sb.EINVALID, "invalid_device", "public_key is not a valid %s public key", d.KEM)
	}
	if len(d.SigningKey) != ed25519.PublicKeySize {
		return sb.Errorf(sb.EINVALID, "invalid_device", "signing_key must be a %d-byte Ed25519 public key", ed25519.PublicKeySize)
	}
	return nil
}
