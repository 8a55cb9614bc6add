package tokens

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

const testAccessPrefix = "yapp_at_"

// opaqueStore is the real store counting opaque-token reads and failing
// them on demand.
type opaqueStore struct {
	tokenstore.Store
	reads     atomic.Int64
	down      atomic.Bool
	writeDown atomic.Bool
	// gate, when set, holds every read until it is closed.
	gate chan struct{}
}

func (o *opaqueStore) GetAccessToken(ctx context.Context, hash []byte) (*tokenstore.AccessToken, error) {
	o.reads.Add(1)
	if o.gate != nil {
		<-o.gate
	}
	if o.down.Load() {
		return nil, tokenstore.ErrUnavailable
	}
	return o.Store.GetAccessToken(ctx, hash)
}

func (o *opaqueStore) CreateAccessToken(ctx context.Context, t *tokenstore.AccessToken) error {
	if o.writeDown.Load() {
		return tokenstore.ErrUnavailable
	}
	return o.Store.CreateAccessToken(ctx, t)
}

func opaqueConfig(cfg Config) Config {
	cfg.AccessFormat = FormatOpaque
	cfg.AccessPrefix = testAccessPrefix
	return cfg
}

func TestOpaqueMintAndVerify(t *testing.T) {
	st := &opaqueStore{Store: openStore(t)}
	m := testMetrics()
	s := newService(t, st, opaqueConfig(Config{Metrics: m, Audience: "https://api.example.test"}))
	raw, exp, err := s.MintAccess(Access{
		Subject: "user-1", ClientID: "app-1", GrantID: "grant-1", BusinessID: "biz-1", User: true,
		Scopes: []string{"read:invoices", "write:invoices"},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, ok := strings.CutPrefix(raw, testAccessPrefix)
	if !ok || len(body) != 43 || strings.Contains(raw, ".") {
		t.Fatalf("opaque token %q: want %s and 43 base64url characters", raw, testAccessPrefix)
	}
	if b, err := base64.RawURLEncoding.DecodeString(body); err != nil || len(b) != 32 {
		t.Fatalf("opaque token body does not decode to 256 bits: %v", err)
	}

	// The store keeps the hash and the claims, never the token.
	row, err := st.Store.GetAccessToken(t.Context(), HashSecret(raw))
	if err != nil {
		t.Fatalf("stored row by hash: %v", err)
	}
	if strings.Contains(string(row.Claims), body) || string(row.Hash) == raw {
		t.Error("the store holds the token itself")
	}
	if row.GrantID != "grant-1" || row.ClientID != "app-1" || !row.ExpiresAt.After(exp) {
		t.Errorf("row = %+v (exp %v)", row, exp)
	}
	claims := decodeJSON(t, row.Claims)
	for k, v := range map[string]any{
		"iss": testIssuer, "sub": "user-1", "aud": "https://api.example.test", "client_id": "app-1",
		"scope": "read:invoices write:invoices", "gid": "grant-1", "authorized_business_id": "biz-1",
		"subject_type": "user",
	} {
		if claims[k] != v {
			t.Errorf("stored claim %s = %v, want %v", k, claims[k], v)
		}
	}

	c, err := s.Verify(raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Subject != "user-1" || c.ClientID != "app-1" || c.GrantID != "grant-1" || c.BusinessID != "biz-1" ||
		!c.User || c.Scope != "read:invoices write:invoices" || c.ExpiresAt != exp.Unix() || c.JTI != claims["jti"] {
		t.Errorf("claims = %+v", c)
	}
	// The steady state is a cache hit: no store read.
	s.cache.wait()
	reads := st.reads.Load()
	for range 3 {
		if _, err := s.Verify(raw); err != nil {
			t.Fatal(err)
		}
	}
	if got := st.reads.Load() - reads; got != 0 {
		t.Errorf("%d store reads for cached opaque tokens, want 0", got)
	}
	if got := value(m.CacheHits); got != 3 {
		t.Errorf("cache hits = %v, want 3", got)
	}
	// Parse (revocation) reads it too.
	if p, err := s.Parse(raw); err != nil || p.GrantID != "grant-1" {
		t.Errorf("Parse = %+v, %v", p, err)
	}
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	return decodeSegment(t, base64.RawURLEncoding.EncodeToString(b))
}

// TestOpaqueAcceptsJWTs: tokens minted before a switch to the opaque format
// stay valid; opaque tokens are refused once the format is back to JWTs.
func TestOpaqueAcceptsJWTs(t *testing.T) {
	st := openStore(t)
	jwtSvc := newService(t, st, Config{})
	jwt := mint(t, jwtSvc, Access{})
	opq := newService(t, st, opaqueConfig(Config{}))
	if _, err := opq.Verify(jwt); err != nil {
		t.Errorf("JWT in the opaque format: %v", err)
	}
	raw := mint(t, opq, Access{})
	if _, err := jwtSvc.Verify(raw); !errors.Is(err, ErrInvalidToken) || err.Error() != "invalid token: malformed" {
		t.Errorf("opaque token in the JWT format: %v, want malformed", err)
	}
	// A new access_token_prefix refuses the tokens of the old one, as
	// README says, though the store still holds them.
	renamed := opaqueConfig(Config{})
	renamed.AccessPrefix = "new_at_"
	if _, err := newService(t, st, renamed).Verify(raw); !errors.Is(err, ErrInvalidToken) || err.Error() != "invalid token: wrong prefix" {
		t.Errorf("an opaque token after a prefix change: %v, want wrong prefix", err)
	}
}

// TestOpaqueRejections: one row per way an opaque token is refused, each
// with its reason, on a cache miss (a fresh node) and, where the token can
// be cached, on a hit.
func TestOpaqueRejections(t *testing.T) {
	clock := newFakeClock()
	st := &opaqueStore{Store: openStore(t)}
	m := testMetrics()
	cfg := withClock(opaqueConfig(Config{Metrics: m}), clock)
	s := newService(t, st, cfg)
	genuine := mint(t, s, Access{})
	body := strings.TrimPrefix(genuine, testAccessPrefix)
	unknown, err := NewSecret(testAccessPrefix)
	if err != nil {
		t.Fatal(err)
	}
	// A body whose last character sets an unused bit: decodes to the same
	// bytes as some canonical token but is another spelling.
	lastBit := body[:42] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[(b64url[body[42]]|1)])

	for _, tc := range []struct {
		name, raw string
		want      error
		label     string
	}{
		{"wrong prefix (the refresh token's)", "yapp_rt_" + body, ErrInvalidToken, "wrong_prefix"},
		{"no prefix", body, ErrInvalidToken, "wrong_prefix"},
		{"prefix in another case", "YAPP_AT_" + body, ErrInvalidToken, "wrong_prefix"},
		{"prefix only", testAccessPrefix, ErrInvalidToken, "malformed"},
		{"empty", "", ErrInvalidToken, "wrong_prefix"},
		{"one character short", genuine[:len(genuine)-1], ErrInvalidToken, "malformed"},
		{"one character long", genuine + "A", ErrInvalidToken, "malformed"},
		{"padded", genuine + "=", ErrInvalidToken, "malformed"},
		{"standard alphabet", testAccessPrefix + "+" + body[1:], ErrInvalidToken, "malformed"},
		{"slash", testAccessPrefix + body[:42] + "/", ErrInvalidToken, "malformed"},
		{"space inside", testAccessPrefix + body[:20] + " " + body[21:], ErrInvalidToken, "malformed"},
		{"NUL", testAccessPrefix + body[:42] + "\x00", ErrInvalidToken, "malformed"},
		{"unused bits set", testAccessPrefix + lastBit, ErrInvalidToken, "malformed"},
		{"a dot makes it a JWT", testAccessPrefix + body[:21] + "." + body[22:], ErrInvalidToken, "malformed"},
		{"unknown token", unknown, ErrInvalidToken, "unknown_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := value(m.VerifyFailures.WithLabelValues(tc.label))
			reads := st.reads.Load()
			_, err := s.Verify(tc.raw)
			if !errors.Is(err, tc.want) || strings.ReplaceAll(strings.TrimPrefix(err.Error(), "invalid token: "), " ", "_") != tc.label {
				t.Fatalf("Verify = %v, want %s", err, tc.label)
			}
			if got := value(m.VerifyFailures.WithLabelValues(tc.label)); got != before+1 {
				t.Errorf("%s failures %v → %v", tc.label, before, got)
			}
			// Only a well-formed token costs a store read.
			if got := st.reads.Load() - reads; (tc.label == "unknown_token") != (got == 1) {
				t.Errorf("%d store reads", got)
			}
			if _, err := s.Parse(tc.raw); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Parse = %v", err)
			}
		})
	}

	// A fresh node (cold cache) on the same store, and the warm one.
	cold := func() *Service { return newService(t, st, cfg) }
	warm := newService(t, st, cfg)
	revokedGrant := mint(t, s, Access{GrantID: "grant-r"})
	revokedClient := mint(t, s, Access{ClientID: "app-r"})
	expiring := mint(t, s, Access{GrantID: "grant-e"})
	for _, raw := range []string{revokedGrant, revokedClient, expiring} {
		if _, err := warm.Verify(raw); err != nil {
			t.Fatal(err)
		}
	}
	warm.cache.wait()
	if err := s.RevokeGrant(t.Context(), "grant-r"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if err := s.RevokeClientTokens(t.Context(), "app-r"); err != nil {
		t.Fatal(err)
	}
	waitFeed(t, warm)
	for name, svc := range map[string]*Service{"cached": warm, "uncached": cold()} {
		waitFeed(t, svc)
		if _, err := svc.Verify(revokedGrant); !errors.Is(err, ErrRevoked) || err.Error() != "token revoked: grant revoked" {
			t.Errorf("%s: revoked grant: %v", name, err)
		}
		if _, err := svc.Verify(revokedClient); !errors.Is(err, ErrRevoked) || err.Error() != "token revoked: client revoked" {
			t.Errorf("%s: revoked client: %v", name, err)
		}
		if _, err := svc.Verify(expiring); err != nil {
			t.Errorf("%s: live token: %v", name, err)
		}
	}
	clock.Advance(time.Hour + skew)
	for name, svc := range map[string]*Service{"cached": warm, "uncached": cold()} {
		if _, err := svc.Verify(expiring); !errors.Is(err, ErrInvalidToken) || err.Error() != "invalid token: expired" {
			t.Errorf("%s: expired: %v", name, err)
		}
	}
	// Parse skips the lifetime (revocation of an expired token is a no-op
	// later, but must not fail on the lookup).
	if _, err := cold().Parse(expiring); err != nil {
		t.Errorf("Parse of an expired opaque token: %v", err)
	}
}

// TestOpaqueStoreChecksClaims: the stored claims are judged as a JWT's are,
// so a node of another issuer or audience refuses the token.
func TestOpaqueStoreChecksClaims(t *testing.T) {
	st := openStore(t)
	raw := mint(t, newService(t, st, opaqueConfig(Config{})), Access{})
	for name, cfg := range map[string]Config{
		"wrong issuer":   {Issuer: "https://other.example.test", Audience: testIssuer},
		"wrong audience": {Audience: "https://other.example.test"},
	} {
		_, err := newService(t, st, opaqueConfig(cfg)).Verify(raw)
		if !errors.Is(err, ErrInvalidToken) || err.Error() != "invalid token: "+name {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestOpaqueStoreDown: a cache miss while the store cannot be read fails
// closed with ErrUnavailable (503); a cached token is still served (until
// max_staleness, as for JWTs); minting fails while the store cannot be
// written.
func TestOpaqueStoreDown(t *testing.T) {
	st := &opaqueStore{Store: openStore(t)}
	m := testMetrics()
	s := newService(t, st, opaqueConfig(Config{Metrics: m}))
	cached := mint(t, s, Access{})
	if _, err := s.Verify(cached); err != nil {
		t.Fatal(err)
	}
	s.cache.wait()
	uncached := mint(t, s, Access{})
	st.down.Store(true)
	if _, err := s.Verify(uncached); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Errorf("miss with the store down: %v, want ErrUnavailable", err)
	}
	if got := value(m.VerifyFailures.WithLabelValues("token_lookup_failed")); got != 1 {
		t.Errorf("token_lookup_failed = %v", got)
	}
	if _, err := s.Verify(cached); err != nil {
		t.Errorf("cached token with the store down: %v", err)
	}
	st.writeDown.Store(true)
	if _, _, err := s.MintAccess(Access{Subject: "u", ClientID: "c", GrantID: "g"}); !errors.Is(err, tokenstore.ErrUnavailable) {
		t.Errorf("MintAccess with the store down: %v, want ErrUnavailable", err)
	}
}

func TestOpaqueConfig(t *testing.T) {
	for _, tc := range []struct {
		format, prefix string
		ok             bool
	}{
		{"", "", true},
		{FormatJWT, "", true},
		{FormatOpaque, "", true},
		{FormatOpaque, "yapp_at_", true},
		{FormatOpaque, "a-B_9", true},
		{FormatJWT, "yapp_at_", false},
		{"", "yapp_at_", false},
		{"reference", "", false},
		{FormatOpaque, "yapp.at.", false},
		{FormatOpaque, "yapp at", false},
		{FormatOpaque, "yapp+at", false},
		{FormatOpaque, strings.Repeat("a", 33), false},
	} {
		err := CheckConfig(Config{Issuer: testIssuer, AccessFormat: tc.format, AccessPrefix: tc.prefix})
		if (err == nil) != tc.ok {
			t.Errorf("format %q prefix %q: %v", tc.format, tc.prefix, err)
		}
	}
}

// FuzzOpaque: in the opaque format the only token that verifies is the one
// minted, spelled as minted; opaqueShape agrees with the slow reading of the
// rule (the prefix, then base64url that decodes to 256 bits and encodes back
// to itself); a JWT of the same service still verifies; nothing panics.
func FuzzOpaque(f *testing.F) {
	st := openStore(f)
	s := newService(f, st, opaqueConfig(Config{}))
	genuine := mint(f, s, Access{Scopes: []string{"read:invoices"}, BusinessID: "biz_1"})
	if _, err := s.Verify(genuine); err != nil {
		f.Fatalf("the genuine token: %v", err)
	}
	body := strings.TrimPrefix(genuine, testAccessPrefix)
	for _, seed := range []string{
		genuine,
		body,
		"yapp_rt_" + body,
		genuine + "=",
		genuine[:len(genuine)-1],
		genuine[:len(genuine)-1] + string(genuine[len(genuine)-1]^1),
		testAccessPrefix + strings.Repeat("A", 43),
		testAccessPrefix + strings.Repeat("_", 43),
		testAccessPrefix, "", "Bearer " + genuine, " " + genuine, genuine + " ",
		testAccessPrefix + body[:10] + "." + body[11:],
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_, shapeOK := s.opaqueShape(raw)
		if want := opaqueRule(raw); shapeOK != want {
			t.Fatalf("opaqueShape(%q) = %v, the rule says %v", raw, shapeOK, want)
		}
		c, err := s.Verify(raw)
		if (err == nil) != (raw == genuine) {
			t.Fatalf("Verify(%q): %+v, %v", raw, c, err)
		}
		if err == nil && (c.BusinessID != "biz_1" || c.Scope != "read:invoices") {
			t.Fatalf("the genuine token verified as %+v", c)
		}
		if _, err := s.Parse(raw); (err == nil) != (raw == genuine) {
			t.Fatalf("Parse(%q): %v", raw, err)
		}
	})
}

// opaqueRule is opaqueShape written the slow way.
func opaqueRule(raw string) bool {
	body, ok := strings.CutPrefix(raw, testAccessPrefix)
	if !ok {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(body)
	return err == nil && len(b) == 32 && base64.RawURLEncoding.EncodeToString(b) == body
}

// TestOpaqueConcurrentMisses: a burst of first requests with one new token
// costs one store read, not one per request.
func TestOpaqueConcurrentMisses(t *testing.T) {
	st := &opaqueStore{Store: openStore(t)}
	raw := mint(t, newService(t, st, opaqueConfig(Config{})), Access{})
	s := newService(t, st, opaqueConfig(Config{}))
	st.gate = make(chan struct{})
	const callers = 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			_, err := s.Verify(raw)
			errs <- err
		})
	}
	eventually(t, 5*time.Second, "the first read", func() bool { return st.reads.Load() >= 1 })
	time.Sleep(100 * time.Millisecond) // the others reach the lookup meanwhile
	close(st.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := st.reads.Load(); n > 2 {
		t.Errorf("%d store reads for %d concurrent first requests, want 1", n, callers)
	}
}

// TestOpaqueCarriesClaims: claims the JWT form carries beyond the basic set
// (RFC 8707 resources in aud, RFC 9449's cnf.jkt) are stored with an opaque
// token and come back from Verify as from a JWT, on a node that never saw
// the token; another node's resource list judges its aud as a JWT's.
func TestOpaqueCarriesClaims(t *testing.T) {
	const crm, acct = "https://api.example.test/crm", "https://api.example.test/accounting"
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	st := openStore(t)
	s := newService(t, st, opaqueConfig(Config{Resources: []string{crm, acct}}))
	raw := mint(t, s, Access{Resources: []string{crm, acct}, JKT: jkt})
	row, err := st.GetAccessToken(t.Context(), HashSecret(raw))
	if err != nil {
		t.Fatal(err)
	}
	stored := decodeJSON(t, row.Claims)
	if cnf, _ := stored["cnf"].(map[string]any); cnf["jkt"] != jkt {
		t.Errorf("stored cnf %v", stored["cnf"])
	}
	c, err := newService(t, st, opaqueConfig(Config{Resources: []string{crm, acct}})).Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.JKT != jkt || len(c.Audience) != 2 || c.Audience[0] != crm || c.Audience[1] != acct {
		t.Errorf("claims %+v", c)
	}
	onlyCRM := newService(t, st, opaqueConfig(Config{Resources: []string{crm}}))
	if _, err := onlyCRM.Verify(mint(t, s, Access{Resources: []string{acct}})); err == nil || err.Error() != "invalid token: wrong audience" {
		t.Errorf("opaque token for an unknown resource: %v", err)
	}
}

// TestOpaqueHitAllocations: a cached opaque token is verified without an
// allocation or a store read, as a cached JWT is.
func TestOpaqueHitAllocations(t *testing.T) {
	st := &opaqueStore{Store: openStore(t)}
	s := newService(t, st, opaqueConfig(Config{}))
	raw := mint(t, s, Access{})
	if _, err := s.Verify(raw); err != nil {
		t.Fatal(err)
	}
	s.cache.wait()
	reads := st.reads.Load()
	if allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.Verify(raw); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per cached Verify", allocs)
	}
	if n := st.reads.Load() - reads; n != 0 {
		t.Errorf("%d store reads on cache hits", n)
	}
}

// TestOpaqueLookupsBounded: a flood of well-formed random tokens (each a
// cache miss that reads the store) holds at most maxOpaqueLookups store
// reads in flight; the misses beyond wait, then fail closed with 503's
// ErrUnavailable, while a cached token is served throughout.
func TestOpaqueLookupsBounded(t *testing.T) {
	st := &opaqueStore{Store: openStore(t)}
	m := testMetrics()
	s := newService(t, st, opaqueConfig(Config{Metrics: m}))
	cached := mint(t, s, Access{})
	if _, err := s.Verify(cached); err != nil {
		t.Fatal(err)
	}
	s.cache.wait()
	st.reads.Store(0)
	st.gate = make(chan struct{})
	const flood = 3 * maxOpaqueLookups
	errs := make(chan error, flood)
	var wg sync.WaitGroup
	for range flood {
		raw, err := NewSecret(testAccessPrefix)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			_, err := s.Verify(raw)
			errs <- err
		})
	}
	eventually(t, 5*time.Second, "the first reads", func() bool { return st.reads.Load() >= maxOpaqueLookups })
	time.Sleep(100 * time.Millisecond) // the others reach the lookup meanwhile
	if n := st.reads.Load(); n != maxOpaqueLookups {
		t.Errorf("%d store reads in flight for %d random tokens, want at most %d", n, flood, maxOpaqueLookups)
	}
	if _, err := s.Verify(cached); err != nil {
		t.Errorf("a cached token during the flood: %v", err)
	}
	// The waiting misses give up after opaqueLookupWait.
	for range flood - maxOpaqueLookups {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrUnavailable) || err.Error() != "token verification unavailable: token lookups busy" {
				t.Errorf("a miss past the wait: %v, want ErrUnavailable (token lookups busy)", err)
			}
		case <-time.After(opaqueLookupWait + 5*time.Second):
			t.Fatal("misses beyond the bound neither waited nor failed")
		}
	}
	close(st.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrInvalidToken) {
			t.Errorf("a read miss: %v, want unknown token", err)
		}
	}
	if got := value(m.VerifyFailures.WithLabelValues("token_lookups_busy")); got != flood-maxOpaqueLookups {
		t.Errorf("token_lookups_busy = %v, want %d", got, flood-maxOpaqueLookups)
	}
}
