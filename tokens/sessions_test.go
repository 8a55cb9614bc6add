package tokens

import (
	"errors"
	"testing"
	"time"
)

func TestInternalTokens(t *testing.T) {
	clock := newFakeClock()
	s := newService(t, openStore(t), withClock(Config{}, clock))
	type session struct {
		SID string `json:"sid"`
	}
	raw, exp, err := s.SignInternal("oauthgate-session+jwt", time.Hour, session{SID: "s-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(clock.Now().Add(time.Hour)) {
		t.Errorf("exp = %v", exp)
	}
	var got session
	if err := s.VerifyInternal(raw, "oauthgate-session+jwt", &got); err != nil || got.SID != "s-1" {
		t.Fatalf("VerifyInternal = %v, %+v", err, got)
	}
	if time.Duration(s.internalTTL.Load()) != time.Hour || s.keyRetention() < time.Hour {
		t.Error("key retention does not cover internal tokens")
	}

	access := mint(t, s, Access{})
	id, err := s.MintIDToken(IDToken{Subject: "u", ClientID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, raw, typ string
	}{
		{"other internal type", raw, "oauthgate-consent+jwt"},
		{"access token", access, "oauthgate-session+jwt"},
		{"id_token", id, "oauthgate-session+jwt"},
		{"reserved type asked for", access, "at+jwt"},
	} {
		if err := s.VerifyInternal(tt.raw, tt.typ, &got); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: VerifyInternal = %v", tt.name, err)
		}
	}
	if _, err := s.Verify(raw); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify(internal token) = %v", err)
	}
	for _, typ := range []string{"at+jwt", "JWT", "session"} {
		if _, _, err := s.SignInternal(typ, time.Hour, session{}); err == nil {
			t.Errorf("SignInternal accepted typ %q", typ)
		}
	}
	clock.Advance(time.Hour)
	if err := s.VerifyInternal(raw, "oauthgate-session+jwt", &got); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("expired internal token: %v", err)
	}
}
