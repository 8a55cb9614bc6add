package throttle

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// memStore counts like the SQL store does, and counts its own writes.
type memStore struct {
	mu     sync.Mutex
	rows   map[string]tokenstore.Failures
	writes int
	fail   error
}

func newMemStore() *memStore { return &memStore{rows: map[string]tokenstore.Failures{}} }

func (m *memStore) RecordFailures(_ context.Context, keys []string, now, since, expires time.Time) ([]tokenstore.Failures, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	m.writes++
	out := make([]tokenstore.Failures, len(keys))
	for i, k := range keys {
		f := m.rows[k]
		if f.LastAt.Before(since) {
			f.Count = 0
		}
		f = tokenstore.Failures{Key: k, Count: f.Count + 1, LastAt: now, ExpiresAt: expires}
		m.rows[k] = f
		out[i] = f
	}
	return out, nil
}

func (m *memStore) ClearFailures(_ context.Context, keys []string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	for _, k := range keys {
		delete(m.rows, k)
	}
	return nil
}

func (m *memStore) ListFailures(_ context.Context, now time.Time) ([]tokenstore.Failures, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []tokenstore.Failures
	for _, f := range m.rows {
		if f.ExpiresAt.After(now) {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// clock is a settable time.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newThrottle(t *testing.T, store Store, cfg Config) (*Throttle, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)}
	cfg.Clock = c.now
	th, err := New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return th, c
}

func fail(t *testing.T, th *Throttle, subjects ...Subject) time.Duration {
	t.Helper()
	d, err := th.Failed(t.Context(), EndpointSignIn, subjects...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestLockGrowsExponentiallyAndIsCapped(t *testing.T) {
	th, _ := newThrottle(t, newMemStore(), Config{})
	for _, tc := range []struct {
		count int
		want  time.Duration
	}{
		{1, 0}, {4, 0},
		{5, time.Minute}, {6, 2 * time.Minute}, {7, 4 * time.Minute}, {8, 8 * time.Minute},
		{9, 15 * time.Minute}, {30, 15 * time.Minute}, {1000, 15 * time.Minute},
	} {
		if got := th.lockFor(Account, tc.count); got != tc.want {
			t.Errorf("account lock after %d failures = %v, want %v", tc.count, got, tc.want)
		}
	}
	if got := th.lockFor(SignInAddress, 19); got != 0 {
		t.Errorf("address lock after 19 failures = %v, want none", got)
	}
	if got := th.lockFor(SignInAddress, 20); got != time.Minute {
		t.Errorf("address lock after 20 failures = %v, want 1m", got)
	}
}

func TestFailuresLockThenExpire(t *testing.T) {
	th, clk := newThrottle(t, newMemStore(), Config{})
	alice := Subject{Account, "alice@example.com"}
	addr := Subject{SignInAddress, "203.0.113.7"}
	for i := 1; i < 5; i++ {
		if d := fail(t, th, alice, addr); d != 0 {
			t.Fatalf("failure %d locked for %v", i, d)
		}
		clk.advance(time.Second)
	}
	if d := fail(t, th, alice, addr); d != time.Minute {
		t.Fatalf("fifth failure locks for %v, want 1m", d)
	}
	clk.advance(20 * time.Second)
	if d := th.Locked(alice, addr); d != 40*time.Second {
		t.Fatalf("Locked 20s into the lock = %v, want 40s", d)
	}
	if d := th.Locked(Subject{Account, "bob@example.com"}, Subject{SignInAddress, "203.0.113.8"}); d != 0 {
		t.Fatalf("another account from another address is locked for %v", d)
	}
	// The address has five failures of twenty: another account from it is free.
	if d := th.Locked(Subject{Account, "bob@example.com"}, addr); d != 0 {
		t.Fatalf("another account from the same address is locked for %v", d)
	}
	clk.advance(40 * time.Second)
	if d := th.Locked(alice); d != 0 {
		t.Fatalf("Locked once the lock ended = %v", d)
	}
	// The next failure doubles the lock.
	if d := fail(t, th, alice, addr); d != 2*time.Minute {
		t.Fatalf("sixth failure locks for %v, want 2m", d)
	}
	// Over an hour after the last failure the count starts again.
	clk.advance(time.Hour + time.Millisecond)
	if d := th.Locked(alice); d != 0 {
		t.Fatalf("Locked an hour later = %v", d)
	}
	if d := fail(t, th, alice, addr); d != 0 {
		t.Fatalf("first failure after the count was forgotten locks for %v", d)
	}
}

func TestUnknownAndKnownAccountsAreOneKind(t *testing.T) {
	// The throttle never learns whether an account exists: the same
	// e-mail, however typed, is one key; a different one is another.
	th, _ := newThrottle(t, newMemStore(), Config{})
	a := th.keyOf(Subject{Account, "someone@example.com"})
	if b := th.keyOf(Subject{Account, "someone@example.com"}); a != b {
		t.Fatal("one e-mail, two keys")
	}
	if b := th.keyOf(Subject{Account, "someone@example.org"}); a == b {
		t.Fatal("two e-mails, one key")
	}
	if b := th.keyOf(Subject{Client, "someone@example.com"}); a == b {
		t.Fatal("an account and a client with the same value share a key")
	}
}

func TestAddresses(t *testing.T) {
	th, _ := newThrottle(t, newMemStore(), Config{})
	same := [][2]string{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"}, // one /64
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"fe80::1%eth0", "fe80::2"},
	}
	for _, p := range same {
		if th.keyOf(Subject{ClientAddress, p[0]}) != th.keyOf(Subject{ClientAddress, p[1]}) {
			t.Errorf("%s and %s are counted apart", p[0], p[1])
		}
	}
	apart := [][2]string{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"192.0.2.1", "192.0.2.2"},
	}
	for _, p := range apart {
		if th.keyOf(Subject{ClientAddress, p[0]}) == th.keyOf(Subject{ClientAddress, p[1]}) {
			t.Errorf("%s and %s are counted together", p[0], p[1])
		}
	}
	if th.keyOf(Subject{ClientAddress, "192.0.2.1"}) == th.keyOf(Subject{SignInAddress, "192.0.2.1"}) {
		t.Error("sign-in and client authentication share an address counter")
	}
	// An address is not counted when the caller does not know it: one
	// shared counter would let anyone lock everyone out.
	if th.counted(Subject{ClientAddress, ""}) {
		t.Error("an empty address is counted")
	}
}

func TestAddressLocksEveryAccount(t *testing.T) {
	th, _ := newThrottle(t, newMemStore(), Config{AccountFailures: -1})
	addr := Subject{SignInAddress, "198.51.100.9"}
	var d time.Duration
	for i := range 20 {
		d = fail(t, th, Subject{Account, string(rune('a'+i)) + "@example.com"}, addr)
	}
	if d != time.Minute {
		t.Fatalf("20th failure from one address locks for %v, want 1m", d)
	}
	if got := th.Locked(Subject{Account, "new@example.com"}, addr); got != time.Minute {
		t.Fatalf("a fresh account from the locked address: Locked = %v, want 1m", got)
	}
}

func TestSuccessForgetsTheAccountNotTheAddress(t *testing.T) {
	store := newMemStore()
	th, _ := newThrottle(t, store, Config{AddressFailures: 3})
	alice := Subject{Account, "alice@example.com"}
	addr := Subject{SignInAddress, "203.0.113.7"}
	ctx := t.Context()

	// With nothing recorded anywhere, a success writes nothing.
	if err := th.Succeeded(ctx, alice, addr); err != nil {
		t.Fatal(err)
	}
	if store.writes != 0 {
		t.Fatalf("a success with no failures made %d store writes", store.writes)
	}
	fail(t, th, alice, addr) // alice's count starts: the address is charged (2 writes)
	fail(t, th, alice, addr) // a repeat: alice only (1 write)
	if err := th.Succeeded(ctx, alice, addr); err != nil {
		t.Fatal(err)
	}
	if store.writes != 4 {
		t.Fatalf("store writes = %d, want 3 for the failures and 1 clearing", store.writes)
	}
	// Another success: nothing left to forget, nothing written.
	if err := th.Succeeded(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if store.writes != 4 {
		t.Fatalf("a second success wrote to the store (%d writes)", store.writes)
	}
	// The address kept its charge: alice's count starting again, then
	// bob's, make three, and lock it.
	if d := fail(t, th, alice, addr); d != 0 {
		t.Fatalf("second charge of the address locks for %v", d)
	}
	if d := fail(t, th, Subject{Account, "bob@example.com"}, addr); d != time.Minute {
		t.Fatalf("third charge of the address locks for %v, want 1m", d)
	}
	if d := th.Locked(Subject{Account, "carol@example.com"}, addr); d != time.Minute {
		t.Fatalf("another account from the locked address: Locked = %v, want 1m", d)
	}
	if d := th.Locked(alice); d != 0 {
		t.Fatalf("the account (one failure since the success) is locked for %v", d)
	}
}

func TestOneAccountChargesTheAddressOnce(t *testing.T) {
	// One user mistyping, or one client retrying a stale secret, must not
	// lock out everyone behind the same address.
	th, _ := newThrottle(t, newMemStore(), Config{AddressFailures: 3, LockMin: time.Second, LockMax: time.Second})
	addr := Subject{ClientAddress, "192.0.2.1"}
	stale := Subject{Client, "stale-client"}
	for range 5 {
		fail(t, th, stale, addr)
	}
	if d := th.Locked(stale); d == 0 {
		t.Fatal("the failing client is not locked")
	}
	if d := th.Locked(Subject{Client, "good-client"}, addr); d != 0 {
		t.Fatalf("another client behind the same address is locked for %v", d)
	}
}

func TestConcurrentFailuresOfOneClientChargeTheAddressOnce(t *testing.T) {
	store, err := tokenstore.Open(t.Context(), tokenstore.Config{DSN: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	th, _ := newThrottle(t, store, Config{AddressFailures: 2, ClientFailures: 1000})
	addr := Subject{ClientAddress, "192.0.2.1"}
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if _, err := th.Failed(context.Background(), EndpointToken, Subject{Client, "deleted-client"}, addr); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d := th.Locked(Subject{Client, "other"}, addr); d != 0 {
		t.Fatalf("30 concurrent failures of one client locked the address for %v", d)
	}
}

func TestDisabled(t *testing.T) {
	var none *Throttle
	s := Subject{Account, "a@example.com"}
	if d := none.Locked(s); d != 0 {
		t.Fatal("a nil Throttle locks")
	}
	if d, err := none.Failed(t.Context(), EndpointSignIn, s); d != 0 || err != nil {
		t.Fatal("a nil Throttle counts")
	}
	store := newMemStore()
	th, _ := newThrottle(t, store, Config{AccountFailures: -1, AddressFailures: -1})
	for range 50 {
		fail(t, th, s, Subject{SignInAddress, "192.0.2.1"})
	}
	if store.writes != 0 || th.Locked(s) != 0 {
		t.Fatalf("disabled kinds were counted (%d writes)", store.writes)
	}
}

func TestStoreErrorIsReturned(t *testing.T) {
	store := newMemStore()
	store.fail = errors.New("database is down")
	th, _ := newThrottle(t, store, Config{})
	if _, err := th.Failed(t.Context(), EndpointToken, Subject{Client, "c"}); err == nil {
		t.Fatal("Failed hid a store error; the caller must fail closed")
	}
}

func TestConfigChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"short lock", Config{LockMin: 2 * time.Second, LockMax: 10 * time.Second}, true},
		{"lock max defaults above a long min", Config{LockMin: time.Hour}, true},
		{"sub-second lock", Config{LockMin: time.Millisecond}, false},
		{"max below min", Config{LockMin: 10 * time.Minute, LockMax: time.Minute}, false},
		{"forget before the lock ends", Config{LockMax: time.Hour, Forget: time.Minute}, false},
		{"negative lock", Config{LockMin: -time.Minute}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Check(); (err == nil) != tc.ok {
				t.Fatalf("Check() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestMetricsCountLocksAndRefusals(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	th, _ := newThrottle(t, newMemStore(), Config{Metrics: m})
	c := Subject{Client, "c1"}
	for range 5 {
		if _, err := th.Failed(t.Context(), EndpointToken, c, Subject{ClientAddress, "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
	}
	th.Refused(EndpointToken)
	th.Refused("not-an-endpoint")
	if got := value(m.Locks.WithLabelValues(EndpointToken, "client")); got != 1 {
		t.Errorf("client locks = %v, want 1", got)
	}
	if got := value(m.Locks.WithLabelValues(EndpointToken, "client_address")); got != 0 {
		t.Errorf("address locks = %v, want 0", got)
	}
	if got := value(m.Refused.WithLabelValues(EndpointToken)); got != 1 {
		t.Errorf("refusals = %v, want 1", got)
	}
	ch := make(chan prometheus.Metric, 10)
	m.Refused.Collect(ch)
	if n := len(ch); n != 1 {
		t.Errorf("%d refusal series, want 1 (unknown endpoints are not labels)", n)
	}
}

// TestNodesShareLocksThroughTheFeed runs two throttles on one SQLite store,
// as two nodes: what one counts, the other learns from the change feed,
// and a node starting later loads it.
func TestNodesShareLocksThroughTheFeed(t *testing.T) {
	store, err := tokenstore.Open(t.Context(), tokenstore.Config{DSN: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a, clk := newThrottle(t, store, Config{})
	b, err := New(store, Config{Clock: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	follow := func(th *Throttle, seq int64) int64 {
		cs, err := store.ChangesSince(t.Context(), seq, 0)
		if err != nil {
			t.Fatal(err)
		}
		th.Apply(cs)
		if len(cs) > 0 {
			seq = cs[len(cs)-1].Seq
		}
		return seq
	}
	client := Subject{Client, "yion_app"}
	var seq int64
	for range 5 {
		fail(t, a, client)
	}
	if d := b.Locked(client); d != 0 {
		t.Fatalf("b is locked before it followed the feed")
	}
	seq = follow(b, seq)
	if d := b.Locked(client); d != time.Minute {
		t.Fatalf("b after following the feed: Locked = %v, want 1m", d)
	}
	// b counts the next failure on top of a's five, once the lock is over.
	clk.advance(time.Minute)
	if d, err := b.Failed(t.Context(), EndpointToken, client); err != nil || d != 2*time.Minute {
		t.Fatalf("b's failure after a's lock: %v, %v; want a 2m lock", d, err)
	}
	follow(a, 0)
	if d := a.Locked(client); d != 2*time.Minute {
		t.Fatalf("a after b's failure: Locked = %v, want 2m", d)
	}
	// A success on a clears the client everywhere.
	clk.advance(2 * time.Minute)
	if err := a.Succeeded(t.Context(), client); err != nil {
		t.Fatal(err)
	}
	seq = follow(b, seq)
	if n := b.size.Load(); n != 0 {
		t.Fatalf("b holds %d entries after the clearing", n)
	}
	// A node starting now loads the store's counts.
	fail(t, a, client)
	c, err := New(store, Config{Clock: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := c.size.Load(); n != 1 {
		t.Fatalf("a new node loaded %d entries, want 1", n)
	}
	_ = seq
}

func TestLockedCostsNothingWithoutFailures(t *testing.T) {
	th, _ := newThrottle(t, newMemStore(), Config{})
	subjects := []Subject{{Client, "yion_app"}, {ClientAddress, "192.0.2.1"}}
	if n := testing.AllocsPerRun(100, func() { th.Locked(subjects...) }); n != 0 {
		t.Errorf("Locked with an empty view: %v allocations", n)
	}
	fail(t, th, Subject{Client, "someone-else"})
	if n := testing.AllocsPerRun(100, func() { th.Locked(subjects...) }); n != 0 {
		t.Errorf("Locked with failures elsewhere: %v allocations", n)
	}
}

func BenchmarkLocked(b *testing.B) {
	th, err := New(newMemStore(), Config{})
	if err != nil {
		b.Fatal(err)
	}
	subjects := []Subject{{Client, "yion_app"}, {ClientAddress, "192.0.2.1"}}
	b.Run("empty", func(b *testing.B) {
		for b.Loop() {
			th.Locked(subjects...)
		}
	})
	if _, err := th.Failed(context.Background(), EndpointToken, Subject{Client, "other"}); err != nil {
		b.Fatal(err)
	}
	b.Run("failures elsewhere", func(b *testing.B) {
		for b.Loop() {
			th.Locked(subjects...)
		}
	})
}

// value reads a counter.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.Counter.GetValue()
}
