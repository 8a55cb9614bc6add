package tokens

import (
	"testing"
	"time"
)

// BenchmarkVerifyOpaqueCached is BenchmarkVerifyCached with an opaque
// token: the same cache hit, revocation and staleness checks, and the
// opaque shape check instead of the JWT's. No store read, no allocation.
func BenchmarkVerifyOpaqueCached(b *testing.B) {
	st := &opaqueStore{Store: openStore(b)}
	s := newService(b, st, opaqueConfig(Config{Metrics: testMetrics()}))
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
	reads := st.reads.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := st.reads.Load() - reads; n != 0 {
		b.Fatalf("%d store reads on cache hits", n)
	}
}

// BenchmarkVerifyOpaqueCold is an opaque token's cache miss: one SQLite
// primary-key read and the claim checks (BenchmarkVerifyCold's signature
// verification is what it replaces).
func BenchmarkVerifyOpaqueCold(b *testing.B) {
	s := newService(b, openStore(b), opaqueConfig(Config{}))
	raw := benchToken(b, s, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.verifyFull(raw, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMintOpaque is MintAccess in the opaque format: a random
// reference and one SQLite insert instead of a signature.
func BenchmarkMintOpaque(b *testing.B) {
	s := newService(b, openStore(b), opaqueConfig(Config{}))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := s.MintAccess(Access{Subject: "u", ClientID: "c", GrantID: "g", Scopes: []string{"read:invoices"}}); err != nil {
			b.Fatal(err)
		}
	}
}
