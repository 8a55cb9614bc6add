package tokens

import (
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/dgraph-io/ristretto/v2/z"
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

// entryOverhead is the heap an entry takes beyond its strings: the
// cacheEntry (32 B) and Claims (144 B) structs, and ristretto's bookkeeping
// for the item (its store, cost and expiry maps, ~180 B at their average
// load) less the 56 B ristretto adds to every cost itself. Measured by
// BenchmarkCacheEntryMemory: the cost must not be below the real heap, or
// the cache outgrows cache_size.
const entryOverhead = 320

func newTokenCache(maxBytes int64) (*tokenCache, error) {
	items := max(maxBytes/avgEntryBytes, 1000)
	c, err := ristretto.NewCache(&ristretto.Config[string, *cacheEntry]{
		NumCounters: items * 10,
		MaxCost:     maxBytes,
		BufferItems: 64,
		KeyToHash:   keyToHash,
	})
	if err != nil {
		return nil, err
	}
	return &tokenCache{c: c}, nil
}

// keyToHash hashes a token once (the runtime's AES-based string hash)
// rather than twice, as ristretto's default does to tell colliding keys
// apart: every hit compares the raw token anyway, so a collision costs a
// re-verification, never a wrong answer. Tokens are ~600 bytes: the
// second hash was about a fifth of a cache hit.
func keyToHash(raw string) (uint64, uint64) {
	return z.MemHashString(raw), 0
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
	t.c.SetWithTTL(raw, &cacheEntry{raw: raw, claims: c, expires: expires.UnixNano()}, entryCost(raw, c), ttl)
}

// entryCost is what an entry is charged against the cache's byte budget:
// an upper bound of the heap it retains.
func entryCost(raw string, c *Claims) int64 {
	return int64(entryOverhead + allocSize(len(raw)) + allocSize(len(c.Subject)) + allocSize(len(c.ClientID)) +
		allocSize(len(c.GrantID)) + allocSize(len(c.JTI)) + allocSize(len(c.BusinessID)) + allocSize(len(c.Scope)) +
		16*len(c.Scopes)) // Scopes are substrings of Scope: only the slice's array
}

// allocSize bounds what the Go allocator takes for an n-byte string: its
// size classes round up by at most 1/8 (plus a few bytes for small ones).
func allocSize(n int) int {
	if n == 0 {
		return 0
	}
	return n + n/8 + 8
}

func (t *tokenCache) del(raw string) { t.c.Del(raw) }

// clear drops every entry, e.g. when a signing key left the set, so no
// token it signed is served from the cache.
func (t *tokenCache) clear() { t.c.Clear() }

// wait blocks until pending sets are applied (tests and benchmarks).
func (t *tokenCache) wait() { t.c.Wait() }

func (t *tokenCache) close() { t.c.Close() }
