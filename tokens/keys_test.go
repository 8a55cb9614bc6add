package tokens

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

type jwksDoc struct {
	Keys []map[string]any `json:"keys"`
}

func jwksKids(t *testing.T, s *Service) map[string]map[string]any {
	t.Helper()
	var doc jwksDoc
	if err := json.Unmarshal(s.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]map[string]any)
	for _, k := range doc.Keys {
		out[k["kid"].(string)] = k
	}
	return out
}

func TestJWKSIsPublic(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			s := newService(t, openStore(t), Config{Alg: alg})
			keys := jwksKids(t, s)
			if len(keys) != 1 {
				t.Fatalf("JWKS has %d keys", len(keys))
			}
			for kid, k := range keys {
				if k["alg"] != alg || k["use"] != "sig" || kid != s.Keys()[0].ID {
					t.Errorf("key = %v", k)
				}
				for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
					if _, ok := k[private]; ok {
						t.Errorf("JWKS exposes private member %q", private)
					}
				}
			}
		})
	}
}

func TestRotation(t *testing.T) {
	s := newService(t, openStore(t), Config{})
	before := mint(t, s, Access{})
	oldKid := s.Keys()[0].ID

	newKid, err := s.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if newKid == oldKid {
		t.Fatal("Rotate kept the kid")
	}
	after := mint(t, s, Access{})
	if hdr, _ := segments(t, after); hdr["kid"] != newKid {
		t.Errorf("new token kid = %v, want %v", hdr["kid"], newKid)
	}
	for name, raw := range map[string]string{"before": before, "after": after} {
		if _, err := s.Verify(raw); err != nil {
			t.Errorf("token minted %s rotation: %v", name, err)
		}
	}
	kids := jwksKids(t, s)
	if kids[oldKid] == nil || kids[newKid] == nil || len(kids) != 2 {
		t.Errorf("JWKS kids = %v, want both", kids)
	}
	infos := s.Keys()
	if len(infos) != 2 || infos[0].ID != newKid || !infos[0].Active || infos[1].Active || infos[1].Retired.IsZero() {
		t.Errorf("Keys() = %+v", infos)
	}
}

func TestRetiredKeyDeletedAfterItsTokensExpire(t *testing.T) {
	clock := newFakeClock()
	s := newService(t, openStore(t), withClock(Config{AccessTTL: time.Hour}, clock))
	old := mint(t, s, Access{})
	if _, err := s.Verify(old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}

	clock.Advance(30 * time.Minute)
	s.housekeep(t.Context())
	if len(s.Keys()) != 2 {
		t.Fatalf("retired key deleted while its tokens live: %+v", s.Keys())
	}
	if _, err := s.Verify(old); err != nil {
		t.Errorf("token of retired key: %v", err)
	}

	clock.Advance(s.keyRetention())
	s.housekeep(t.Context())
	if len(s.Keys()) != 1 || len(jwksKids(t, s)) != 1 {
		t.Errorf("retired key kept past retention: %+v", s.Keys())
	}
	// Even a cached token of the deleted key is refused.
	if _, err := s.Parse(old); err == nil || !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Parse(token of deleted key) = %v", err)
	}
}

func TestAutomaticRotation(t *testing.T) {
	clock := newFakeClock()
	path := filepath.Join(t.TempDir(), "oauthgate.db")
	cfg := withClock(Config{RotationPeriod: 24 * time.Hour}, clock)
	a := newService(t, openStoreAt(t, path), cfg)
	b := newService(t, openStoreAt(t, path), cfg)
	first := a.Keys()[0].ID
	if b.Keys()[0].ID != first {
		t.Fatal("nodes started with different keys")
	}

	a.housekeep(t.Context())
	if a.Keys()[0].ID != first {
		t.Fatal("rotated before the period")
	}

	clock.Advance(25 * time.Hour)
	a.housekeep(t.Context())
	second := a.Keys()[0].ID
	if second == first {
		t.Fatal("did not rotate after the period")
	}
	// The other node finds the store's newest key fresh and adopts it
	// instead of rotating again.
	b.housekeep(t.Context())
	if got := b.Keys()[0].ID; got != second {
		t.Errorf("second node: active %s, want %s", got, second)
	}
	keys, err := b.store.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ID != first && k.ID != second {
			t.Errorf("second node rotated again: %s", k.ID)
		}
	}
}

func TestAlgorithmChangeRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauthgate.db")
	es := newService(t, openStoreAt(t, path), Config{Alg: "ES256"})
	old := mint(t, es, Access{})
	es.Close()

	ed := newService(t, openStoreAt(t, path), Config{Alg: "EdDSA"})
	if k := ed.Keys()[0]; k.Alg != "EdDSA" || !k.Active {
		t.Errorf("active key %+v, want EdDSA", k)
	}
	if hdr, _ := segments(t, mint(t, ed, Access{})); hdr["alg"] != "EdDSA" {
		t.Errorf("new token alg %v", hdr["alg"])
	}
	if _, err := ed.Verify(old); err != nil {
		t.Errorf("ES256 token after switching to EdDSA: %v", err)
	}
}

func TestConfigRejectsUnknownAlg(t *testing.T) {
	if _, err := New(t.Context(), openStore(t), Config{Issuer: testIssuer, Alg: "HS256"}); err == nil {
		t.Error("New accepted HS256")
	}
	if _, err := New(t.Context(), openStore(t), Config{}); err == nil {
		t.Error("New accepted an empty issuer")
	}
}
