package tokens

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

func TestMintAndVerifyEachAlg(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			s := newService(t, openStore(t), Config{Alg: alg, Audience: "https://api.example.test"})
			raw, exp, err := s.MintAccess(Access{
				Subject: "user-1", ClientID: "app-1", GrantID: "grant-1", BusinessID: "biz-1",
				Scopes: []string{"read:invoices", "write:invoices"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Until(exp); d < 59*time.Minute || d > time.Hour+time.Second {
				t.Errorf("exp in %v, want the default 1h", d)
			}
			hdr, claims := segments(t, raw)
			if hdr["alg"] != alg || hdr["typ"] != "at+jwt" || hdr["kid"] != s.Keys()[0].ID {
				t.Errorf("header = %v", hdr)
			}
			want := map[string]any{
				"iss": testIssuer, "sub": "user-1", "aud": "https://api.example.test", "client_id": "app-1",
				"scope": "read:invoices write:invoices", "gid": "grant-1", "authorized_business_id": "biz-1",
			}
			for k, v := range want {
				if claims[k] != v {
					t.Errorf("claim %s = %v, want %v", k, claims[k], v)
				}
			}
			for _, k := range []string{"iat", "exp", "jti"} {
				if claims[k] == nil {
					t.Errorf("claim %s missing", k)
				}
			}
			if jti, _ := claims["jti"].(string); len(jti) < 22 {
				t.Errorf("jti %q has fewer than 128 bits", jti)
			}

			c, err := s.Verify(raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != "user-1" || c.ClientID != "app-1" || c.GrantID != "grant-1" || c.BusinessID != "biz-1" ||
				c.Scope != "read:invoices write:invoices" || !slices.Equal(c.Scopes, []string{"read:invoices", "write:invoices"}) ||
				c.ExpiresAt != exp.Unix() || c.JTI != claims["jti"] {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}

func TestMintOmitsEmptyBusiness(t *testing.T) {
	s := newService(t, openStore(t), Config{})
	_, claims := segments(t, mint(t, s, Access{}))
	if _, ok := claims["authorized_business_id"]; ok {
		t.Error("authorized_business_id present though empty")
	}
	if claims["aud"] != testIssuer {
		t.Errorf("aud = %v, want the issuer by default", claims["aud"])
	}
}

func TestMintRequiresIdentifiers(t *testing.T) {
	s := newService(t, openStore(t), Config{})
	for _, a := range []Access{{ClientID: "c", GrantID: "g"}, {Subject: "s", GrantID: "g"}, {Subject: "s", ClientID: "c"}} {
		if _, _, err := s.MintAccess(a); err == nil {
			t.Errorf("MintAccess(%+v) succeeded", a)
		}
	}
}

func TestMintAccessTTL(t *testing.T) {
	s := newService(t, openStore(t), Config{AccessTTL: 10 * time.Minute})
	_, exp, _ := s.MintAccess(Access{Subject: "s", ClientID: "c", GrantID: "g"})
	if d := time.Until(exp); d > 10*time.Minute+time.Second || d < 9*time.Minute {
		t.Errorf("default exp in %v, want 10m", d)
	}
	_, exp, _ = s.MintAccess(Access{Subject: "s", ClientID: "c", GrantID: "g", TTL: 2 * time.Minute})
	if d := time.Until(exp); d > 2*time.Minute+time.Second || d < time.Minute {
		t.Errorf("exp in %v, want 2m", d)
	}
}

// TestVerifyRejects has one row per rule a token must pass.
func TestVerifyRejects(t *testing.T) {
	clock := newFakeClock()
	s := newService(t, openStore(t), withClock(Config{}, clock))
	active := s.keys.Load().active
	now := clock.Now().Unix()

	baseHeader := map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": active.kid}
	baseClaims := map[string]any{
		"iss": testIssuer, "sub": "user-1", "aud": testIssuer, "client_id": "app-1",
		"scope": "read:invoices", "iat": now, "exp": now + 3600, "jti": "jti-1", "gid": "grant-1",
	}
	good := craft(t, baseHeader, baseClaims, jwa.ES256, active.priv)
	if _, err := s.Verify(good); err != nil {
		t.Fatalf("baseline token rejected: %v", err)
	}

	with := func(m map[string]any, kv ...any) map[string]any {
		out := maps.Clone(m)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(out, kv[i].(string))
			} else {
				out[kv[i].(string)] = kv[i+1]
			}
		}
		return out
	}
	signed := func(hdr, claims map[string]any) string {
		return craft(t, hdr, claims, jwa.ES256, active.priv)
	}
	parts := strings.Split(good, ".")

	foreign, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(active.priv.Public())
	pubJWK, _ := jwk.FromRaw(active.priv.Public())
	pubJWKJSON, _ := json.Marshal(pubJWK) // as an attacker would copy it from the JWKS

	// Flip a bit of the signature itself, not of its encoding: flipping a
	// character can leave the base64url alphabet ('A' becomes '@'), which
	// is refused as malformed before the signature is checked.
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 0x01
	tamperedSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"tampered payload", parts[0] + "." + encodeSegment(t, with(baseClaims, "sub", "admin")) + "." + parts[2], "bad signature"},
		{"tampered signature", tamperedSig, "bad signature"},
		{"signature stripped", parts[0] + "." + parts[1] + ".", "bad signature"},
		{"expired", signed(baseHeader, with(baseClaims, "exp", now-3600)), "expired"},
		{"expired beyond skew", signed(baseHeader, with(baseClaims, "exp", now-31)), "expired"},
		{"nbf in the future", signed(baseHeader, with(baseClaims, "nbf", now+300)), "not yet valid"},
		{"iat in the future", signed(baseHeader, with(baseClaims, "iat", now+300)), "issued in the future"},
		{"wrong iss", signed(baseHeader, with(baseClaims, "iss", "https://evil.example.test")), "wrong issuer"},
		{"iss differs by trailing slash", signed(baseHeader, with(baseClaims, "iss", testIssuer+"/")), "wrong issuer"},
		{"wrong aud", signed(baseHeader, with(baseClaims, "aud", "https://other.example.test")), "wrong audience"},
		{"aud array without us", signed(baseHeader, with(baseClaims, "aud", []string{"a", "b"})), "wrong audience"},
		{"typ JWT (an id_token)", signed(with(baseHeader, "typ", "JWT"), baseClaims), "wrong typ"},
		{"missing typ", signed(with(baseHeader, "typ", nil), baseClaims), "wrong typ"},
		{"alg none", craft(t, with(baseHeader, "alg", "none"), baseClaims, "", nil), "wrong alg"},
		{"HS256 with the public key (DER) as secret", craft(t, with(baseHeader, "alg", "HS256"), baseClaims, jwa.HS256, pubDER), "wrong alg"},
		{"HS256 with the public JWK as secret", craft(t, with(baseHeader, "alg", "HS256"), baseClaims, jwa.HS256, pubJWKJSON), "wrong alg"},
		{"ES384 header on an ES256 key", signed(with(baseHeader, "alg", "ES384"), baseClaims), "wrong alg"},
		{"foreign key, our kid", craft(t, baseHeader, baseClaims, jwa.ES256, foreign), "bad signature"},
		{"foreign key, unknown kid", craft(t, with(baseHeader, "kid", "not-a-key"), baseClaims, jwa.ES256, foreign), "unknown key"},
		{"missing kid", signed(with(baseHeader, "kid", nil), baseClaims), "unknown key"},
		{"crit header", signed(with(baseHeader, "crit", []string{"exp"}, "exp", now), baseClaims), "bad header"},
		{"unencoded payload (b64 false)", signed(with(baseHeader, "b64", false), baseClaims), "bad header"},
		{"missing sub", signed(baseHeader, with(baseClaims, "sub", nil)), "missing claim"},
		{"missing client_id", signed(baseHeader, with(baseClaims, "client_id", nil)), "missing claim"},
		{"missing jti", signed(baseHeader, with(baseClaims, "jti", nil)), "missing claim"},
		{"missing gid", signed(baseHeader, with(baseClaims, "gid", nil)), "missing claim"},
		{"missing exp", signed(baseHeader, with(baseClaims, "exp", nil)), "missing claim"},
		{"missing iat", signed(baseHeader, with(baseClaims, "iat", nil)), "missing claim"},
		{"exp as a string", signed(baseHeader, with(baseClaims, "exp", "4102444800")), "bad claims"},
		{"sub as a number", signed(baseHeader, with(baseClaims, "sub", 42)), "bad claims"},
		{"empty", "", "malformed"},
		{"two segments", "a.b", "malformed"},
		{"empty segments", "...", "malformed"},
		{"four segments", good + ".x", "malformed"},
		{"header not base64", "%%%." + parts[1] + "." + parts[2], "malformed"},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2], "bad header"},
		{"10 KB of junk", strings.Repeat("A", 10<<10), "malformed"},
		{"10 KB of junk with dots", strings.Repeat("eyJ.", 2560)[:10<<10], "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := s.Verify(tt.token)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("err = %v, want ErrInvalidToken", err)
			}
			if got := strings.TrimPrefix(err.Error(), "invalid token: "); got != tt.reason {
				t.Errorf("reason = %q, want %q", got, tt.reason)
			}
			if len(tt.token) > 4 && strings.Contains(err.Error(), tt.token) {
				t.Error("error contains the token")
			}
			if _, err := s.Parse(tt.token); err == nil && tt.reason != "expired" && !strings.Contains(tt.name, "future") {
				t.Error("Parse accepted it")
			}
		})
	}
}

func TestVerifyAcceptsWithinSkew(t *testing.T) {
	clock := newFakeClock()
	s := newService(t, openStore(t), withClock(Config{}, clock))
	active := s.keys.Load().active
	now := clock.Now().Unix()
	hdr := map[string]any{"alg": "ES256", "typ": "application/AT+JWT", "kid": active.kid}
	claims := map[string]any{
		"iss": testIssuer, "sub": "u", "aud": []string{"other", testIssuer}, "client_id": "c",
		"iat": now + 20, "nbf": now + 20, "exp": now - 20, "jti": "j", "gid": "g",
	}
	if _, err := s.Verify(craft(t, hdr, claims, jwa.ES256, active.priv)); err != nil {
		t.Fatalf("token within 30s skew, typ application/at+jwt, aud array: %v", err)
	}
}

func TestParseIgnoresExpiryAndRevocation(t *testing.T) {
	clock := newFakeClock()
	s := newService(t, openStore(t), withClock(Config{AccessTTL: time.Minute}, clock))
	raw := mint(t, s, Access{GrantID: "grant-p"})
	if err := s.RevokeGrant(t.Context(), "grant-p"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if _, err := s.Verify(raw); err == nil {
		t.Fatal("Verify accepted an expired, revoked token")
	}
	c, err := s.Parse(raw)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.GrantID != "grant-p" {
		t.Errorf("GrantID = %q", c.GrantID)
	}
}

func TestVerifyRefusesIDToken(t *testing.T) {
	s := newService(t, openStore(t), Config{})
	id, err := s.MintIDToken(IDToken{Subject: "user-1", ClientID: testIssuer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(id); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Verify(id_token) = %v, want wrong typ", err)
	}
}

func TestErrorsMatch(t *testing.T) {
	for _, e := range reasonErrors {
		switch e.kind {
		case ErrRevoked:
			if !errors.Is(e, ErrRevoked) || !errors.Is(e, ErrInvalidToken) {
				t.Errorf("%v should match ErrRevoked and ErrInvalidToken", e)
			}
		case ErrUnavailable:
			if !errors.Is(e, ErrUnavailable) || errors.Is(e, ErrInvalidToken) {
				t.Errorf("%v should match ErrUnavailable only", e)
			}
		default:
			if !errors.Is(e, ErrInvalidToken) || errors.Is(e, ErrRevoked) {
				t.Errorf("%v should match ErrInvalidToken only", e)
			}
		}
	}
	if got := FailureReasons(); len(got) != int(numReasons) || got[reasonBadSignature] != "bad_signature" {
		t.Errorf("FailureReasons() = %v", got)
	}
}
