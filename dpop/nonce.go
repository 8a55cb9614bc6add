package dpop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"
)

// NonceConfig turns on server nonces (RFC 9449 §8 and §9).
type NonceConfig struct {
	// Lifetime is how long a nonce is current; the previous one is still
	// accepted for one more Lifetime. Default 5m.
	Lifetime time.Duration
	// Secret derives the nonces. Nodes of a cluster that share it accept
	// each other's nonces; empty: a random secret per process (each node
	// then hands out its own, and a client moving between nodes is asked
	// for a new nonce once per move).
	Secret string
}

// nonces are stateless: the nonce of period n is base64url(n ‖
// HMAC-SHA256(secret, n)[:16]). The two strings a check compares with are
// computed once per period, so a check is two string comparisons.
type nonces struct {
	key      []byte
	lifetime int64 // seconds
	pair     atomic.Pointer[noncePair]
}

type noncePair struct {
	period    int64
	cur, prev string
}

func newNonces(cfg NonceConfig) (*nonces, error) {
	n := &nonces{lifetime: int64(cfg.Lifetime / time.Second)}
	if n.lifetime <= 0 {
		n.lifetime = 300
	}
	if cfg.Secret != "" {
		sum := sha256.Sum256([]byte("oauthgate dpop nonce\x00" + cfg.Secret))
		n.key = sum[:]
	} else {
		n.key = make([]byte, 32)
		if _, err := rand.Read(n.key); err != nil {
			return nil, errors.New("dpop: generating the nonce secret: " + err.Error())
		}
	}
	return n, nil
}

// current returns the nonces of the current and the previous period.
func (n *nonces) current(now time.Time) (cur, prev string) {
	period := now.Unix() / n.lifetime
	if p := n.pair.Load(); p != nil && p.period == period {
		return p.cur, p.prev
	}
	p := &noncePair{period: period, cur: n.of(period), prev: n.of(period - 1)}
	n.pair.Store(p)
	return p.cur, p.prev
}

func (n *nonces) of(period int64) string {
	var buf [8 + 16]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(period))
	m := hmac.New(sha256.New, n.key)
	m.Write(buf[:8])
	copy(buf[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(buf[:])
}
