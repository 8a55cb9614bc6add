package authserver

import (
	"crypto/rand"
	"encoding/hex"
)

// newID returns prefix + 128 random bits in hex: for identifiers (grants,
// users) that must not be guessable but are not secrets.
func newID(prefix string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + hex.EncodeToString(b[:]), nil
}
