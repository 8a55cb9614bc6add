package tokens

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkCacheEntryMemory fills the verified-token cache through Verify,
// as the gateway does, and reports the heap each entry really retains
// (token string, claims, ristretto's bookkeeping) next to the cost set
// charges for it (ristretto adds 56 B of its own to each). cache_size
// bounds the sum of the costs, so the memory bound holds only if
// heap-B/entry ≤ cost-B/entry. Run with -benchtime=1x: it always caches the
// same number of client-credentials-shaped tokens.
func BenchmarkCacheEntryMemory(b *testing.B) {
	const n = 20_000
	for b.Loop() {
		s := newService(b, openStore(b), Config{Alg: "EdDSA"}) // EdDSA: the fastest to mint
		toks := make([]string, n)
		for i := range toks {
			id := strconv.Itoa(1_000_000 + i)
			raw, _, err := s.MintAccess(Access{Subject: "yion_3fQx9bXk2LmN8pQr7sTu", ClientID: "yion_3fQx9bXk2LmN8pQr7sTu",
				GrantID: "cc_4b1f0c9e2d7a8f6b5c3e1d0a9f8e" + id, Scopes: []string{"read:invoices", "read:contacts"}})
			if err != nil {
				b.Fatal(err)
			}
			toks[i] = raw
		}
		var cost int64
		for _, raw := range toks {
			c, err := s.Verify(raw)
			if err != nil {
				b.Fatal(err)
			}
			cost += entryCost(raw, c)
		}
		s.cache.wait()
		time.Sleep(50 * time.Millisecond)
		held := 0
		for _, raw := range toks {
			if e, ok := s.cache.get(raw); ok && e.raw == raw {
				held++
			}
		}
		if held < n*9/10 {
			b.Fatalf("only %d of %d tokens cached", held, n)
		}
		// Measure what the cache alone keeps: drop the caller's tokens.
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s.cache.clear()
		s.cache.wait()
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(toks)
		// toks stay alive throughout, so the strings are not freed by
		// clear; add them back at their allocation size class.
		var rawBytes int64
		for _, raw := range toks {
			rawBytes += int64(roundupsize(len(raw)))
		}
		freed := int64(before.HeapAlloc) - int64(after.HeapAlloc)
		b.ReportMetric(float64(freed+rawBytes)/float64(held), "heap-B/entry")
		b.ReportMetric(float64(cost)/float64(n), "cost-B/entry")
		b.ReportMetric(float64(len(toks[0])), "token-B")
	}
}

// roundupsize approximates the Go allocator's size classes for the sizes
// a token string has (512–1024 bytes).
func roundupsize(n int) int {
	for _, c := range []int{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
		288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048} {
		if n <= c {
			return c
		}
	}
	return n
}
