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
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/oauthgate/oauthgate/tokenstore"
	"go.uber.org/zap"
)

// rsaBits is the size of new RSA keys: 3072 bits is the NIST level for
// keys that must stay safe past 2030.
const rsaBits = 3072

// kidReloadInterval limits reloads of the key set caused by tokens with an
// unknown kid, so that junk tokens cannot hammer the store.
const kidReloadInterval = time.Second

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
	active *signingKey // nil only if the store holds no usable active key
	byKID  map[string]*verifyKey
	jwks   []byte
	infos  []KeyInfo
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
		raw, err = rsa.GenerateKey(rand.Reader, rsaBits)
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

// buildKeySet makes the snapshot for keys: the active key first, then the
// retired ones, newest first (keys created in the same millisecond are
// not ordered by the store). A key that cannot be decoded is skipped and
// reported.
func buildKeySet(keys []*tokenstore.Key) (*keySet, []error) {
	keys = slices.Clone(keys)
	slices.SortStableFunc(keys, func(a, b *tokenstore.Key) int {
		if a.RetiredAt.IsZero() != b.RetiredAt.IsZero() {
			if a.RetiredAt.IsZero() {
				return -1
			}
			return 1
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	ks := &keySet{byKID: make(map[string]*verifyKey, len(keys))}
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
		active := k.RetiredAt.IsZero() && ks.active == nil
		if active {
			ks.active = sk
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

// initKeys loads the key set, creating the first key if the store has none
// (InitKey makes nodes starting together agree on one), and rotates once if
// the operator changed the algorithm.
func (s *Service) initKeys(ctx context.Context) error {
	keys, err := s.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("loading key set: %w", err)
	}
	if len(keys) == 0 {
		k, err := newKey(s.cfg.Alg, s.now())
		if err != nil {
			return err
		}
		if _, err := s.store.InitKey(ctx, k); err != nil {
			return fmt.Errorf("creating first signing key: %w", err)
		}
	}
	if err := s.loadKeys(ctx); err != nil {
		return err
	}
	if a := s.keys.Load().active; a == nil || string(a.alg) != s.cfg.Alg {
		if a != nil {
			s.log.Info("signing algorithm changed; rotating", zap.String("from", string(a.alg)), zap.String("to", s.cfg.Alg))
		}
		if _, err := s.Rotate(ctx); err != nil {
			return err
		}
	}
	return nil
}

// loadKeys re-reads the key set from the store and publishes it. Loads are
// serialised so that a slow one cannot publish an older set over a newer.
func (s *Service) loadKeys(ctx context.Context) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	keys, err := s.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("loading key set: %w", err)
	}
	ks, errs := buildKeySet(keys)
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
	return nil
}

// keyFor returns the verification key for kid. An unknown kid may be a key
// another node has just created, so the key set is re-read, at most once
// per kidReloadInterval across all callers, and the lookup retried once.
func (s *Service) keyFor(kid string) *verifyKey {
	if k := s.keys.Load().byKID[kid]; k != nil {
		return k
	}
	s.kidMu.Lock()
	defer s.kidMu.Unlock()
	if k := s.keys.Load().byKID[kid]; k != nil {
		return k // another caller reloaded meanwhile
	}
	now := time.Now()
	if now.Sub(s.kidReload) < kidReloadInterval {
		return nil
	}
	s.kidReload = now
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.loadKeys(ctx); err != nil {
		if ce := s.log.Check(zap.DebugLevel, "reloading key set for unknown kid"); ce != nil {
			ce.Write(zap.Error(err))
		}
		return nil
	}
	return s.keys.Load().byKID[kid]
}

// JWKS returns the public JWK Set: the active key and the retired keys whose
// tokens may still be live. The slice is shared; do not modify it.
func (s *Service) JWKS() []byte { return s.keys.Load().jwks }

// Keys describes the signing keys, newest first.
func (s *Service) Keys() []KeyInfo {
	infos := s.keys.Load().infos
	return append([]KeyInfo(nil), infos...)
}

// Rotate creates a new active signing key with the configured algorithm.
// The store retires the previous one, which keeps verifying until every
// token it signed has expired; every node learns of the change from the
// feed.
func (s *Service) Rotate(ctx context.Context) (string, error) {
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	k, err := newKey(s.cfg.Alg, s.now())
	if err != nil {
		return "", err
	}
	if err := s.store.AddKey(ctx, k); err != nil {
		return "", fmt.Errorf("storing signing key: %w", err)
	}
	if err := s.loadKeys(ctx); err != nil {
		return "", err
	}
	s.m.rotations.Inc()
	s.log.Info("signing key rotated", zap.String("kid", k.ID), zap.String("alg", k.Alg))
	return k.ID, nil
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

// maybeRotate rotates when the newest key in the store, not merely in this
// node's snapshot, is older than RotationPeriod, so that nodes of a cluster
// do not rotate one after another.
func (s *Service) maybeRotate(ctx context.Context) error {
	if s.cfg.RotationPeriod <= 0 {
		return nil
	}
	a := s.keys.Load().active
	if a != nil && s.now().Sub(a.created) < s.cfg.RotationPeriod {
		return nil
	}
	keys, err := s.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("loading key set: %w", err)
	}
	if len(keys) > 0 && s.now().Sub(keys[0].CreatedAt) < s.cfg.RotationPeriod {
		return s.loadKeys(ctx) // another node rotated; we missed it
	}
	_, err = s.Rotate(ctx)
	return err
}
