package tokens

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
	"github.com/oauthgate/oauthgate/tokenstore/storetest"
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
			// The signing key, and an RS256 key for id_tokens (OIDC
			// Discovery 1.0 §3) unless that is the signing key.
			want := map[string]bool{alg: true, "RS256": true}
			if len(keys) != len(want) {
				t.Fatalf("JWKS has %d keys, want %d", len(keys), len(want))
			}
			if k := keys[s.Keys()[0].ID]; k == nil || k["alg"] != alg {
				t.Errorf("first key %+v is not the %s signing key", s.Keys()[0], alg)
			}
			for _, k := range keys {
				if !want[k["alg"].(string)] || k["use"] != "sig" {
					t.Errorf("key = %v", k)
				}
				delete(want, k["alg"].(string))
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
	if kids[oldKid] == nil || kids[newKid] == nil || len(kids) != 4 {
		t.Errorf("JWKS kids = %v, want both key sets (ES256 and RS256 each)", kids)
	}
	// The new ES256 and RS256 keys are active, the old ones retired.
	infos := s.Keys()
	if len(infos) != 4 || infos[0].ID != newKid || infos[0].Alg != "ES256" || infos[1].Alg != "RS256" {
		t.Fatalf("Keys() = %+v", infos)
	}
	for i, ki := range infos {
		if active := i < 2; ki.Active != active || ki.Retired.IsZero() != active {
			t.Errorf("Keys()[%d] = %+v", i, ki)
		}
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
	if len(s.Keys()) != 4 {
		t.Fatalf("retired keys deleted while their tokens live: %+v", s.Keys())
	}
	if _, err := s.Verify(old); err != nil {
		t.Errorf("token of retired key: %v", err)
	}

	clock.Advance(s.keyRetention())
	s.housekeep(t.Context())
	if len(s.Keys()) != 2 || len(jwksKids(t, s)) != 2 {
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
	ma, mb := testMetrics(), testMetrics()
	cfg.Metrics = ma
	a := newService(t, openStoreAt(t, path), cfg)
	cfg.Metrics = mb
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
	// The other node finds the store's newest keys fresh and adopts them
	// instead of rotating again.
	b.housekeep(t.Context())
	if got := b.Keys()[0].ID; got != second {
		t.Errorf("second node: active %s, want %s", got, second)
	}
	if n := rotations(ma, mb); n != 2 {
		t.Errorf("%v key sets made, want 2: the second node rotated again", n)
	}
}

// rotations counts the key sets the nodes of these metrics have made (the
// first included).
func rotations(ms ...*Metrics) float64 {
	var n float64
	for _, m := range ms {
		n += value(m.KeyRotations)
	}
	return n
}

// TestAutomaticRotationOncePerPeriodInACluster is issue 9 item 15: nodes
// whose housekeeping ticks at the same moment made a rotation each. Over
// several periods, on both engines, the cluster makes one per period.
func TestAutomaticRotationOncePerPeriodInACluster(t *testing.T) {
	engines := map[string]func(t *testing.T) (tokenstore.Store, tokenstore.Store){
		"sqlite": func(t *testing.T) (tokenstore.Store, tokenstore.Store) {
			path := filepath.Join(t.TempDir(), "oauthgate.db")
			return openStoreAt(t, path), openStoreAt(t, path)
		},
		"postgres": func(t *testing.T) (tokenstore.Store, tokenstore.Store) {
			dsn := storetest.PostgresDSN(t)
			open := func() tokenstore.Store {
				st, err := tokenstore.Open(t.Context(), tokenstore.Config{Driver: "postgres", DSN: dsn})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
			return open(), open()
		},
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			cfg := withClock(Config{RotationPeriod: 24 * time.Hour}, clock)
			sa, sb := open(t)
			ma, mb := testMetrics(), testMetrics()
			cfg.Metrics = ma
			a := newService(t, sa, cfg)
			cfg.Metrics = mb
			nodes := []*Service{a, newService(t, sb, cfg)}
			const periods = 5
			for p := 1; p <= periods; p++ {
				clock.Advance(25 * time.Hour)
				var wg sync.WaitGroup
				for _, n := range nodes {
					wg.Go(func() { n.housekeep(t.Context()) })
				}
				wg.Wait()
				if n := rotations(ma, mb); n != float64(p+1) {
					t.Fatalf("period %d: the nodes made %v key sets, want %d (one rotation per period)", p, n, p+1)
				}
				for _, n := range nodes {
					n.housekeep(t.Context()) // adopt the other's rotation
				}
				if a, b := nodes[0].Keys()[0].ID, nodes[1].Keys()[0].ID; a != b {
					t.Fatalf("period %d: the nodes sign with %s and %s", p, a, b)
				}
			}
		})
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
