package tokens

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestVerifyIDTokenHint: RP-Initiated Logout §2 accepts an id_token this
// issuer signed, expired or not; nothing else passes.
func TestVerifyIDTokenHint(t *testing.T) {
	clock := newFakeClock()
	st := openStore(t)
	s := newService(t, st, withClock(Config{IDTokenTTL: time.Minute}, clock))
	id, err := s.MintIDToken(IDToken{Subject: "user-1", ClientID: "app-1"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.VerifyIDTokenHint(id)
	if err != nil || h.Subject != "user-1" || h.ClientID != "app-1" {
		t.Fatalf("genuine hint: %+v, %v", h, err)
	}
	clock.Advance(24 * time.Hour)
	if h, err := s.VerifyIDTokenHint(id); err != nil || h.Subject != "user-1" {
		t.Fatalf("expired but genuine hint: %+v, %v", h, err)
	}

	other := newService(t, openStore(t), Config{Issuer: "https://other.example.test"})
	foreign, err := other.MintIDToken(IDToken{Subject: "user-1", ClientID: "app-1"})
	if err != nil {
		t.Fatal(err)
	}
	session, _, err := s.SignInternal("oauthgate-session+jwt", time.Hour, map[string]string{"sub": "user-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, raw string }{
		{"empty", ""},
		{"not a JWT", "hello"},
		{"signature tampered", id[:len(id)-10] + flipLast(id[len(id)-10:len(id)-9]) + id[len(id)-9:]},
		{"payload tampered", tamperPayload(t, id)},
		{"another issuer's key", foreign},
		{"access token", mint(t, s, Access{})},
		{"session token", session},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := s.VerifyIDTokenHint(tc.raw); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("got %+v, %v; want ErrInvalidToken", h, err)
			}
		})
	}
}

func flipLast(s string) string {
	b := []byte(s)
	if b[len(b)-1] == 'A' {
		b[len(b)-1] = 'B'
	} else {
		b[len(b)-1] = 'A'
	}
	return string(b)
}

// tamperPayload swaps the subject of a JWT's payload, keeping its
// signature.
func tamperPayload(t *testing.T, raw string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte(`"user-1"`), []byte(`"user-2"`), 1)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}
