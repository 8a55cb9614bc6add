package tokens

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/oauthgate/oauthgate/tokenstore"
	"go.uber.org/zap"
)

// rsaBits is the size of new RSA keys: 3072 bits is the NIST level for
// keys that must stay safe past 2030.
const rsaBits = 3072

// newRSAKey makes an RSA key; tests replace it, since a key takes up to a
// second of CPU to make.
var newRSAKey = func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, rsaBits) }

// Reloads of the key set for unknown kids (see kidGate).
const (
	// kidReloadInterval spaces reloads caused by unknown kids, so that
	// junk tokens cannot hammer the store: at most ten a second per node.
	// It is also the longest a genuine new kid waits during such a flood.
	kidReloadInterval = 100 * time.Millisecond
	// kidReloadTimeout bounds one such reload.
	kidReloadTimeout = 2 * time.Second
	// kidWait bounds how long a caller waits for the reload it needs: a
	// safety net for a hung store, longer than interval plus timeout.
	kidWait = kidReloadInterval + kidReloadTimeout + 500*time.Millisecond
	// kidJunkMax bounds the negative cache of kids the store did not have;
	// kidJunkLen is the longest kid it remembers (oauthgate's are 43
	// characters).
	kidJunkMax = 4096
	kidJunkLen = 128
)

// kidGate coordinates the reloads of the key set that unknown kids cause.
//
// A kid this node does not know is either a key another node has just
// created or junk, and only the store can tell. A key is stored before any
// token signed with it exists, so a load of the key set that starts after
// the token arrived finds its key: every caller with an unknown kid waits
// (up to kidWait) for such a load, one it triggers, joins or that the
// watcher runs, and answers from it. A key the store holds is therefore
// never refused. Junk costs little: reloads for unknown kids run one at a
// time, at most one per kidReloadInterval, and a kid such a load did not
// find is remembered and refused at once afterwards.
type kidGate struct {
	mu sync.Mutex
	// started counts loads of the key set begun; completed is the number
	// of the latest one that succeeded. A caller arriving when started is
	// n is answered by any load numbered above n.
	started, completed uint64
	// changed is closed and replaced whenever a load ends.
	changed chan struct{}
	// pending is set while a reload for unknown kids is scheduled or
	// running; last is when the latest one started (by Config.Clock).
	pending bool
	last    time.Time
	// junk holds kids a load begun after their arrival did not find.
	junk map[string]struct{}
}

// begin numbers a load of the key set that is about to read the store.
func (g *kidGate) begin() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.started++
	return g.started
}

// end records the outcome of load n and wakes the waiters.
func (g *kidGate) end(n uint64, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ok && n > g.completed {
		g.completed = n
	}
	g.wake()
}

// wake wakes every waiter; g.mu is held.
func (g *kidGate) wake() {
	if g.changed != nil {
		close(g.changed)
	}
	g.changed = make(chan struct{})
}

// rememberJunk notes kid as unknown to the store; g.mu is held.
func (g *kidGate) rememberJunk(kid string) {
	if len(kid) > kidJunkLen {
		return
	}
	if g.junk == nil || len(g.junk) >= kidJunkMax {
		g.junk = make(map[string]struct{})
	}
	g.junk[kid] = struct{}{}
}

// KeyInfo describes a signing key for the admin API; it has no private
// material.
type KeyInfo struct {
	ID      string    `json:"kid"`
	Alg     string    `json:"alg"`
	Created time.Time `json:"created"`
	// Retired is zero for the active key.
	Retired time.Time `json:"retired,omitzero"`
	Active  bool      `json:"active"`
}

// keySet is an immutable snapshot of the signing keys, swapped atomically
// whenever the store's key set changes.
type keySet struct {
	// active signs access tokens and oauthgate's internal tokens: the
	// active key of Config.Alg, else the newest active key; nil only if
	// the store holds no usable active key.
	active *signingKey
	// signers is the newest active key of each algorithm, for id_tokens
	// of clients that ask for an algorithm (OIDC Registration's
	// id_token_signed_response_alg).
	signers map[jwa.SignatureAlgorithm]*signingKey
	byKID   map[string]*verifyKey
	jwks    []byte
	infos   []KeyInfo
}

type signingKey struct {
	kid     string
	alg     jwa.SignatureAlgorithm
	priv    crypto.Signer
	created time.Time
}

type verifyKey struct {
	alg jwa.SignatureAlgorithm
	pub crypto.PublicKey
}

// parseAlg accepts the algorithms oauthgate signs with, and nothing else.
func parseAlg(alg string) (jwa.SignatureAlgorithm, error) {
	switch alg {
	case "ES256":
		return jwa.ES256, nil
	case "EdDSA":
		return jwa.EdDSA, nil
	case "RS256":
		return jwa.RS256, nil
	}
	return "", fmt.Errorf("unsupported signing algorithm %q (want ES256, EdDSA or RS256)", alg)
}

// newKey generates a signing key for alg and serialises it for the store.
// Its kid is the RFC 7638 thumbprint, so it is unique without coordination.
func newKey(alg string, now time.Time) (*tokenstore.Key, error) {
	var raw any
	var err error
	switch alg {
	case "ES256":
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	case "RS256":
		raw, err = newRSAKey()
	default:
		_, err = parseAlg(alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", alg, err)
	}
	k, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("computing key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		return nil, err
	}
	if err := k.Set(jwk.AlgorithmKey, jwa.SignatureAlgorithm(alg)); err != nil {
		return nil, err
	}
	buf, err := json.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	return &tokenstore.Key{ID: kid, Alg: alg, PrivateJWK: buf, CreatedAt: now}, nil
}

// decodeKey turns a stored key into its signer, checking that the key type
// matches the recorded algorithm so a key can never be used with another.
func decodeKey(k *tokenstore.Key) (*signingKey, error) {
	alg, err := parseAlg(k.Alg)
	if err != nil {
		return nil, err
	}
	jk, err := jwk.ParseKey(k.PrivateJWK)
	if err != nil {
		return nil, fmt.Errorf("parsing key: %w", err)
	}
	var raw any
	if err := jk.Raw(&raw); err != nil {
		return nil, fmt.Errorf("decoding key: %w", err)
	}
	var priv crypto.Signer
	switch p := raw.(type) {
	case *ecdsa.PrivateKey:
		if alg == jwa.ES256 && p.Curve == elliptic.P256() {
			priv = p
		}
	case ed25519.PrivateKey:
		if alg == jwa.EdDSA {
			priv = p
		}
	case *rsa.PrivateKey:
		if alg == jwa.RS256 && p.N.BitLen() >= 2048 {
			priv = p
		}
	}
	if priv == nil {
		return nil, fmt.Errorf("key type %T does not fit algorithm %s", raw, alg)
	}
	return &signingKey{kid: k.ID, alg: alg, priv: priv, created: k.CreatedAt}, nil
}

// buildKeySet makes the snapshot for keys: the active keys first (the one
// of alg, which signs access tokens, before the others), then the retired
// ones, newest first (keys created in the same millisecond are not ordered
// by the store). A key that cannot be decoded is skipped and reported.
func buildKeySet(keys []*tokenstore.Key, alg string) (*keySet, []error) {
	keys = slices.Clone(keys)
	first := func(b bool) int {
		if b {
			return -1
		}
		return 1
	}
	slices.SortStableFunc(keys, func(a, b *tokenstore.Key) int {
		if a.RetiredAt.IsZero() != b.RetiredAt.IsZero() {
			return first(a.RetiredAt.IsZero())
		}
		if a.RetiredAt.IsZero() && (a.Alg == alg) != (b.Alg == alg) {
			return first(a.Alg == alg)
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	ks := &keySet{byKID: make(map[string]*verifyKey, len(keys)), signers: make(map[jwa.SignatureAlgorithm]*signingKey)}
	set := jwk.NewSet()
	var errs []error
	for _, k := range keys {
		sk, err := decodeKey(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("key %s: %w", k.ID, err))
			continue
		}
		if _, dup := ks.byKID[k.ID]; dup {
			continue
		}
		ks.byKID[k.ID] = &verifyKey{alg: sk.alg, pub: sk.priv.Public()}
		active := k.RetiredAt.IsZero()
		if active && ks.active == nil {
			ks.active = sk
		}
		if active && ks.signers[sk.alg] == nil {
			ks.signers[sk.alg] = sk
		}
		ks.infos = append(ks.infos, KeyInfo{ID: k.ID, Alg: k.Alg, Created: k.CreatedAt, Retired: k.RetiredAt, Active: active})

		pub, err := jwk.FromRaw(sk.priv.Public())
		if err == nil {
			err = errors.Join(
				pub.Set(jwk.KeyIDKey, k.ID),
				pub.Set(jwk.AlgorithmKey, sk.alg),
				pub.Set(jwk.KeyUsageKey, jwk.ForSignature),
				set.AddKey(pub),
			)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("key %s: publishing: %w", k.ID, err))
		}
	}
	buf, err := json.Marshal(set)
	if err != nil {
		errs = append(errs, fmt.Errorf("encoding JWKS: %w", err))
		buf = []byte(`{"keys":[]}`)
	}
	ks.jwks = buf
	return ks, errs
}

// initKeys loads the key set and, when it lacks a key of an algorithm this
// node signs with (a new store, a new signing_alg, or a store from before
// the RS256 id_token key), rotates. The store decides under a lock, so
// nodes starting together make one key set.
func (s *Service) initKeys(ctx context.Context) error {
	if err := s.loadKeys(ctx); err != nil {
		return err
	}
	if !s.lacksAlg(s.activeKeys()) {
		return nil
	}
	if a := s.keys.Load().active; a != nil && string(a.alg) != s.cfg.Alg {
		s.log.Info("signing algorithm changed; rotating", zap.String("from", string(a.alg)), zap.String("to", s.cfg.Alg))
	}
	_, _, err := s.rotate(ctx, s.lacksAlg)
	return err
}

// algs are the algorithms of the active key set: Config.Alg, which signs
// access tokens, and RS256, which OpenID Connect Discovery 1.0 §3 requires
// every provider to offer for id_tokens.
func (s *Service) algs() []string { return IDTokenAlgsFor(s.cfg.Alg) }

// IDTokenAlgs lists the algorithms an id_token can be signed with, the
// default (Config.Alg) first.
func (s *Service) IDTokenAlgs() []string { return s.algs() }

// IDTokenAlgsFor is IDTokenAlgs of a Service configured with signing
// algorithm alg ("" for the default).
func IDTokenAlgsFor(alg string) []string {
	switch alg {
	case "":
		alg = DefaultAlg
	case "RS256":
		return []string{"RS256"}
	}
	return []string{alg, "RS256"}
}

// activeKeys describes the active keys of the current snapshot, newest
// first, as the store would list them.
func (s *Service) activeKeys() []*tokenstore.Key {
	var out []*tokenstore.Key
	for _, ki := range s.keys.Load().infos {
		if ki.Active {
			out = append(out, &tokenstore.Key{ID: ki.ID, Alg: ki.Alg, CreatedAt: ki.Created})
		}
	}
	slices.SortStableFunc(out, func(a, b *tokenstore.Key) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out
}

// lacksAlg reports whether active has no key of an algorithm in algs.
func (s *Service) lacksAlg(active []*tokenstore.Key) bool {
	for _, alg := range s.algs() {
		if !slices.ContainsFunc(active, func(k *tokenstore.Key) bool { return k.Alg == alg }) {
			return true
		}
	}
	return false
}

// rotationDue reports whether active needs replacing: it lacks an
// algorithm, or its newest key of one is older than RotationPeriod.
func (s *Service) rotationDue(active []*tokenstore.Key) bool {
	if s.lacksAlg(active) {
		return true
	}
	now := s.now()
	for _, alg := range s.algs() {
		i := slices.IndexFunc(active, func(k *tokenstore.Key) bool { return k.Alg == alg })
		if now.Sub(active[i].CreatedAt) >= s.cfg.RotationPeriod {
			return true
		}
	}
	return false
}

// loadKeys re-reads the key set from the store and publishes it. Loads are
// serialised so that a slow one cannot publish an older set over a newer.
func (s *Service) loadKeys(ctx context.Context) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	n := s.kids.begin()
	keys, err := s.store.ListKeys(ctx)
	if err != nil {
		s.kids.end(n, false)
		return fmt.Errorf("loading key set: %w", err)
	}
	ks, errs := buildKeySet(keys, s.cfg.Alg)
	for _, err := range errs {
		// Reported once per process, not on every reload.
		if msg := err.Error(); !s.badKeys[msg] {
			if s.badKeys == nil {
				s.badKeys = make(map[string]bool)
			}
			s.badKeys[msg] = true
			s.log.Error("unusable signing key skipped", zap.Error(err))
		}
	}
	old := s.keys.Swap(ks)
	if old != nil {
		for kid := range old.byKID {
			if ks.byKID[kid] == nil {
				// A key is gone: drop cached tokens rather than trust
				// what it signed until they expire.
				s.cache.clear()
				break
			}
		}
	}
	s.kids.end(n, true)
	return nil
}

// keyFor returns the verification key for kid: from the current snapshot
// (no lock, no allocation), or after a reload of the key set when the kid
// is unknown (see kidGate).
func (s *Service) keyFor(kid string) *verifyKey {
	if k := s.keys.Load().byKID[kid]; k != nil {
		return k
	}
	return s.keyAfterReload(kid)
}

// keyAfterReload waits for a load of the key set that began after the call
// and returns kid's key from it, or nil when the store does not have it.
func (s *Service) keyAfterReload(kid string) *verifyKey {
	g := &s.kids
	timeout := time.NewTimer(kidWait)
	defer timeout.Stop()
	g.mu.Lock()
	if _, junk := g.junk[kid]; junk {
		g.mu.Unlock()
		return nil
	}
	want := g.started + 1
	for {
		if k := s.keys.Load().byKID[kid]; k != nil {
			g.mu.Unlock()
			return k
		}
		if g.completed >= want {
			g.rememberJunk(kid)
			g.mu.Unlock()
			return nil
		}
		if !g.pending {
			g.pending = true
			go s.reloadForKids(g.last.Add(kidReloadInterval).Sub(s.now()))
		}
		if g.changed == nil {
			g.changed = make(chan struct{})
		}
		changed := g.changed
		g.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			if ce := s.log.Check(zap.DebugLevel, "no key set reload in time for an unknown kid"); ce != nil {
				ce.Write(zap.Duration("waited", kidWait))
			}
			return s.keys.Load().byKID[kid]
		}
		g.mu.Lock()
	}
}

// reloadForKids reloads the key set for the callers waiting in
// keyAfterReload, after delay (the throttle).
func (s *Service) reloadForKids(delay time.Duration) {
	if delay > 0 {
		select {
		case <-s.cfg.after(delay):
		case <-s.life.Done():
		}
	}
	s.kids.mu.Lock()
	s.kids.last = s.now()
	s.kids.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.life, kidReloadTimeout)
	err := s.loadKeys(ctx)
	cancel()
	if err != nil {
		if ce := s.log.Check(zap.DebugLevel, "reloading key set for unknown kid"); ce != nil {
			ce.Write(zap.Error(err))
		}
	}
	s.kids.mu.Lock()
	s.kids.pending = false
	s.kids.wake() // waiters not answered by this load schedule the next
	s.kids.mu.Unlock()
}

// JWKS returns the public JWK Set: the active key and the retired keys whose
// tokens may still be live. The slice is shared; do not modify it.
func (s *Service) JWKS() []byte { return s.keys.Load().jwks }

// Keys describes the signing keys, newest first.
func (s *Service) Keys() []KeyInfo {
	infos := s.keys.Load().infos
	return append([]KeyInfo(nil), infos...)
}

// Rotate replaces the active key set: a new key of the configured
// algorithm, which it returns the kid of, and a new RS256 id_token key. The
// store retires the previous ones, which keep verifying until every token
// they signed has expired; every node learns of the change from the feed.
func (s *Service) Rotate(ctx context.Context) (string, error) {
	kid, _, err := s.rotate(ctx, nil)
	return kid, err
}

// rotate stores a new key set if due (nil: always) agrees, under the
// store's key lock, and reloads the key set. It returns the kid of the new
// access-token key and whether the store took the set.
func (s *Service) rotate(ctx context.Context, due func([]*tokenstore.Key) bool) (string, bool, error) {
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	keys := make([]*tokenstore.Key, 0, 2)
	now := s.now()
	for _, alg := range s.algs() {
		k, err := newKey(alg, now)
		if err != nil {
			return "", false, err
		}
		keys = append(keys, k)
	}
	rotated, err := s.store.RotateKeys(ctx, keys, due)
	if err != nil {
		return "", false, fmt.Errorf("storing signing keys: %w", err)
	}
	if err := s.loadKeys(ctx); err != nil {
		return "", rotated, err
	}
	if !rotated {
		return "", false, nil
	}
	s.m.rotations.Inc()
	kids := make([]string, len(keys))
	for i, k := range keys {
		kids[i] = k.Alg + ":" + k.ID
	}
	s.log.Info("signing keys rotated", zap.Strings("keys", kids))
	return keys[0].ID, true, nil
}

// keyRetention is how long a retired key keeps verifying: the longest token
// lifetime, plus clock skew, plus the time a node may go on signing with a
// key it has not yet heard was retired.
func (s *Service) keyRetention() time.Duration {
	r := s.maxTokenTTL() + skew
	if s.cfg.MaxStaleness > 0 {
		r += s.cfg.MaxStaleness
	}
	return r
}

// maybeRotate rotates when the active keys are older than RotationPeriod.
// The store makes the final decision under its key lock, so that nodes of
// a cluster ticking at the same moment make one rotation per period
// between them; the snapshot is asked first so that a node does not make
// keys every tick for nothing.
func (s *Service) maybeRotate(ctx context.Context) error {
	if s.cfg.RotationPeriod <= 0 || !s.rotationDue(s.activeKeys()) {
		return nil
	}
	_, _, err := s.rotate(ctx, s.rotationDue)
	return err
}

// MinRotationPeriod is the shortest automatic rotation period accepted.
// Housekeeping considers rotation once a minute, so a shorter period
// cannot be honoured, and a key retired early keeps verifying (and stays
// in the JWKS) until its tokens expire anyway: rotating more often than
// tokens live adds keys to every JWKS without shortening any key's use.
const MinRotationPeriod = time.Hour

// CheckRotationPeriod refuses an automatic rotation period that makes no
// sense: negative, below MinRotationPeriod, or below the access-token
// lifetime (accessTTL; 0 means the default). Zero turns rotation off.
func CheckRotationPeriod(period, accessTTL time.Duration) error {
	if accessTTL <= 0 {
		accessTTL = DefaultAccessTTL
	}
	switch {
	case period == 0:
		return nil
	case period < 0:
		return fmt.Errorf("key rotation period %v is negative (leave it out, or 0, to rotate only on request)", period)
	case period < MinRotationPeriod:
		return fmt.Errorf("key rotation period %v is shorter than the minimum %v", period, MinRotationPeriod)
	case period < accessTTL:
		return fmt.Errorf("key rotation period %v is shorter than the access-token lifetime %v: every key would be retired while its tokens live, which only grows the JWKS", period, accessTTL)
	}
	return nil
}
