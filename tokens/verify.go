package tokens

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"
	"go.uber.org/zap"
)

// Errors returned by Verify and Parse. Each is wrapped with a short, fixed
// reason ("invalid token: expired") that is safe to show to the client and
// to log; token contents never appear in an error.
var (
	// ErrInvalidToken: the token is malformed, forged, expired or not ours.
	ErrInvalidToken = errors.New("invalid token")
	// ErrRevoked: the token is valid but its grant or client was revoked.
	// It also matches ErrInvalidToken, which is what RFC 6750 calls it.
	ErrRevoked = errors.New("token revoked")
	// ErrUnavailable: revocations could not be read for longer than
	// Config.MaxStaleness, so no token is trusted (answer 503).
	ErrUnavailable = errors.New("token verification unavailable")
)

// reason indexes the fixed set of failure reasons, which double as metric
// label values.
type reason int

const (
	reasonMalformed reason = iota
	reasonBadHeader
	reasonUnknownKey
	reasonWrongAlg
	reasonWrongTyp
	reasonBadSignature
	reasonBadClaims
	reasonMissingClaim
	reasonWrongIssuer
	reasonWrongAudience
	reasonExpired
	reasonNotYetValid
	reasonIssuedInFuture
	reasonGrantRevoked
	reasonClientRevoked
	reasonStale
	reasonWrongPrefix
	reasonUnknownToken
	reasonLookupFailed
	reasonLookupBusy
	numReasons
)

// tokenError is a failure with a fixed reason. The values are created once
// (below), so rejecting a token allocates nothing.
type tokenError struct {
	kind   error
	reason reason
	text   string
	label  string
}

func (e *tokenError) Error() string { return e.kind.Error() + ": " + e.text }

func (e *tokenError) Unwrap() []error {
	if e.kind == ErrRevoked {
		return []error{ErrRevoked, ErrInvalidToken}
	}
	return []error{e.kind}
}

var reasonErrors = func() [numReasons]*tokenError {
	def := func(r reason, kind error, text string) *tokenError {
		return &tokenError{kind: kind, reason: r, text: text, label: strings.ReplaceAll(text, " ", "_")}
	}
	return [numReasons]*tokenError{
		reasonMalformed:      def(reasonMalformed, ErrInvalidToken, "malformed"),
		reasonBadHeader:      def(reasonBadHeader, ErrInvalidToken, "bad header"),
		reasonUnknownKey:     def(reasonUnknownKey, ErrInvalidToken, "unknown key"),
		reasonWrongAlg:       def(reasonWrongAlg, ErrInvalidToken, "wrong alg"),
		reasonWrongTyp:       def(reasonWrongTyp, ErrInvalidToken, "wrong typ"),
		reasonBadSignature:   def(reasonBadSignature, ErrInvalidToken, "bad signature"),
		reasonBadClaims:      def(reasonBadClaims, ErrInvalidToken, "bad claims"),
		reasonMissingClaim:   def(reasonMissingClaim, ErrInvalidToken, "missing claim"),
		reasonWrongIssuer:    def(reasonWrongIssuer, ErrInvalidToken, "wrong issuer"),
		reasonWrongAudience:  def(reasonWrongAudience, ErrInvalidToken, "wrong audience"),
		reasonExpired:        def(reasonExpired, ErrInvalidToken, "expired"),
		reasonNotYetValid:    def(reasonNotYetValid, ErrInvalidToken, "not yet valid"),
		reasonIssuedInFuture: def(reasonIssuedInFuture, ErrInvalidToken, "issued in the future"),
		reasonGrantRevoked:   def(reasonGrantRevoked, ErrRevoked, "grant revoked"),
		reasonClientRevoked:  def(reasonClientRevoked, ErrRevoked, "client revoked"),
		reasonStale:          def(reasonStale, ErrUnavailable, "revocation list stale"),
		reasonWrongPrefix:    def(reasonWrongPrefix, ErrInvalidToken, "wrong prefix"),
		reasonUnknownToken:   def(reasonUnknownToken, ErrInvalidToken, "unknown token"),
		reasonLookupFailed:   def(reasonLookupFailed, ErrUnavailable, "token lookup failed"),
		reasonLookupBusy:     def(reasonLookupBusy, ErrUnavailable, "token lookups busy"),
	}
}()

func fail(r reason) error { return reasonErrors[r] }

// maxTokenLen rejects oversized input before any decoding; oauthgate's
// tokens are well under 2 KB.
const maxTokenLen = 8 << 10

// Claims is a verified access token as cached. It is shared between
// callers: treat it as read-only.
type Claims struct {
	Subject, ClientID, GrantID, JTI, BusinessID string
	// Scope is the scope claim as in the token.
	Scope string
	// Scopes is Scope split once at verification.
	Scopes []string
	// Audience is the aud claim: Config.Audience, or the resources the
	// token was requested for (RFC 8707).
	Audience []string
	// IssuedAt and ExpiresAt are unix seconds.
	IssuedAt, ExpiresAt int64
	// User is true for a token issued to a signed-in user, false for one a
	// client obtained for itself (client credentials).
	User bool
	// JKT is the thumbprint of the DPoP key the token is bound to (cnf.jkt,
	// RFC 9449 §6.1); empty for a bearer token.
	JKT string
}

// Verify checks an access token: signature by a key of the current set, alg
// of that key, typ, iss, aud, lifetime and required claims (once per token,
// then from the cache), then revocation and freshness of the revocation
// list (always).
func (s *Service) Verify(raw string) (*Claims, error) {
	now := s.now()
	c, err := s.cachedOrVerify(raw, now)
	if err == nil {
		err = s.checkRevoked(c)
	}
	if err == nil {
		err = s.checkFresh(now)
	}
	if err != nil {
		s.rejected(err)
		return nil, err
	}
	return c, nil
}

// Parse is Verify without the lifetime and revocation checks, for RFC 7009
// revocation of a token whose grant id is needed. The signature must still
// come from a known key and the token must still be an access token of
// this issuer and audience.
func (s *Service) Parse(raw string) (*Claims, error) {
	c, err := s.verifyFull(raw, time.Time{})
	if err != nil {
		s.rejected(err)
		return nil, err
	}
	return c, nil
}

func (s *Service) cachedOrVerify(raw string, now time.Time) (*Claims, error) {
	// The syntax check comes before the cache, so that only the one
	// canonical spelling of a token is ever accepted, cached or not;
	// verifyJWS completes it on a miss.
	if r, ok := s.accessShape(raw); !ok {
		return nil, fail(r)
	}
	if e, ok := s.cache.get(raw); ok && e.raw == raw {
		if now.UnixNano() >= e.expires {
			s.cache.del(raw)
			return nil, fail(reasonExpired)
		}
		s.m.hits.Inc()
		return e.claims, nil
	}
	s.m.misses.Inc()
	c, err := s.verifyFull(raw, now)
	if err != nil {
		return nil, err
	}
	expires := time.Unix(c.ExpiresAt, 0).Add(skew)
	s.cache.set(raw, c, expires, now)
	return c, nil
}

// jwtHeader is the protected header as far as verification cares.
type jwtHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

// wireClaims is the access-token payload as decoded; pointers tell absent
// from zero.
type wireClaims struct {
	Iss        string       `json:"iss"`
	Sub        string       `json:"sub"`
	Aud        audience     `json:"aud"`
	ClientID   string       `json:"client_id"`
	Scope      string       `json:"scope"`
	Iat        *numericDate `json:"iat"`
	Nbf        *numericDate `json:"nbf"`
	Exp        *numericDate `json:"exp"`
	Jti        string       `json:"jti"`
	Gid        string       `json:"gid"`
	BusinessID string       `json:"authorized_business_id"`
	// SubjectType is absent from tokens minted before the claim existed.
	SubjectType *string       `json:"subject_type"`
	Cnf         *confirmation `json:"cnf"`
}

// verifyFull does the cryptographic and claim checks, or for an opaque
// token the store lookup and the same claim checks. A zero now skips the
// lifetime checks (for Parse).
func (s *Service) verifyFull(raw string, now time.Time) (*Claims, error) {
	if s.isOpaque(raw) {
		return s.verifyOpaque(raw, now)
	}
	payload, err := s.verifyJWS(raw, isAccessTyp)
	if err != nil {
		return nil, err
	}
	return s.checkClaims(payload, now)
}

// checkClaims checks an access token's claim set, signed (JWT) or stored
// (opaque), and returns it as Claims.
func (s *Service) checkClaims(payload []byte, now time.Time) (*Claims, error) {
	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, fail(reasonBadClaims)
	}
	if w.Iss != s.cfg.Issuer {
		return nil, fail(reasonWrongIssuer)
	}
	if !s.audienceOK(w.Aud) {
		return nil, fail(reasonWrongAudience)
	}
	if w.Sub == "" || w.ClientID == "" || w.Jti == "" || w.Gid == "" || w.Exp == nil || w.Iat == nil {
		return nil, fail(reasonMissingClaim)
	}
	var user bool
	switch {
	case w.SubjectType == nil:
		// Minted before subject_type: client-credentials tokens were the
		// ones whose subject is the client. Such tokens live at most one
		// access TTL after an upgrade.
		user = w.Sub != w.ClientID
	case *w.SubjectType == subjectUser:
		user = true
	case *w.SubjectType == subjectClient:
	default:
		return nil, fail(reasonBadClaims)
	}
	var jkt string
	if w.Cnf != nil {
		// A cnf we cannot honour is not ignored: the token would become a
		// bearer token.
		if w.Cnf.JKT == "" {
			return nil, fail(reasonBadClaims)
		}
		jkt = w.Cnf.JKT
	}
	if !now.IsZero() {
		if err := checkLifetime(now, *w.Exp, *w.Iat, w.Nbf); err != nil {
			return nil, err
		}
	}
	return &Claims{
		Subject:    w.Sub,
		ClientID:   w.ClientID,
		GrantID:    w.Gid,
		JTI:        w.Jti,
		BusinessID: w.BusinessID,
		Scope:      w.Scope,
		Scopes:     strings.Fields(w.Scope),
		Audience:   w.Aud,
		IssuedAt:   int64(*w.Iat),
		ExpiresAt:  int64(*w.Exp),
		User:       user,
		JKT:        jkt,
	}, nil
}

// checkLifetime applies exp, iat and nbf (if any), each with skew.
func checkLifetime(now time.Time, exp, iat numericDate, nbf *numericDate) error {
	n := now.Unix()
	sk := int64(skew / time.Second)
	switch {
	case n >= int64(exp)+sk:
		return fail(reasonExpired)
	case nbf != nil && int64(*nbf) > n+sk:
		return fail(reasonNotYetValid)
	case int64(iat) > n+sk:
		return fail(reasonIssuedInFuture)
	}
	return nil
}

func isAccessTyp(typ string) bool {
	return strings.EqualFold(typ, typAccess) || strings.EqualFold(typ, "application/"+typAccess)
}

// verifyJWS checks the compact JWS raw against the key its kid names, with
// that key's algorithm only, and returns the payload. typOK decides which
// token types the caller accepts.
func (s *Service) verifyJWS(raw string, typOK func(string) bool) ([]byte, error) {
	if !compactJWS(raw) {
		return nil, fail(reasonMalformed)
	}
	h64, _, _ := strings.Cut(raw, ".")
	hb, err := base64.RawURLEncoding.DecodeString(h64)
	if err != nil {
		return nil, fail(reasonMalformed)
	}
	var h jwtHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fail(reasonBadHeader)
	}
	// No extension we would have to understand: a crit or b64 header can
	// only come from someone else's signer.
	if h.Crit != nil || h.B64 != nil {
		return nil, fail(reasonBadHeader)
	}
	if !typOK(h.Typ) {
		return nil, fail(reasonWrongTyp)
	}
	if h.Kid == "" {
		return nil, fail(reasonUnknownKey)
	}
	k := s.keyFor(h.Kid)
	if k == nil {
		return nil, fail(reasonUnknownKey)
	}
	// The key decides the algorithm, never the token: this is what makes
	// alg "none" and HMAC-with-the-public-key impossible.
	if h.Alg != string(k.alg) {
		return nil, fail(reasonWrongAlg)
	}
	payload, err := jws.Verify([]byte(raw), jws.WithKey(k.alg, k.pub))
	if err != nil {
		return nil, fail(reasonBadSignature)
	}
	return payload, nil
}

// b64url maps each byte to its base64url value (RFC 4648 §5), or to
// b64Dot for '.' and b64Bad for anything else.
var b64url = func() (t [256]byte) {
	for i := range t {
		t[i] = b64Bad
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	t['.'] = b64Dot
	return t
}()

const (
	b64Dot = 0x40
	b64Bad = 0x80
)

// compactJWS reports whether raw is three dot-separated segments of
// canonical, unpadded base64url (RFC 7515 §2 and §7.1, RFC 4648 §3.5): no
// padding, no '+' or '/', no character outside the alphabet, no segment
// whose length no encoding has, and no set bits in the unused low bits of
// the last character. Then a token has exactly one spelling, and a
// re-encoded copy of a genuine token is refused rather than verified. One
// table lookup per byte, no allocation; it runs on every cache miss.
func compactJWS(raw string) bool {
	if len(raw) > maxTokenLen {
		return false
	}
	dots, start := 0, 0
	var or byte // OR of every table value: b64Bad set means a bad byte
	for i := 0; i < len(raw); i++ {
		v := b64url[raw[i]]
		or |= v
		if v == b64Dot {
			if dots == 2 || !canonicalEnd(raw[start:i]) {
				return false
			}
			dots++
			start = i + 1
		}
	}
	return or&b64Bad == 0 && dots == 2 && canonicalEnd(raw[start:])
}

// canonicalShape is the part of compactJWS that runs before the cache on
// every request, built from vectorised byte searches so that a cache hit
// stays cheap: three segments, no padding, no standard-alphabet '+' or
// '/', possible segment lengths and clear unused trailing bits. It refuses
// every re-encoding of a genuine token. Any other stray byte cannot be in
// the cache: only tokens that passed compactJWS (on their miss) are put
// there, and a hit compares the whole string.
func canonicalShape(raw string) bool {
	if len(raw) > maxTokenLen ||
		strings.IndexByte(raw, '=') >= 0 || strings.IndexByte(raw, '+') >= 0 || strings.IndexByte(raw, '/') >= 0 {
		return false
	}
	i := strings.IndexByte(raw, '.')
	if i < 0 || !canonicalEnd(raw[:i]) {
		return false
	}
	rest := raw[i+1:]
	j := strings.IndexByte(rest, '.')
	if j < 0 || !canonicalEnd(rest[:j]) {
		return false
	}
	sig := rest[j+1:]
	return strings.IndexByte(sig, '.') < 0 && canonicalEnd(sig)
}

// canonicalEnd checks the length and the last character of one segment: a
// final group of two or three characters carries 8 or 16 bits, so the low 4
// or 2 bits of its last character must be zero. (A last byte outside the
// alphabet reads as b64Bad here and passes; the alphabet check refuses it.)
func canonicalEnd(seg string) bool {
	switch len(seg) % 4 {
	case 0:
		return true
	case 2:
		return b64url[seg[len(seg)-1]]&0x0f == 0
	case 3:
		return b64url[seg[len(seg)-1]]&0x03 == 0
	}
	return false
}

// checkFresh fails closed when the change feed has not been read for longer
// than MaxStaleness: a revocation may have been missed.
func (s *Service) checkFresh(now time.Time) error {
	if s.cfg.MaxStaleness < 0 {
		return nil
	}
	if now.UnixNano()-s.feedOK.Load() > int64(s.cfg.MaxStaleness) {
		return fail(reasonStale)
	}
	return nil
}

// rejected counts a failure and logs it at debug (token text never logged).
func (s *Service) rejected(err error) {
	te, ok := err.(*tokenError)
	if !ok {
		return
	}
	s.m.failures[te.reason].Inc()
	if ce := s.log.Check(zap.DebugLevel, "token rejected"); ce != nil {
		ce.Write(zap.String("reason", te.text))
	}
}

// audience is the aud claim: one string or an array of them (RFC 7519).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

func (a audience) contains(s string) bool { return slices.Contains(a, s) }

// numericDate is a JWT NumericDate: a JSON number of seconds, possibly
// fractional (truncated here).
type numericDate int64

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	if math.IsNaN(f) || f < 0 || f > 1<<53 {
		return errors.New("numeric date out of range")
	}
	*d = numericDate(f)
	return nil
}
