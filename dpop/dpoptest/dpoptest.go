// Package dpoptest makes DPoP proofs (RFC 9449 §4.2) the way a client
// does, for tests and benchmarks of the code that checks them.
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Key is a client's DPoP key pair.
type Key struct {
	alg  jwa.SignatureAlgorithm
	priv jwk.Key
	pub  jwk.Key
	jkt  string
	n    atomic.Int64
}

// NewKey generates a key for alg: ES256 (P-256) or EdDSA (Ed25519).
func NewKey(alg string) (*Key, error) {
	var raw any
	var err error
	switch alg {
	case "EdDSA":
		_, raw, err = ed25519.GenerateKey(rand.Reader)
	default:
		alg = "ES256"
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, err
	}
	priv, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, err
	}
	pub, err := priv.PublicKey()
	if err != nil {
		return nil, err
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &Key{alg: jwa.SignatureAlgorithm(alg), priv: priv, pub: pub, jkt: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// JKT is the key's RFC 7638 thumbprint, as cnf.jkt carries it.
func (k *Key) JKT() string { return k.jkt }

// Proof is what a proof says; zero fields take defaults.
type Proof struct {
	Method, URL string
	// IssuedAt defaults to now.
	IssuedAt time.Time
	// AccessToken, when set, is hashed into ath.
	AccessToken string
	Nonce       string
	// JTI defaults to a fresh one per proof.
	JTI string
}

// Sign makes the proof p, signed by k.
func (k *Key) Sign(p Proof) (string, error) {
	if p.IssuedAt.IsZero() {
		p.IssuedAt = time.Now()
	}
	if p.JTI == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		p.JTI = base64.RawURLEncoding.EncodeToString(b[:]) + strconv.FormatInt(k.n.Add(1), 36)
	}
	claims := map[string]any{"jti": p.JTI, "htm": p.Method, "htu": p.URL, "iat": p.IssuedAt.Unix()}
	if p.AccessToken != "" {
		sum := sha256.Sum256([]byte(p.AccessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if p.Nonce != "" {
		claims["nonce"] = p.Nonce
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	h := jws.NewHeaders()
	if err := h.Set(jws.TypeKey, "dpop+jwt"); err != nil {
		return "", err
	}
	if err := h.Set(jws.JWKKey, k.pub); err != nil {
		return "", err
	}
	out, err := jws.Sign(payload, jws.WithKey(k.alg, k.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", err
	}
	return string(out), nil
}
