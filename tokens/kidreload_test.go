package tokens

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// countingStore counts reads of the key set.
type countingStore struct {
	tokenstore.Store
	listKeys atomic.Int64
}

func (c *countingStore) ListKeys(ctx context.Context) ([]*tokenstore.Key, error) {
	c.listKeys.Add(1)
	return c.Store.ListKeys(ctx)
}

// timerClock is a fakeClock whose After fires when Advance passes it.
type timerClock struct {
	*fakeClock
	mu     sync.Mutex
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newTimerClock() *timerClock { return &timerClock{fakeClock: newFakeClock()} }

func (c *timerClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	at := c.Now().Add(d)
	c.mu.Lock()
	c.timers = append(c.timers, fakeTimer{at: at, ch: ch})
	c.mu.Unlock()
	return ch
}

func (c *timerClock) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func (c *timerClock) Advance(d time.Duration) {
	c.fakeClock.Advance(d)
	now := c.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.timers[:0]
	for _, t := range c.timers {
		if now.Before(t.at) {
			kept = append(kept, t)
			continue
		}
		t.ch <- now
	}
	c.timers = kept
}

// twoNodes opens two services on one SQLite file. b hears of nothing
// through its feed (hour-long poll, and SQLite wakes only its own handle),
// so whatever it learns of a's keys comes from the unknown-kid reload.
func twoNodes(t *testing.T, bcfg Config) (a, b *Service, bst *countingStore) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "oauthgate.db")
	a = newService(t, openStoreAt(t, path), Config{})
	bst = &countingStore{Store: openStoreAt(t, path)}
	bcfg.PollInterval = time.Hour
	b = newService(t, bst, bcfg)
	return a, b, bst
}

// junkToken is a well-formed access token of ours with a kid no store
// holds.
func junkToken(t testing.TB, s *Service) string {
	t.Helper()
	var b [32]byte
	rand.Read(b[:])
	k := s.keys.Load().active
	hdr := map[string]any{"alg": string(k.alg), "typ": "at+jwt", "kid": base64.RawURLEncoding.EncodeToString(b[:])}
	claims := map[string]any{"iss": testIssuer, "sub": "u", "aud": testIssuer, "client_id": "c", "jti": "j", "gid": "g",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	return craft(t, hdr, claims, k.alg, k.priv)
}

// TestKeyRotatedElsewhereRightAfterJunkKid is issue 9 item 14: a reload
// for an unknown kid had just run (here for junk), so the token of a key
// rotated on another node a moment later was refused instead of waiting
// for the next reload.
func TestKeyRotatedElsewhereRightAfterJunkKid(t *testing.T) {
	a, b, _ := twoNodes(t, Config{})
	for i := range 5 {
		if _, err := b.Verify(junkToken(t, b)); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("junk kid: %v", err)
		}
		if _, err := a.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Verify(mint(t, a, Access{})); err != nil {
			t.Fatalf("rotation %d: token of the new key refused on the other node: %v", i, err)
		}
	}
}

// TestUnknownKidThrottleByClock walks the reload throttle with a fake
// clock: a genuine new kid waits for the throttled reload instead of being
// refused, a junk kid costs one reload and then none.
func TestUnknownKidThrottleByClock(t *testing.T) {
	clock := newTimerClock()
	cfg := withClock(Config{}, clock.fakeClock)
	cfg.after = clock.After
	a, b, bst := twoNodes(t, cfg)
	reads := func() int64 { return bst.listKeys.Load() }

	// The first unknown kid reloads at once.
	junk := junkToken(t, b)
	before := reads()
	if _, err := b.Verify(junk); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("junk kid: %v", err)
	}
	if got := reads() - before; got != 1 {
		t.Fatalf("junk kid: %d reloads, want 1", got)
	}
	// The same junk again is refused from memory.
	if _, err := b.Verify(junk); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("junk kid again: %v", err)
	}
	if got := reads() - before; got != 1 {
		t.Fatalf("repeated junk kid reloaded the key set (%d reloads)", got)
	}

	// A key rotated on a now: its token waits for the throttle, then is
	// accepted.
	if _, err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	genuine := mint(t, a, Access{})
	res := make(chan error, 1)
	go func() { _, err := b.Verify(genuine); res <- err }()
	eventually(t, 2*time.Second, "throttled reload scheduled", func() bool { return clock.waiting() == 1 })
	select {
	case err := <-res:
		t.Fatalf("answered before the throttle allowed a reload: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if got := reads() - before; got != 1 {
		t.Fatalf("reloaded within the throttle interval (%d reloads)", got)
	}
	clock.Advance(kidReloadInterval)
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("token of a key rotated on another node: %v", err)
		}
	case <-time.After(kidWait):
		t.Fatal("no answer after the throttle interval")
	}
	if got := reads() - before; got != 2 {
		t.Errorf("%d reloads, want 2", got)
	}
	// Known now: no reload, no allocation.
	kid := a.keys.Load().active.kid
	if allocs := testing.AllocsPerRun(100, func() { b.keyFor(kid) }); allocs != 0 {
		t.Errorf("keyFor(known kid) allocates %v times", allocs)
	}
	if got := reads() - before; got != 2 {
		t.Errorf("known kid reloaded the key set (%d reloads)", got)
	}
}

// TestGenuineKidsDuringJunkFlood: while junk kids flood a node, tokens of
// keys rotated on another node are never refused, and the flood costs at
// most one reload per kidReloadInterval (plus the genuine ones).
func TestGenuineKidsDuringJunkFlood(t *testing.T) {
	a, b, bst := twoNodes(t, Config{})
	junk := make([]string, 64)
	for i := range junk {
		junk[i] = junkToken(t, b)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var flooded atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Fresh kids mostly, some repeated.
				raw := junk[i%len(junk)]
				if i%4 != 0 {
					raw = junkToken(t, b)
				}
				if _, err := b.Verify(raw); err == nil {
					t.Error("junk kid accepted")
					return
				}
				flooded.Add(1)
			}
		}()
	}
	start, before := time.Now(), bst.listKeys.Load()
	var slowest time.Duration
	for i := range 20 {
		if _, err := a.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		raw := mint(t, a, Access{})
		t0 := time.Now()
		if _, err := b.Verify(raw); err != nil {
			t.Errorf("rotation %d: token of the new key refused during the flood: %v", i, err)
		}
		slowest = max(slowest, time.Since(t0))
	}
	close(stop)
	wg.Wait()
	elapsed, reloads := time.Since(start), bst.listKeys.Load()-before
	t.Logf("20 rotations in %v under %d junk verifications: %d reloads, slowest genuine verification %v",
		elapsed, flooded.Load(), reloads, slowest)
	if limit := int64(elapsed/kidReloadInterval) + 2; reloads > limit {
		t.Errorf("%d reloads in %v, want at most %d", reloads, elapsed, limit)
	}
}

// RSA keys take up to a second each to make, and this package's tests
// make hundreds: they draw, round robin, from a pool made once (distinct
// for far more rotations than any one test's store sees).
func init() {
	const size = 24
	var (
		once sync.Once
		pool [size]*rsa.PrivateKey
		next atomic.Int64
	)
	newRSAKey = func() (*rsa.PrivateKey, error) {
		once.Do(func() {
			var wg sync.WaitGroup
			for i := range pool {
				wg.Go(func() { pool[i], _ = rsa.GenerateKey(rand.Reader, 2048) })
			}
			wg.Wait()
		})
		return pool[(next.Add(1)-1)%size], nil
	}
}
