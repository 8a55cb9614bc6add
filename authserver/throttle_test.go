package authserver

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/throttle"
	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// countingStore counts the throttle's store calls.
type countingStore struct {
	throttle.Store
	records, clears, lists atomic.Int64
}

func (c *countingStore) RecordFailures(ctx context.Context, keys []string, now, since, expires time.Time) ([]tokenstore.Failures, error) {
	c.records.Add(1)
	return c.Store.RecordFailures(ctx, keys, now, since, expires)
}

func (c *countingStore) ClearFailures(ctx context.Context, keys []string, now time.Time) error {
	c.clears.Add(1)
	return c.Store.ClearFailures(ctx, keys, now)
}

func (c *countingStore) ListFailures(ctx context.Context, now time.Time) ([]tokenstore.Failures, error) {
	c.lists.Add(1)
	return c.Store.ListFailures(ctx, now)
}

// throttleServer is a token endpoint on SQLite with one confidential
// client and throttling on, its store calls counted.
func throttleServer(tb testing.TB) (s *Server, cs *countingStore, basic func(id, secret string) string) {
	tb.Helper()
	s = openServer(tb, Config{Issuer: benchIssuer, Scopes: []Scope{{Name: "read:invoices"}}}, tokens.Config{})
	now := time.Now()
	if err := s.store.CreateClient(context.Background(), &tokenstore.Client{
		ID: "bench-client", SecretHash: tokens.HashSecret("bench-secret"), Name: "Bench", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"read:invoices"}, Businesses: []string{"biz_bench"}, CreatedAt: now, UpdatedAt: now,
	}); err != nil {
		tb.Fatal(err)
	}
	cs = &countingStore{Store: s.store.(throttle.Store)}
	th, err := throttle.New(cs, throttle.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	s.throttle = th
	return s, cs, func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
}

// TestClientAuthSuccessCostsTheThrottleNothing: a successful client
// authentication neither writes nor reads throttle state, whether or not
// other keys have failures; only one with failures of its own clears them,
// once.
func TestClientAuthSuccessCostsTheThrottleNothing(t *testing.T) {
	s, cs, basic := throttleServer(t)
	good := basic("bench-client", "bench-secret")
	const body = "grant_type=client_credentials"
	issue := func(n int) {
		t.Helper()
		for range n {
			if w := post(s, "/oauth/token", good, body); w.Code != http.StatusOK {
				t.Fatalf("token: %d %s", w.Code, w.Body)
			}
		}
	}
	calls := func() [3]int64 { return [3]int64{cs.records.Load(), cs.clears.Load(), cs.lists.Load()} }

	issue(20)
	if got := calls(); got != [3]int64{} {
		t.Fatalf("successes with no failures anywhere: store calls %v", got)
	}
	if w := post(s, "/oauth/token", basic("someone-else", "guess"), body); w.Code != http.StatusUnauthorized {
		t.Fatalf("unknown client: %d", w.Code)
	}
	issue(20)
	if got := calls(); got != [3]int64{2, 0, 0} {
		t.Fatalf("successes with failures elsewhere: store calls %v, want the failure's two (client id, then address) only", got)
	}
	for range 4 {
		if w := post(s, "/oauth/token", basic("bench-client", "wrong"), body); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %d", w.Code)
		}
	}
	issue(20)
	if got := calls(); got != [3]int64{7, 1, 0} {
		t.Fatalf("successes after the client's own failures: store calls %v, want one clearing", got)
	}
	// The clearing took: four more failures do not lock (five would).
	for range 4 {
		if w := post(s, "/oauth/token", basic("bench-client", "wrong"), body); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong secret after the clearing: %d", w.Code)
		}
	}
	w := post(s, "/oauth/token", basic("bench-client", "wrong"), body)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" ||
		!strings.Contains(w.Body.String(), `"error":"invalid_client"`) || w.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("fifth failure: %d %v %s, want 429 invalid_client, Retry-After 60, no challenge", w.Code, w.Header(), w.Body)
	}
	if w := post(s, "/oauth/token", good, body); w.Code != http.StatusTooManyRequests {
		t.Fatalf("right secret during the lock: %d, want 429", w.Code)
	}
}

// BenchmarkTokenThrottle is BenchmarkTokenClientCredentials (ES256) with
// throttling off, on with no failure recorded anywhere, and on with
// failures of other keys in the view (every success then hashes its keys
// and looks them up).
func BenchmarkTokenThrottle(b *testing.B) {
	const body = "grant_type=client_credentials"
	for _, mode := range []string{"off", "on", "on, failures elsewhere"} {
		b.Run(mode, func(b *testing.B) {
			s, _, basic := throttleServer(b)
			switch mode {
			case "off":
				s.throttle = nil
			case "on, failures elsewhere":
				post(s, "/oauth/token", basic("someone-else", "guess"), body)
			}
			good := basic("bench-client", "bench-secret")
			b.ReportAllocs()
			for b.Loop() {
				if w := post(s, "/oauth/token", good, body); w.Code != http.StatusOK {
					b.Fatalf("token endpoint: %d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// refusingCounter refuses to count.
type refusingCounter struct{ throttle.Store }

func (refusingCounter) RecordFailures(context.Context, []string, time.Time, time.Time, time.Time) ([]tokenstore.Failures, error) {
	return nil, tokenstore.ErrUnavailable
}

// TestUncountedFailureIsUnavailable: a failed client authentication that
// cannot be counted is answered 503 temporarily_unavailable, not a free
// invalid_client guess; a good secret still works.
func TestUncountedFailureIsUnavailable(t *testing.T) {
	s, cs, basic := throttleServer(t)
	th, err := throttle.New(refusingCounter{cs.Store}, throttle.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s.throttle = th
	const body = "grant_type=client_credentials"
	for _, path := range []string{"/oauth/token", "/oauth/revoke", "/oauth/introspect"} {
		b := body
		if path != "/oauth/token" {
			b = "token=x"
		}
		w := post(s, path, basic("bench-client", "wrong"), b)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"temporarily_unavailable"`) {
			t.Errorf("%s, wrong secret, store refusing writes: %d %s", path, w.Code, w.Body)
		}
	}
	if w := post(s, "/oauth/token", basic("bench-client", "bench-secret"), body); w.Code != http.StatusOK {
		t.Errorf("good secret: %d %s", w.Code, w.Body)
	}
}
