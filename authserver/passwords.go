package authserver

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// passwordCost is the bcrypt work factor of new password hashes: about a
// quarter of a second on a current core, which is what slows a guesser.
const passwordCost = 12

// Password length limits. bcrypt reads at most 72 bytes; longer passwords
// are refused rather than silently truncated.
const (
	minPasswordLen    = 8
	maxBcryptPassword = 72
)

// HashPassword returns the bcrypt hash of a new password, as the directory
// stores it and a configured user's password_hash takes it: refused when
// shorter than 8 characters or longer than the 72 bytes bcrypt reads.
func HashPassword(pw string) (string, error) { return hashPassword(pw) }

// hashPassword returns the bcrypt hash of a new password.
func hashPassword(pw string) (string, error) {
	if err := checkNewPassword(pw); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), passwordCost)
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return string(h), nil
}

func checkNewPassword(pw string) error {
	switch {
	case len(pw) < minPasswordLen:
		return fmt.Errorf("password must be at least %d characters", minPasswordLen)
	case len(pw) > maxBcryptPassword:
		return fmt.Errorf("password must be at most %d bytes", maxBcryptPassword)
	}
	return nil
}

// validPasswordHash accepts a bcrypt hash made elsewhere (for instance by
// `caddy hash-password`).
func validPasswordHash(h string) error {
	if !strings.HasPrefix(h, "$2") {
		return errors.New("password_hash must be a bcrypt hash ($2a$, $2b$ or $2y$)")
	}
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return fmt.Errorf("password_hash: %w", err)
	}
	return nil
}

// checkPassword reports whether pw matches the hash. A password longer than
// bcrypt reads never matches, so its tail cannot be ignored.
func checkPassword(hash, pw string) bool {
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw))
	return err == nil && len(pw) <= maxBcryptPassword
}

// dummyPasswordHash is compared against when there is no user, so that an
// unknown e-mail takes as long to refuse as a wrong password.
var dummyPasswordHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("oauthgate: no such user"), passwordCost)
	if err != nil {
		panic(err) // only a broken random source gets here
	}
	return string(h)
})
