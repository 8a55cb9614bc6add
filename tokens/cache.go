package tokens

import (
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// cacheEntry is a verified token. Ristretto identifies keys only by two
// 64-bit hashes, so the raw token is kept and compared on every hit: a
// hash collision must never hand one token's claims to another.
type cacheEntry struct {
	raw     string
	claims  *Claims
	expires int64 // unix nanoseconds: exp plus skew
}

// tokenCache is the verified-claims cache, bounded in bytes.
type tokenCache struct {
	c *ristretto.Cache[string, *cacheEntry]
}

// avgEntryBytes sizes ristretto's admission counters (it wants about ten
// per item the cache can hold).
const avgEntryBytes = 1 << 10

// entryOverhead approximates the bytes of a cacheEntry and its Claims
// beyond their strings.
const entryOverhead = 256

func newTokenCache(maxBytes int64) (*tokenCache, error) {
	items := max(maxBytes/avgEntryBytes, 1000)
	c, err := ristretto.NewCache(&ristretto.Config[string, *cacheEntry]{
		NumCounters: items * 10,
		MaxCost:     maxBytes,
		BufferItems: 64,
	})
	if err != nil {
		return nil, err
	}
	return &tokenCache{c: c}, nil
}

func (t *tokenCache) get(raw string) (*cacheEntry, bool) {
	return t.c.Get(raw)
}

// set caches c until expires (exp plus skew), by which time Verify would
// refuse the token anyway. Ristretto may drop the set under contention;
// the next Verify then simply verifies again.
func (t *tokenCache) set(raw string, c *Claims, expires, now time.Time) {
	ttl := expires.Sub(now)
	if ttl <= 0 {
		return
	}
	cost := int64(entryOverhead + len(raw) + len(c.Subject) + len(c.ClientID) + len(c.GrantID) +
		len(c.JTI) + len(c.BusinessID) + 2*len(c.Scope) + 16*len(c.Scopes))
	t.c.SetWithTTL(raw, &cacheEntry{raw: raw, claims: c, expires: expires.UnixNano()}, cost, ttl)
}

func (t *tokenCache) del(raw string) { t.c.Del(raw) }

// clear drops every entry, e.g. when a signing key left the set, so no
// token it signed is served from the cache.
func (t *tokenCache) clear() { t.c.Clear() }

// wait blocks until pending sets are applied (tests and benchmarks).
func (t *tokenCache) wait() { t.c.Wait() }

func (t *tokenCache) close() { t.c.Close() }
