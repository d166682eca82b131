package chat

import (
	"crypto/ed25519"
	_ "embed" // the common-password list
	"errors"
	"strings"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/e2e"
	"github.com/switchboard-chat/switchboard/wire"
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
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidUsername, "username must be 1 to %d bytes", maxUsername)
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return sb.Errorf(sb.EINVALID, wire.CodeInvalidUsername, "username may hold only letters, digits, '_', '.' and '-'")
		}
	}
	return nil
}

// foldUsername is the form usernames are compared in: Unicode simple case
// folding, which for the ASCII letters a username may hold is lower case
// (the stores compare lower(username)).
func foldUsername(name string) string { return strings.ToLower(name) }

func validPassword(pw string) error {
	if len(pw) < minPassword || len(pw) > maxPassword {
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidPassword, "password must be %d to %d bytes", minPassword, maxPassword)
	}
	if commonPasswords[strings.ToLower(pw)] {
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidPassword, "this password is on a list of the most common passwords, which are guessed first: choose another")
	}
	return nil
}

// commonPasswordList is Openwall's password.lst (shipped by Debian's
// john-data 1.9.0 as /usr/share/john/password.lst, copied unchanged): 3,546
// passwords most commonly seen on Unix systems and in website leaks up to
// 2010, in the public domain. About 600 of them are long enough to get past
// minPassword; those are refused at signup, compared without regard to case.
//
//go:embed common-passwords.txt
var commonPasswordList string

var commonPasswords = func() map[string]bool {
	m := make(map[string]bool)
	for _, line := range strings.Split(commonPasswordList, "\n") {
		if len(line) >= minPassword && !strings.HasPrefix(line, "#!comment:") {
			m[strings.ToLower(line)] = true
		}
	}
	return m
}()

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
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidDevice, "device name must be 1 to %d bytes", maxDeviceName)
	}
	if err := e2e.ParsePublicKey(d.KEM, d.PublicKey); errors.Is(err, e2e.ErrUnknownKEM) {
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidDevice, "unknown kem %q: use %s or %s", d.KEM, e2e.KEMX25519, e2e.KEMMLKEM768X25519)
	} else if err != nil {
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidDevice, "public_key is not a valid %s public key", d.KEM)
	}
	if err := e2e.ParseSigningKey(d.SigningKey); err != nil {
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidDevice, "signing_key must be a %d-byte Ed25519 public key", ed25519.PublicKeySize)
	}
	return nil
}
