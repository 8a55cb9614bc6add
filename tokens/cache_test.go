package tokens

import (
	"errors"
	"testing"
	"time"
)

func TestVerifyCaches(t *testing.T) {
	m := testMetrics()
	s := newService(t, openStore(t), Config{Metrics: m})
	raw := mint(t, s, Access{})
	first, err := s.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	s.cache.wait()
	second, err := s.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Error("second Verify did not return the cached claims")
	}
	if h, ms := value(m.CacheHits), value(m.CacheMisses); h != 1 || ms != 1 {
		t.Errorf("hits %v, misses %v; want 1, 1", h, ms)
	}
}

func TestCacheEntryExpiresWithToken(t *testing.T) {
	clock := newFakeClock()
	m := testMetrics()
	s := newService(t, openStore(t), withClock(Config{Metrics: m}, clock))
	raw, _, err := s.MintAccess(Access{Subject: "u", ClientID: "c", GrantID: "g", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(raw); err != nil {
		t.Fatal(err)
	}
	s.cache.wait()
	clock.Advance(time.Minute + skew - time.Second)
	if _, err := s.Verify(raw); err != nil {
		t.Fatalf("within skew of exp: %v", err)
	}
	if value(m.CacheHits) != 1 {
		t.Fatal("not served from the cache")
	}
	clock.Advance(time.Second)
	if _, err := s.Verify(raw); !errors.Is(err, ErrInvalidToken) || err.Error() != "invalid token: expired" {
		t.Fatalf("expired cached token: %v", err)
	}
	s.cache.wait()
	if _, ok := s.cache.get(raw); ok {
		t.Error("expired entry still cached")
	}
}

func TestCacheComparesRawToken(t *testing.T) {
	s := newService(t, openStore(t), Config{})
	victim := mint(t, s, Access{Subject: "victim"})
	c, err := s.Verify(victim)
	if err != nil {
		t.Fatal(err)
	}
	// Simulate a hash collision: another string's slot holds the victim's
	// entry. The lookup must not return the victim's claims for it.
	forged := victim[:len(victim)-2] + "AA"
	s.cache.c.Set(forged, &cacheEntry{raw: victim, claims: c, expires: time.Now().Add(time.Hour).UnixNano()}, 1)
	s.cache.wait()
	if got, err := s.Verify(forged); err == nil {
		t.Errorf("collision served claims of %q", got.Subject)
	}
}

func TestCacheClearedWhenKeyRemoved(t *testing.T) {
	s := newService(t, openStore(t), Config{})
	raw := mint(t, s, Access{})
	if _, err := s.Verify(raw); err != nil {
		t.Fatal(err)
	}
	s.cache.wait()
	if _, err := s.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.cache.get(raw); !ok {
		t.Fatal("rotation (no key removed) cleared the cache")
	}
	if err := s.store.DeleteKeysRetiredBefore(t.Context(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.loadKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.cache.wait()
	if _, err := s.Verify(raw); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("token of a deleted key: %v", err)
	}
}
