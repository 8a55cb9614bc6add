package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// This file is the one place oauthgate draws random values (signing keys
// aside, which crypto generates from rand.Reader itself).

// secretBytes is the randomness of every opaque secret: 256 bits.
// idBytes is that of identifiers: 128 bits.
const (
	secretBytes = 32
	idBytes     = 16
)

// NewSecret returns prefix followed by 256 random bits in base64url, for
// client secrets, refresh tokens, authorization codes and browser secrets
// (session CSRF keys).
func NewSecret(prefix string) (string, error) {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// NewID returns prefix followed by 128 random bits in hex, for identifiers
// (grants, users) that must not be guessable but are not secrets.
func NewID(prefix string) (string, error) {
	var b [idBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// newJTI returns 128 random bits in base64url, for a JWT's jti.
func newJTI() (string, error) {
	var b [idBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashSecret returns the SHA-256 of a secret made by NewSecret, which is
// what the store keeps. A fast, unsalted hash is right here because the
// input is 256 random bits: nothing can be guessed or precomputed, so the
// slowness and salt that protect low-entropy passwords add nothing, while
// a lookup by hash (codes, refresh tokens) stays one indexed read.
// Passwords are not hashed here.
func HashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// SecretMatches reports in constant time whether s hashes to hash.
func SecretMatches(hash []byte, s string) bool {
	if len(hash) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(hash, HashSecret(s)) == 1
}

// secretHashPrefix names the hash in its text form, so that another
// algorithm could be told apart later.
const secretHashPrefix = "sha256:"

// FormatSecretHash is the text form of a secret's hash, as a static
// client's secret_hash takes it: "sha256:" and 64 hex digits.
func FormatSecretHash(hash []byte) string {
	return secretHashPrefix + hex.EncodeToString(hash)
}

// ParseSecretHash reads FormatSecretHash's text form.
func ParseSecretHash(s string) ([]byte, error) {
	digits, ok := strings.CutPrefix(s, secretHashPrefix)
	if !ok {
		return nil, errors.New(`want "sha256:" and 64 hex digits (caddy oauthgate hash-secret)`)
	}
	h, err := hex.DecodeString(digits)
	if err != nil || len(h) != sha256.Size {
		return nil, errors.New(`want "sha256:" and 64 hex digits (caddy oauthgate hash-secret)`)
	}
	return h, nil
}
