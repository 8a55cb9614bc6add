// Package dpop checks DPoP proofs (RFC 9449): the JWT a client signs with
// its own key for every token request and every call with a DPoP-bound
// access token. The token endpoint binds tokens to the key's RFC 7638
// thumbprint (cnf.jkt); the gateway checks, on every request with such a
// token, that a fresh proof by the same key names this request.
//
// A proof is new on every request, so it is never cached: one check is one
// JWS signature verification (lestrrat-go/jwx) with the public key the
// proof carries, plus the claim checks and a replay lookup. Proof failures
// are fixed values with a fixed, loggable reason; a proof's content never
// appears in an error.
package dpop

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"math/bits"
	"net/http"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Header is the request and response header of a proof (canonical form).
const Header = "Dpop"

// NonceHeader is the response header carrying a server nonce (§8, §9).
const NonceHeader = "Dpop-Nonce"

// Typ is the proof's JOSE typ (§4.2).
const Typ = "dpop+jwt"

// MaxProofLen bounds a proof before anything is decoded. An RSA-4096
// proof with an ath is under 3 KB.
const MaxProofLen = 4 << 10

// Errors. Every failure matches exactly one of them with errors.Is.
var (
	// ErrInvalidProof is RFC 9449's invalid_dpop_proof: the proof is
	// missing, malformed, not for this request, stale or replayed.
	ErrInvalidProof = errors.New("invalid DPoP proof")
	// ErrUseNonce is use_dpop_nonce: the proof lacks the server's current
	// nonce; the client retries with the one sent in DPoP-Nonce.
	ErrUseNonce = errors.New("DPoP nonce required")
	// ErrWrongKey: a valid proof by a key other than the one the access
	// token is bound to (RFC 9449 §7.1's "invalid DPoP key binding",
	// invalid_token).
	ErrWrongKey = errors.New("DPoP key binding mismatch")
	// ErrReplayFull: the replay cache is full of live entries, so a replay
	// could not be detected; the request fails closed (answer 503).
	ErrReplayFull = errors.New("DPoP replay cache full")
)

// Failure is a proof refusal with a fixed reason. The values are created
// once, so refusing allocates nothing.
type Failure struct {
	kind error
	// Reason is a fixed lower-case phrase, safe to log and to send.
	Reason string
	// Label is Reason in snake_case, for metrics.
	Label string
}

func (f *Failure) Error() string { return f.kind.Error() + ": " + f.Reason }
func (f *Failure) Unwrap() error { return f.kind }
func newFailure(kind error, reason string) *Failure {
	return &Failure{kind: kind, Reason: reason, Label: strings.ReplaceAll(reason, " ", "_")}
}

// The refusals, one per rule.
var (
	FailMissing      = newFailure(ErrInvalidProof, "a DPoP proof is required")
	FailRepeated     = newFailure(ErrInvalidProof, "more than one DPoP header")
	FailTooLarge     = newFailure(ErrInvalidProof, "proof too large")
	FailMalformed    = newFailure(ErrInvalidProof, "proof is not a compact JWS")
	FailHeader       = newFailure(ErrInvalidProof, "proof header is malformed")
	FailTyp          = newFailure(ErrInvalidProof, "proof typ is not dpop+jwt")
	FailAlg          = newFailure(ErrInvalidProof, "proof alg is not an allowed asymmetric algorithm")
	FailKey          = newFailure(ErrInvalidProof, "proof jwk is not a usable public key for its alg")
	FailPrivateKey   = newFailure(ErrInvalidProof, "proof jwk contains a private key")
	FailSignature    = newFailure(ErrInvalidProof, "proof signature does not verify with its jwk")
	FailClaims       = newFailure(ErrInvalidProof, "proof claims are malformed")
	FailMissingClaim = newFailure(ErrInvalidProof, "proof lacks jti, htm, htu or iat")
	FailMethod       = newFailure(ErrInvalidProof, "proof htm is not the request method")
	FailURL          = newFailure(ErrInvalidProof, "proof htu is not the request URL")
	FailStale        = newFailure(ErrInvalidProof, "proof iat is too old")
	FailFuture       = newFailure(ErrInvalidProof, "proof iat is in the future")
	FailAthMissing   = newFailure(ErrInvalidProof, "proof lacks ath")
	FailAth          = newFailure(ErrInvalidProof, "proof ath is not the hash of the access token")
	FailAthUnwanted  = newFailure(ErrInvalidProof, "proof has an ath but no access token was sent")
	FailReplay       = newFailure(ErrInvalidProof, "proof jti was already used")
	FailNonce        = newFailure(ErrUseNonce, "proof lacks the current server nonce")
	FailWrongKey     = newFailure(ErrWrongKey, "proof key is not the key the access token is bound to")
	FailReplayFull   = newFailure(ErrReplayFull, "replay cache full")
)

// Failures lists every refusal, for registering metrics and for tests.
var Failures = []*Failure{
	FailMissing, FailRepeated, FailTooLarge, FailMalformed, FailHeader, FailTyp, FailAlg, FailKey,
	FailPrivateKey, FailSignature, FailClaims, FailMissingClaim, FailMethod, FailURL, FailStale,
	FailFuture, FailAthMissing, FailAth, FailAthUnwanted, FailReplay, FailNonce, FailWrongKey, FailReplayFull,
}

// DefaultAlgs are the proof algorithms accepted by default: asymmetric
// only (RFC 9449 §4.2: never none, never a MAC). Ed25519 is RFC 9864's
// fully-specified name of EdDSA with Ed25519, which oauth4webapi signs
// Ed25519 proofs with.
var DefaultAlgs = []string{"ES256", "ES384", "EdDSA", "Ed25519", "RS256", "PS256"}

// asymmetric is every algorithm a proof may ever use.
var asymmetric = map[string]bool{
	"ES256": true, "ES384": true, "ES512": true, "EdDSA": true, "Ed25519": true,
	"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true,
}

// Config is how proofs are checked.
type Config struct {
	// Algs are the accepted proof algorithms, a subset of the asymmetric
	// JWS algorithms. Default DefaultAlgs.
	Algs []string
	// MaxAge is how old a proof's iat may be. Default 60s.
	MaxAge time.Duration
	// Leeway is how far in the future a proof's iat may be (client clock
	// ahead). Default 5s.
	Leeway time.Duration
	// ReplayEntries bounds the replay cache: the jtis of at most this many
	// proofs per MaxAge+Leeway are remembered (about 50 bytes each), in two
	// generations. Default 1<<20. Once a generation is full, new proofs are
	// refused with ErrReplayFull until it rotates: fail closed.
	ReplayEntries int
	// Nonce, when set, requires server nonces (§8, §9): a proof must carry
	// one this Checker issued in the current or the previous period.
	Nonce *NonceConfig
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// ValidAlg reports whether alg may be configured as a proof algorithm.
func ValidAlg(alg string) bool { return asymmetric[alg] }

// Checker checks proofs. It is safe for concurrent use; its replay cache
// is per process (a node of a cluster remembers the jtis it saw).
type Checker struct {
	algs []string
	// verifiers are jwx's, one per accepted algorithm: the proof was
	// split and decoded once here, so it is not parsed again by jws.Verify.
	verifiers map[string]jws.Verifier
	maxAge    int64 // seconds
	leeway    int64
	now       func() time.Time
	replay    *replayCache
	nonces    *nonces
}

// New returns a Checker for cfg.
func New(cfg Config) (*Checker, error) {
	c := &Checker{algs: cfg.Algs, now: cfg.Now}
	if len(c.algs) == 0 {
		c.algs = DefaultAlgs
	}
	c.verifiers = make(map[string]jws.Verifier, len(c.algs))
	for _, a := range c.algs {
		if !asymmetric[a] {
			return nil, errors.New("dpop: algorithm " + a + " is not an asymmetric JWS algorithm")
		}
		ja := jwa.SignatureAlgorithm(a)
		if a == "Ed25519" {
			ja = jwa.EdDSA // the same signature; keyFits requires an Ed25519 key
		}
		v, err := jws.NewVerifier(ja)
		if err != nil {
			return nil, errors.New("dpop: algorithm " + a + ": " + err.Error())
		}
		c.verifiers[a] = v
	}
	if c.now == nil {
		c.now = time.Now
	}
	age, lee := cfg.MaxAge, cfg.Leeway
	if age <= 0 {
		age = 60 * time.Second
	}
	if lee <= 0 {
		lee = 5 * time.Second
	}
	c.maxAge, c.leeway = int64(age/time.Second), int64(lee/time.Second)
	n := cfg.ReplayEntries
	if n <= 0 {
		n = 1 << 20
	}
	c.replay = newReplayCache(n, age+lee)
	if cfg.Nonce != nil {
		var err error
		if c.nonces, err = newNonces(*cfg.Nonce); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// WithOwnReplay returns a Checker with c's rules and nonces and a replay
// cache of its own, as large as c's. The token endpoint checks proofs
// with one: anyone can make proofs that pass there (a public client has
// no secret), and they must not fill the cache that requests with bound
// tokens depend on. A token endpoint proof (no ath, the token URL) can
// never pass at a resource, so two caches remember nothing less.
func (c *Checker) WithOwnReplay() *Checker {
	d := *c
	d.replay = newReplayCache(c.replay.max, c.replay.span)
	return &d
}

// Algs are the accepted algorithms, for dpop_signing_alg_values_supported
// and the algs challenge parameter. Shared: read-only.
func (c *Checker) Algs() []string { return c.algs }

// NoncesRequired reports whether proofs must carry a server nonce.
func (c *Checker) NoncesRequired() bool { return c.nonces != nil }

// Nonce returns the nonce to send in DPoP-Nonce now, "" when nonces are
// off.
func (c *Checker) Nonce() string {
	if c.nonces == nil {
		return ""
	}
	cur, _ := c.nonces.current(c.now())
	return cur
}

// Target is the request a proof must name.
type Target struct {
	// Method is the request method (htm).
	Method string
	// Scheme ("http" or "https"), Host (with port, if any) and Path
	// (decoded, as url.URL.Path) of the request URL (htu, §4.3: without
	// query and fragment, compared after syntax-based normalisation).
	Scheme, Host, Path string
	// OriginScheme and OriginHost, when set, are another origin the
	// request is known by and that htu may name instead: the public origin
	// of a resource behind a proxy that terminates TLS or rewrites Host.
	OriginScheme, OriginHost string
	// OriginOnly, with OriginHost set, accepts only that origin, not the
	// request's own: its Host (and, behind a proxy, its scheme) is
	// whatever the client sends, so a catch-all site would otherwise take
	// a proof made for another origin the same token was sent to.
	OriginOnly bool
	// AccessToken is the token sent with the proof, whose hash the proof's
	// ath must be; empty at the token endpoint, where the proof has none.
	AccessToken string
	// JKT, when set, is the thumbprint the proof's key must have (the
	// token's cnf.jkt).
	JKT string
}

// Result is what a valid proof says.
type Result struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key,
	// base64url.
	JKT string
	// StaleNonce is true when the proof's nonce is from the previous
	// period: send the current one in DPoP-Nonce.
	StaleNonce bool
}

// Proof returns the DPoP header of a request: ok false without one; a
// FailRepeated error when there are several (§4.3 rule 1).
func Proof(h http.Header) (proof string, ok bool, err error) {
	vals := h[Header]
	switch len(vals) {
	case 0:
		return "", false, nil
	case 1:
		return vals[0], true, nil
	}
	return "", true, FailRepeated
}

// header is a proof's protected header as far as checking cares.
type header struct {
	Typ  string          `json:"typ"`
	Alg  string          `json:"alg"`
	JWK  json.RawMessage `json:"jwk"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

// claims is a proof's payload; iat is a pointer to tell absent from 0.
type claims struct {
	Jti   string   `json:"jti"`
	Htm   string   `json:"htm"`
	Htu   string   `json:"htu"`
	Iat   *float64 `json:"iat"`
	Ath   *string  `json:"ath"`
	Nonce string   `json:"nonce"`
}

// parsed is a proof whose signature verified with its own key.
type parsed struct {
	claims
	jkt string
}

// Check verifies proof for the request t and returns its key's thumbprint.
// The rules run in RFC 9449 §4.3's order, then the key binding (§7.1) and
// the replay check last, so a proof that fails anything else does not use
// up a replay entry.
func (c *Checker) Check(proof string, t Target) (Result, error) {
	p, err := c.parse(proof)
	if err != nil {
		return Result{}, err
	}
	if p.Htm != t.Method {
		return Result{}, FailMethod
	}
	if !htuMatches(p.Htu, t) {
		return Result{}, FailURL
	}
	now := c.now()
	iat := int64(*p.Iat)
	switch n := now.Unix(); {
	case iat < n-c.maxAge:
		return Result{}, FailStale
	case iat > n+c.leeway:
		return Result{}, FailFuture
	}
	var res Result
	if c.nonces != nil {
		cur, prev := c.nonces.current(now)
		switch {
		case p.Nonce != "" && p.Nonce == cur:
		case p.Nonce != "" && p.Nonce == prev:
			res.StaleNonce = true
		default:
			return Result{}, FailNonce
		}
	}
	switch {
	case t.AccessToken == "" && p.Ath != nil:
		return Result{}, FailAthUnwanted
	case t.AccessToken != "" && p.Ath == nil:
		return Result{}, FailAthMissing
	case t.AccessToken != "" && !athMatches(*p.Ath, t.AccessToken):
		return Result{}, FailAth
	}
	if t.JKT != "" && subtle.ConstantTimeCompare([]byte(t.JKT), []byte(p.jkt)) != 1 {
		return Result{}, FailWrongKey
	}
	if err := c.replay.use(p.jkt, p.Jti, now); err != nil {
		return Result{}, err
	}
	res.JKT = p.jkt
	return res, nil
}

// parse checks a proof's form, header, key and signature, and decodes its
// claims. It is the part of Check that reads untrusted bytes (fuzzed).
func (c *Checker) parse(proof string) (*parsed, error) {
	if len(proof) > MaxProofLen {
		return nil, FailTooLarge
	}
	h64, rest, ok := strings.Cut(proof, ".")
	if !ok || h64 == "" {
		return nil, FailMalformed
	}
	p64, s64, ok := strings.Cut(rest, ".")
	if !ok || p64 == "" || s64 == "" || strings.IndexByte(s64, '.') >= 0 {
		return nil, FailMalformed
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(h64)
	if err != nil {
		return nil, FailMalformed
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, FailHeader
	}
	// No extension a proof needs: crit or b64 can only confuse a verifier.
	if h.Crit != nil || h.B64 != nil {
		return nil, FailHeader
	}
	if !strings.EqualFold(h.Typ, Typ) {
		return nil, FailTyp
	}
	// The configured list decides: none and the HMACs are never in it.
	verifier := c.verifiers[h.Alg]
	if verifier == nil {
		return nil, FailAlg
	}
	if len(h.JWK) == 0 || h.JWK[0] != '{' {
		return nil, FailKey
	}
	key, err := jwk.ParseKey(h.JWK)
	if err != nil {
		return nil, FailKey
	}
	if priv, err := jwk.IsPrivateKey(key); err != nil || priv {
		if err == nil {
			return nil, FailPrivateKey
		}
		return nil, FailKey // a symmetric (oct) key
	}
	// jwx types a key by "d" alone; an RSA jwk with its primes or CRT
	// values but no "d" still carries the private key (RFC 7518 §6.3.2).
	for _, m := range privateMembers {
		if _, ok := key.Get(m); ok {
			return nil, FailPrivateKey
		}
	}
	if !keyFits(key, h.Alg) {
		return nil, FailKey
	}
	// RFC 7515 §5.2: the signature over ASCII(header64 '.' payload64),
	// checked by jwx's verifier for the header's alg with the header's key.
	sig, err := base64.RawURLEncoding.Strict().DecodeString(s64)
	if err != nil {
		return nil, FailMalformed
	}
	if err := verifier.Verify([]byte(proof[:len(h64)+1+len(p64)]), sig, key); err != nil {
		return nil, FailSignature
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(p64)
	if err != nil {
		return nil, FailMalformed
	}
	var p parsed
	if err := json.Unmarshal(payload, &p.claims); err != nil {
		return nil, FailClaims
	}
	if p.Jti == "" || p.Htm == "" || p.Htu == "" || p.Iat == nil {
		return nil, FailMissingClaim
	}
	if f := *p.Iat; math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<53 || len(p.Jti) > 256 {
		return nil, FailClaims
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, FailKey
	}
	p.jkt = base64.RawURLEncoding.EncodeToString(tp)
	return &p, nil
}

// privateMembers are the JWK members of private key material (RFC 7518
// §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2): none may be in a proof's jwk.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// keyFits checks that the key is of the family and size alg needs: the
// curve of an ES alg with coordinates of its size, a 32-byte Ed25519 key
// for EdDSA (crypto/ed25519 panics on any other length), RSA of at least
// 2048 bits.
func keyFits(key jwk.Key, alg string) bool {
	switch k := key.(type) {
	case jwk.ECDSAPublicKey:
		crv, size := map[string]jwa.EllipticCurveAlgorithm{"ES256": jwa.P256, "ES384": jwa.P384, "ES512": jwa.P521}[alg],
			map[string]int{"ES256": 32, "ES384": 48, "ES512": 66}[alg]
		return crv != "" && k.Crv() == crv && len(k.X()) == size && len(k.Y()) == size
	case jwk.OKPPublicKey:
		return (alg == "EdDSA" || alg == "Ed25519") && k.Crv() == jwa.Ed25519 && len(k.X()) == ed25519.PublicKeySize
	case jwk.RSAPublicKey:
		return (strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")) && bitLen(k.N()) >= 2048
	}
	return false
}

// bitLen is the length in bits of the big-endian unsigned integer b,
// whatever zero bytes pad it: a 1024-bit modulus sent as 256 bytes is 1024
// bits.
func bitLen(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return (len(b)-i-1)*8 + bits.Len8(c)
		}
	}
	return 0
}

// athMatches compares ath with base64url(SHA-256(token)) (§4.2).
func athMatches(ath, token string) bool {
	sum := sha256.Sum256([]byte(token))
	var buf [43]byte
	base64.RawURLEncoding.Encode(buf[:], sum[:])
	return subtle.ConstantTimeCompare(buf[:], []byte(ath)) == 1
}

// ValidJKT reports whether s has the shape of a SHA-256 thumbprint.
func ValidJKT(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}
