package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// signer makes proofs with one key, as a client would.
type signer struct {
	t    testing.TB
	alg  jwa.SignatureAlgorithm
	priv jwk.Key
	pub  jwk.Key
}

func newSigner(t testing.TB, alg jwa.SignatureAlgorithm) *signer {
	t.Helper()
	var raw any
	var err error
	switch alg {
	case jwa.ES256:
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwa.ES384:
		raw, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jwa.EdDSA:
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	case jwa.RS256, jwa.PS256:
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return &signer{t: t, alg: alg, priv: priv, pub: pub}
}

func (s *signer) jkt() string {
	tp, err := s.pub.Thumbprint(crypto.SHA256)
	if err != nil {
		s.t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// proof signs claims with headers; hdr overrides the default typ/jwk.
func (s *signer) proof(claims map[string]any, hdr map[string]any) string {
	s.t.Helper()
	h := jws.NewHeaders()
	must(s.t, h.Set("typ", Typ))
	must(s.t, h.Set("jwk", s.pub))
	for k, v := range hdr {
		if v == nil {
			must(s.t, h.Remove(k))
			continue
		}
		must(s.t, h.Set(k, v))
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := jws.Sign(payload, jws.WithKey(s.alg, s.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		s.t.Fatal(err)
	}
	return string(out)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var t0 = time.Unix(1_800_000_000, 0)

const (
	testURL   = "https://api.example.com/api/v1/invoices"
	testToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"
)

func ath(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func claimsFor(jti string) map[string]any {
	return map[string]any{"jti": jti, "htm": "GET", "htu": testURL, "iat": t0.Unix(), "ath": ath(testToken)}
}

func target(jkt string) Target {
	return Target{Method: "GET", Scheme: "https", Host: "api.example.com", Path: "/api/v1/invoices", AccessToken: testToken, JKT: jkt}
}

func checker(t testing.TB, cfg Config) *Checker {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0 }
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCheckAccepts: a well-formed proof of each default algorithm passes
// and yields its key's thumbprint.
func TestCheckAccepts(t *testing.T) {
	for _, alg := range []jwa.SignatureAlgorithm{jwa.ES256, jwa.ES384, jwa.EdDSA, jwa.RS256, jwa.PS256} {
		t.Run(alg.String(), func(t *testing.T) {
			s := newSigner(t, alg)
			c := checker(t, Config{})
			res, err := c.Check(s.proof(claimsFor("j1"), nil), target(s.jkt()))
			if err != nil {
				t.Fatalf("valid proof refused: %v", err)
			}
			if res.JKT != s.jkt() {
				t.Errorf("jkt %q, want %q", res.JKT, s.jkt())
			}
		})
	}
}

// TestCheckAcceptsEd25519Alg: RFC 9864's "Ed25519" alg (what oauth4webapi
// puts in an Ed25519 proof) is EdDSA with an Ed25519 key; with any other
// key it is refused.
func TestCheckAcceptsEd25519Alg(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	b64 := base64.RawURLEncoding.EncodeToString
	k, _ := jwk.FromRaw(pub)
	input := b64([]byte(`{"typ":"dpop+jwt","alg":"Ed25519","jwk":`+mustJSON(t, k)+`}`)) + "." + b64([]byte(mustJSON(t, claimsFor("ed"))))
	proof := input + "." + b64(ed25519.Sign(priv, []byte(input)))
	if _, err := checker(t, Config{}).Check(proof, target("")); err != nil {
		t.Fatalf("Ed25519 proof: %v", err)
	}
	es := newSigner(t, jwa.ES256)
	input = b64([]byte(`{"typ":"dpop+jwt","alg":"Ed25519","jwk":`+mustJSON(t, es.pub)+`}`)) + "." + b64([]byte(mustJSON(t, claimsFor("ed2"))))
	if _, err := checker(t, Config{}).Check(input+"."+b64(ed25519.Sign(priv, []byte(input))), target("")); err != FailKey {
		t.Fatalf("Ed25519 alg with a P-256 key: %v", err)
	}
}

// TestCheckRejects is every rule of RFC 9449 §4.3 (and §7.1's key binding)
// with a proof that breaks it and the refusal it gets.
func TestCheckRejects(t *testing.T) {
	s := newSigner(t, jwa.ES256)
	other := newSigner(t, jwa.ES256)
	rsaSmall := func() string {
		k, err := rsa.GenerateKey(rand.Reader, 1024)
		must(t, err)
		priv, _ := jwk.FromRaw(k)
		pub, _ := priv.PublicKey()
		h := jws.NewHeaders()
		must(t, h.Set("typ", Typ))
		must(t, h.Set("jwk", pub))
		b, _ := json.Marshal(claimsFor("small"))
		out, err := jws.Sign(b, jws.WithKey(jwa.RS256, priv, jws.WithProtectedHeaders(h)))
		must(t, err)
		return string(out)
	}
	with := func(k string, v any) map[string]any {
		c := claimsFor("j-" + k)
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	b64 := base64.RawURLEncoding.EncodeToString
	good := s.proof(claimsFor("good"), nil)
	parts := strings.Split(good, ".")
	hmacProof := func() string {
		key, _ := jwk.FromRaw([]byte("0123456789abcdef0123456789abcdef"))
		h := jws.NewHeaders()
		must(t, h.Set("typ", Typ))
		b, _ := json.Marshal(claimsFor("hs"))
		out, err := jws.Sign(b, jws.WithKey(jwa.HS256, key, jws.WithProtectedHeaders(h)))
		must(t, err)
		return string(out)
	}
	unsigned := b64([]byte(`{"typ":"dpop+jwt","alg":"none","jwk":`+mustJSON(t, s.pub)+`}`)) + "." + parts[1] + "."
	noneSigned := b64([]byte(`{"typ":"dpop+jwt","alg":"none","jwk":`+mustJSON(t, s.pub)+`}`)) + "." + parts[1] + "." + parts[2]
	privJWK := b64([]byte(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+mustJSON(t, s.priv)+`}`)) + "." + parts[1] + "." + parts[2]
	octJWK := b64([]byte(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"oct","k":"c2VjcmV0"}}`)) + "." + parts[1] + "." + parts[2]
	// The other key's jwk in the header, the signature by s's: the
	// signature must be checked with the embedded key.
	swapped := other.proof(claimsFor("swap"), nil)
	swapped = strings.Split(swapped, ".")[0] + "." + parts[1] + "." + parts[2]
	// An RSA proof whose jwk carries private members other than "d" (jwx
	// types a key as private by "d" alone), and one whose modulus is a
	// 1024-bit number zero-padded to 256 bytes.
	rsaSigned := func(jwkJSON map[string]any, priv any, jti string) string {
		hb, _ := json.Marshal(map[string]any{"typ": Typ, "alg": "RS256", "jwk": jwkJSON})
		in := b64(hb) + "." + b64([]byte(mustJSON(t, claimsFor(jti))))
		sum := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv.(*rsa.PrivateKey), crypto.SHA256, sum[:])
		must(t, err)
		return in + "." + b64(sig)
	}
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	rsaPriv, _ := jwk.FromRaw(rsa2048)
	rsaMembers := func(drop ...string) map[string]any {
		var m map[string]any
		must(t, json.Unmarshal([]byte(mustJSON(t, rsaPriv)), &m))
		for _, d := range drop {
			delete(m, d)
		}
		return m
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	must(t, err)
	padded := make([]byte, 256)
	rsa1024.N.FillBytes(padded)
	paddedJWK := map[string]any{"kty": "RSA", "e": "AQAB", "n": b64(padded)}
	p384 := newSigner(t, jwa.ES384)
	es256OnP384 := b64([]byte(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+mustJSON(t, p384.pub)+`}`)) + "." + parts[1] + "." + parts[2]

	tests := []struct {
		name  string
		proof string
		t     Target
		want  *Failure
	}{
		{"oversized proof", strings.Repeat("a", MaxProofLen+1), target(""), FailTooLarge},
		{"not a JWS", "abc", target(""), FailMalformed},
		{"two segments", parts[0] + "." + parts[1], target(""), FailMalformed},
		{"four segments", good + ".x", target(""), FailMalformed},
		{"JWS JSON serialisation, two signatures", `{"payload":"` + parts[1] + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"},{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}]}`, target(""), FailMalformed},
		{"flattened JWS JSON serialisation", `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`, target(""), FailMalformed},
		{"non-ASCII in the signature", good + "é", target(""), FailMalformed},
		{"space inside the payload (signed over the bytes as sent)", parts[0] + ". " + parts[1] + "." + parts[2], target(""), FailSignature},
		{"padded header", parts[0] + "=." + parts[1] + "." + parts[2], target(""), FailMalformed},
		{"header not JSON", b64([]byte("nope")) + "." + parts[1] + "." + parts[2], target(""), FailHeader},
		{"crit header", s.proof(claimsFor("crit"), map[string]any{"crit": []string{"exp"}}), target(""), FailHeader},
		{"wrong typ", s.proof(claimsFor("typ"), map[string]any{"typ": "JWT"}), target(""), FailTyp},
		{"no typ", s.proof(claimsFor("notyp"), map[string]any{"typ": nil}), target(""), FailTyp},
		{"alg none, unsigned (no signature)", unsigned, target(""), FailMalformed},
		{"alg none, signature kept", noneSigned, target(""), FailAlg},
		{"symmetric alg HS256", hmacProof(), target(""), FailAlg},
		{"no jwk", s.proof(claimsFor("nojwk"), map[string]any{"jwk": nil}), target(""), FailKey},
		{"private key in jwk", privJWK, target(""), FailPrivateKey},
		{"symmetric jwk", octJWK, target(""), FailKey},
		{"RSA jwk with p, q, dp, dq, qi but no d", rsaSigned(rsaMembers("d"), rsa2048, "rsa-pq"), target(""), FailPrivateKey},
		{"RSA jwk with dp, dq, qi only", rsaSigned(rsaMembers("d", "p", "q"), rsa2048, "rsa-crt"), target(""), FailPrivateKey},
		{"RSA jwk with qi only", rsaSigned(rsaMembers("d", "p", "q", "dp", "dq"), rsa2048, "rsa-qi"), target(""), FailPrivateKey},
		{"RSA 1024-bit modulus zero-padded to 256 bytes", rsaSigned(paddedJWK, rsa1024, "rsa-pad"), target(""), FailKey},
		{"ES256 with a P-384 key", es256OnP384, target(""), FailKey},
		{"RSA key under 2048 bits", rsaSmall(), target(""), FailKey},
		{"RSA public jwk of 2048 bits (control)", rsaSigned(rsaMembers("d", "p", "q", "dp", "dq", "qi"), rsa2048, "rsa-ok"), target(""), nil},
		{"Ed25519 key of 1 byte (found by FuzzCheck)", b64([]byte(`{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"AA"}}`)) + "." + parts[1] + "." + parts[2], target(""), FailKey},
		{"P-256 key with a short x", b64([]byte(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}}`)) + "." + parts[1] + "." + parts[2], target(""), FailKey},
		{"signed by another key than its jwk", swapped, target(""), FailSignature},
		{"tampered payload", parts[0] + "." + b64([]byte(`{"jti":"x","htm":"GET","htu":"`+testURL+`","iat":1800000000}`)) + "." + parts[2], target(""), FailSignature},
		{"payload not JSON", s.proofRaw("nope"), target(""), FailClaims},
		{"no jti", s.proof(with("jti", nil), nil), target(""), FailMissingClaim},
		{"no htm", s.proof(with("htm", nil), nil), target(""), FailMissingClaim},
		{"no htu", s.proof(with("htu", nil), nil), target(""), FailMissingClaim},
		{"no iat", s.proof(with("iat", nil), nil), target(""), FailMissingClaim},
		{"iat a string", s.proof(with("iat", "now"), nil), target(""), FailClaims},
		{"other method", s.proof(with("htm", "POST"), nil), target(""), FailMethod},
		{"method case", s.proof(with("htm", "get"), nil), target(""), FailMethod},
		{"other path", s.proof(with("htu", "https://api.example.com/api/v1/bills"), nil), target(""), FailURL},
		{"other host", s.proof(with("htu", "https://evil.example.com/api/v1/invoices"), nil), target(""), FailURL},
		{"other scheme", s.proof(with("htu", "http://api.example.com/api/v1/invoices"), nil), target(""), FailURL},
		{"other port", s.proof(with("htu", "https://api.example.com:8443/api/v1/invoices"), nil), target(""), FailURL},
		{"userinfo", s.proof(with("htu", "https://u:p@api.example.com/api/v1/invoices"), nil), target(""), FailURL},
		{"not a URL", s.proof(with("htu", "::"), nil), target(""), FailURL},
		{"stale iat", s.proof(with("iat", t0.Add(-61*time.Second).Unix()), nil), target(""), FailStale},
		{"future iat", s.proof(with("iat", t0.Add(6*time.Second).Unix()), nil), target(""), FailFuture},
		{"no ath with a token", s.proof(with("ath", nil), nil), target(""), FailAthMissing},
		{"wrong ath", s.proof(with("ath", ath("another token")), nil), target(""), FailAth},
		{"ath at the token endpoint", s.proof(claimsFor("ath-te"), nil), Target{Method: "GET", Scheme: "https", Host: "api.example.com", Path: "/api/v1/invoices"}, FailAthUnwanted},
		{"key is not the token's", s.proof(claimsFor("wk"), nil), target(other.jkt()), FailWrongKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := checker(t, Config{})
			_, err := c.Check(tc.proof, tc.t)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), tc.proof) {
				t.Errorf("error echoes the request: %v", err)
			}
		})
	}
}

func (s *signer) proofRaw(payload string) string {
	s.t.Helper()
	h := jws.NewHeaders()
	must(s.t, h.Set("typ", Typ))
	must(s.t, h.Set("jwk", s.pub))
	out, err := jws.Sign([]byte(payload), jws.WithKey(s.alg, s.priv, jws.WithProtectedHeaders(h)))
	must(s.t, err)
	return string(out)
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}

// TestReplay: §11.1: a jti is accepted once within the window; the same
// jti by another key is that key's own; after the window it has expired
// with its iat anyway.
func TestReplay(t *testing.T) {
	now := t0
	c := checker(t, Config{Now: func() time.Time { return now }})
	s, other := newSigner(t, jwa.ES256), newSigner(t, jwa.EdDSA)
	p := s.proof(claimsFor("once"), nil)
	if _, err := c.Check(p, target(s.jkt())); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(p, target(s.jkt())); err != FailReplay {
		t.Fatalf("replayed proof: %v, want %v", err, FailReplay)
	}
	now = now.Add(59 * time.Second)
	if _, err := c.Check(p, target(s.jkt())); err != FailReplay {
		t.Fatalf("replayed proof near the end of the window: %v", err)
	}
	if _, err := c.Check(other.proof(claimsFor("once"), nil), target(other.jkt())); err != nil {
		t.Fatalf("another key's jti: %v", err)
	}
	now = now.Add(2 * time.Second)
	if _, err := c.Check(p, target(s.jkt())); err != FailStale {
		t.Fatalf("after the window: %v, want stale", err)
	}
}

// TestReplayBounded: the cache never holds more than its bound; a full
// generation refuses (fail closed) until it rotates.
func TestReplayBounded(t *testing.T) {
	now := t0
	c := checker(t, Config{ReplayEntries: 3, Now: func() time.Time { return now }})
	s := newSigner(t, jwa.EdDSA)
	for i := range 3 {
		if _, err := c.Check(s.proof(claimsFor(string(rune('a'+i))), nil), target("")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Check(s.proof(claimsFor("d"), nil), target("")); !errors.Is(err, ErrReplayFull) {
		t.Fatalf("full cache: %v", err)
	}
	now = now.Add(66 * time.Second)
	c2 := claimsFor("d")
	c2["iat"] = now.Unix()
	if _, err := c.Check(s.proof(c2, nil), target("")); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if n := len(c.replay.cur) + len(c.replay.prev); n > 6 {
		t.Errorf("%d entries for a bound of 3 per generation", n)
	}
}

// TestNonce: with nonces on, a proof without the server's nonce gets
// use_dpop_nonce; the current and the previous nonce pass (the previous
// one flagged so the server sends the new one); an older one does not.
func TestNonce(t *testing.T) {
	now := t0
	c := checker(t, Config{Nonce: &NonceConfig{Lifetime: time.Minute, Secret: "s"}, MaxAge: 5 * time.Minute, Now: func() time.Time { return now }})
	s := newSigner(t, jwa.ES256)
	proof := func(jti, nonce string) string {
		cl := claimsFor(jti)
		cl["iat"] = now.Unix()
		if nonce != "" {
			cl["nonce"] = nonce
		}
		return s.proof(cl, nil)
	}
	if _, err := c.Check(proof("n0", ""), target("")); err != FailNonce || !errors.Is(err, ErrUseNonce) {
		t.Fatalf("no nonce: %v", err)
	}
	if _, err := c.Check(proof("n1", "made-up"), target("")); err != FailNonce {
		t.Fatalf("made-up nonce: %v", err)
	}
	n1 := c.Nonce()
	if res, err := c.Check(proof("n2", n1), target("")); err != nil || res.StaleNonce {
		t.Fatalf("current nonce: %v %+v", err, res)
	}
	now = now.Add(time.Minute)
	if res, err := c.Check(proof("n3", n1), target("")); err != nil || !res.StaleNonce {
		t.Fatalf("previous nonce: %v %+v", err, res)
	}
	if c.Nonce() == n1 {
		t.Fatal("nonce did not change with the period")
	}
	now = now.Add(time.Minute)
	if _, err := c.Check(proof("n4", n1), target("")); err != FailNonce {
		t.Fatalf("nonce two periods old: %v", err)
	}
	// Nodes sharing the secret accept each other's nonces.
	c2 := checker(t, Config{Nonce: &NonceConfig{Lifetime: time.Minute, Secret: "s"}, Now: func() time.Time { return now }})
	if c2.Nonce() != c.Nonce() {
		t.Error("two checkers with one secret disagree on the nonce")
	}
}

// TestHTUNormalised: RFC 9449 §4.3 rule 9 compares htu after RFC 3986
// syntax-based normalisation, ignoring query and fragment.
func TestHTUNormalised(t *testing.T) {
	for _, tc := range []struct {
		htu  string
		want bool
	}{
		{"https://api.example.com/api/v1/invoices", true},
		{"HTTPS://API.Example.COM/api/v1/invoices", true},
		{"https://api.example.com:443/api/v1/invoices", true},
		{"https://api.example.com/api/v1/invoices?page=2", true},
		{"https://api.example.com/api/v1/invoices#x", true},
		{"https://api.example.com/api/v1/%69nvoices", true},
		{"https://api.example.com/api/v1/x/../invoices", true},
		{"https://api.example.com/api/v1/./invoices", true},
		{"https://api.example.com/api/v1/Invoices", false},
		{"https://api.example.com/api/v1/invoices/", false},
		{"https://api.example.com:80/api/v1/invoices", false},
		{"//api.example.com/api/v1/invoices", false},
		{"/api/v1/invoices", false},
		{"mailto:a@b", false},
	} {
		if got := htuMatches(tc.htu, Target{Scheme: "https", Host: "api.example.com", Path: "/api/v1/invoices"}); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.htu, got, tc.want)
		}
	}
	if !htuMatches("http://127.0.0.1:8080/", Target{Scheme: "http", Host: "127.0.0.1:8080"}) {
		t.Error("empty request path is /")
	}
	if !htuMatches("http://[::1]/x", Target{Scheme: "http", Host: "[::1]:80", Path: "/x"}) {
		t.Error("IPv6 host with default port")
	}
	// Behind a proxy that terminates TLS: the request arrives as
	// http://10.0.0.5:8080, the client named the public origin.
	behind := Target{Scheme: "http", Host: "10.0.0.5:8080", Path: "/x", OriginScheme: "https", OriginHost: "api.example.com"}
	if !htuMatches("https://api.example.com/x", behind) || !htuMatches("http://10.0.0.5:8080/x", behind) {
		t.Error("the public origin or the request's own is accepted")
	}
	if htuMatches("https://evil.example.com/x", behind) || htuMatches("http://api.example.com/x", behind) {
		t.Error("another origin is not")
	}
	// OriginOnly (a resource the operator named): the request's own
	// origin, which its Host makes, is not accepted.
	only := behind
	only.OriginOnly = true
	if !htuMatches("https://API.example.com:443/x", only) || htuMatches("http://10.0.0.5:8080/x", only) {
		t.Error("OriginOnly accepts the public origin alone")
	}
}

// TestProofHeader: §4.3 rule 1: exactly one DPoP header.
func TestProofHeader(t *testing.T) {
	h := http.Header{}
	if _, ok, err := Proof(h); ok || err != nil {
		t.Fatal("no header")
	}
	h.Add("DPoP", "a")
	if p, ok, err := Proof(h); !ok || err != nil || p != "a" {
		t.Fatal("one header")
	}
	h.Add("DPoP", "b")
	if _, _, err := Proof(h); err != FailRepeated {
		t.Fatalf("two headers: %v", err)
	}
}

// TestNewRefusesSymmetric: only asymmetric algorithms can be configured.
func TestNewRefusesSymmetric(t *testing.T) {
	for _, a := range []string{"HS256", "none", ""} {
		if _, err := New(Config{Algs: []string{a}}); err == nil {
			t.Errorf("alg %q accepted", a)
		}
	}
}
