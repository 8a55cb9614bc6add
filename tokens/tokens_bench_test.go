package tokens

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

var algs = []string{"ES256", "EdDSA", "RS256"}

func benchToken(b *testing.B, s *Service, i int) string {
	raw, _, err := s.MintAccess(Access{
		Subject: "user-" + strconv.Itoa(i), ClientID: "app-1", GrantID: "grant-" + strconv.Itoa(i),
		BusinessID: "biz-1", Scopes: []string{"read:invoices", "write:invoices", "read:contacts"},
	})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkVerifyCached is the gateway's steady state: a cache hit plus the
// revocation and staleness checks. Target: < 1µs, no allocations.
func BenchmarkVerifyCached(b *testing.B) {
	s := newService(b, openStore(b), Config{Metrics: testMetrics()})
	// A non-empty deny list, so the lookups are really done.
	if err := s.RevokeGrant(b.Context(), "some-other-grant"); err != nil {
		b.Fatal(err)
	}
	if err := s.RevokeClientTokens(b.Context(), "some-other-client"); err != nil {
		b.Fatal(err)
	}
	raw := benchToken(b, s, 0)
	if _, err := s.Verify(raw); err != nil {
		b.Fatal(err)
	}
	s.cache.wait()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCold is a cache miss: full signature and claim checks.
func BenchmarkVerifyCold(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			s := newService(b, openStore(b), Config{Alg: alg})
			raw := benchToken(b, s, 0)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.verifyFull(raw, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMintAccess(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			s := newService(b, openStore(b), Config{Alg: alg})
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := s.MintAccess(Access{Subject: "u", ClientID: "c", GrantID: "g", Scopes: []string{"read:invoices"}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyParallel is many requests at once over a working set of
// cached tokens.
func BenchmarkVerifyParallel(b *testing.B) {
	s := newService(b, openStore(b), Config{Metrics: testMetrics()})
	toks := make([]string, 256)
	for i := range toks {
		toks[i] = benchToken(b, s, i)
		if _, err := s.Verify(toks[i]); err != nil {
			b.Fatal(err)
		}
	}
	s.cache.wait()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Verify(toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkDenyList compares the atomic snapshot the deny list uses with an
// RWMutex-guarded map, under parallel readers.
func BenchmarkDenyList(b *testing.B) {
	grants := make(map[string]time.Time, 10000)
	for i := range 10000 {
		grants["grant-"+strconv.Itoa(i)] = time.Now().Add(time.Hour)
	}
	c := &Claims{GrantID: "grant-live", ClientID: "app-1"}
	b.Run("atomic-snapshot", func(b *testing.B) {
		s := &Service{}
		s.deny.Store(&denyList{grants: grants, clients: map[string]clientDeny{"x": {}}})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if s.checkRevoked(c) != nil {
					b.Error("revoked")
				}
			}
		})
	})
	b.Run("rwmutex", func(b *testing.B) {
		var mu sync.RWMutex
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				mu.RLock()
				_, revoked := grants[c.GrantID]
				mu.RUnlock()
				if revoked {
					b.Error("revoked")
				}
			}
		})
	})
}

// BenchmarkVerifyCachedRotation is the steady state with many distinct
// cached tokens in rotation (a working set far beyond the CPU caches), as
// the gateway sees with a large client base. Target: < 1µs.
func BenchmarkVerifyCachedRotation(b *testing.B) {
	const n = 20_000
	s := newService(b, openStore(b), Config{Alg: "EdDSA", CacheMaxBytes: 256 << 20}) // EdDSA: the fastest to mint
	toks := make([]string, n)
	for i := range toks {
		toks[i] = benchToken(b, s, i)
	}
	for range 2 { // ristretto may drop sets under load: a second pass
		for _, raw := range toks {
			if _, err := s.Verify(raw); err != nil {
				b.Fatal(err)
			}
		}
		s.cache.wait()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Verify(toks[i%n]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
