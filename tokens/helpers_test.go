package tokens

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/oauthgate/oauthgate/internal/clocktest"
	"github.com/oauthgate/oauthgate/tokenstore"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const testIssuer = "https://auth.example.test"

// openStore opens a real SQLite store in a temporary directory.
func openStore(t testing.TB) tokenstore.Store {
	t.Helper()
	return openStoreAt(t, filepath.Join(t.TempDir(), "oauthgate.db"))
}

func openStoreAt(t testing.TB, path string) tokenstore.Store {
	t.Helper()
	st, err := tokenstore.Open(context.Background(), tokenstore.Config{Driver: "sqlite", DSN: path})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fakeClock is a settable clock for lifetime tests.
type fakeClock = clocktest.Clock

func newFakeClock() *fakeClock { return clocktest.New() }

// newService starts a Service on st, closed with the test. Unset Issuer,
// PollInterval are filled in.
func newService(t testing.TB, st tokenstore.Store, cfg Config) *Service {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	s, err := New(context.Background(), st, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// withClock returns cfg using c; staleness is switched off because the
// fake clock jumps past it.
func withClock(cfg Config, c *fakeClock) Config {
	cfg.Clock = c.Now
	cfg.MaxStaleness = -1
	return cfg
}

func mint(t testing.TB, s *Service, a Access) string {
	t.Helper()
	if a.Subject == "" {
		a.Subject = "user-1"
	}
	if a.ClientID == "" {
		a.ClientID = "app-1"
	}
	if a.GrantID == "" {
		a.GrantID = "grant-1"
	}
	raw, _, err := s.MintAccess(a)
	if err != nil {
		t.Fatalf("MintAccess: %v", err)
	}
	return raw
}

// testMetrics returns unregistered collectors and a way to read them.
func testMetrics() *Metrics {
	m, err := NewMetrics(nil)
	if err != nil {
		panic(err)
	}
	return m
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// segments decodes the header and payload of a compact JWS.
func segments(t testing.TB, raw string) (hdr, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	return decodeSegment(t, parts[0]), decodeSegment(t, parts[1])
}

func decodeSegment(t testing.TB, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decoding segment: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding segment: %v", err)
	}
	return m
}

func encodeSegment(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// craft builds a compact JWS from an arbitrary header and claims, signed
// with key under alg (no signature when alg is "").
func craft(t testing.TB, hdr, claims map[string]any, alg jwa.SignatureAlgorithm, key any) string {
	t.Helper()
	input := encodeSegment(t, hdr) + "." + encodeSegment(t, claims)
	if alg == "" {
		return input + "."
	}
	signer, err := jws.NewSigner(alg)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign([]byte(input), key)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// flakyStore is the real store with the change feed switched off on
// demand, to exercise outages; it also counts client reads.
type flakyStore struct {
	tokenstore.Store
	down        atomic.Bool
	clientReads atomic.Int64
}

func (f *flakyStore) ChangesSince(ctx context.Context, seq int64, limit int) ([]tokenstore.Change, error) {
	if f.down.Load() {
		return nil, tokenstore.ErrUnavailable
	}
	return f.Store.ChangesSince(ctx, seq, limit)
}

func (f *flakyStore) LastChange(ctx context.Context) (int64, error) {
	if f.down.Load() {
		return 0, tokenstore.ErrUnavailable
	}
	return f.Store.LastChange(ctx)
}

func (f *flakyStore) GetClient(ctx context.Context, id string) (*tokenstore.Client, error) {
	f.clientReads.Add(1)
	return f.Store.GetClient(ctx, id)
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// waitFeed waits until s has applied every change recorded so far, so that
// a test moving the clock does not race the watcher.
func waitFeed(t testing.TB, s *Service) {
	t.Helper()
	last, err := s.store.LastChange(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "watcher catching up", func() bool { return s.seq.Load() >= last })
}
