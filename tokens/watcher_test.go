package tokens

import (
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestFailsClosedWhenFeedStale(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	st := &flakyStore{Store: openStore(t)}
	m := testMetrics()
	s := newService(t, st, Config{
		PollInterval: 10 * time.Millisecond,
		MaxStaleness: 200 * time.Millisecond,
		Logger:       zap.New(core),
		Metrics:      m,
	})
	raw := mint(t, s, Access{})
	if _, err := s.Verify(raw); err != nil {
		t.Fatal(err)
	}

	st.down.Store(true)
	took := eventually(t, 3*time.Second, "fail closed", func() bool {
		_, err := s.Verify(raw)
		return errors.Is(err, ErrUnavailable)
	})
	if took < 150*time.Millisecond {
		t.Errorf("failed closed after %v, before MaxStaleness", took)
	}
	if _, err := s.Verify(raw); errors.Is(err, ErrInvalidToken) {
		t.Errorf("staleness reported as an invalid token: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // several more failed polls
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Errorf("%d warnings during one outage, want 1", n)
	}
	if value(m.FeedErrors) < 5 {
		t.Errorf("feed errors = %v", value(m.FeedErrors))
	}

	st.down.Store(false)
	eventually(t, 3*time.Second, "recovery", func() bool {
		_, err := s.Verify(raw)
		return err == nil
	})
	if n := logs.FilterMessage("change feed readable again").Len(); n != 1 {
		t.Errorf("%d recovery logs, want 1", n)
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if f.String == raw {
				t.Errorf("log %q contains the token", e.Message)
			}
		}
	}
}

func TestNegativeMaxStalenessServesDuringOutage(t *testing.T) {
	st := &flakyStore{Store: openStore(t)}
	s := newService(t, st, Config{PollInterval: 10 * time.Millisecond, MaxStaleness: -1})
	raw := mint(t, s, Access{})
	st.down.Store(true)
	time.Sleep(100 * time.Millisecond)
	if _, err := s.Verify(raw); err != nil {
		t.Errorf("Verify during outage with MaxStaleness < 0: %v", err)
	}
}

// TestResyncAfterOutage checks that what happened during an outage is
// applied once the feed is back.
func TestResyncAfterOutage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauthgate.db")
	st := &flakyStore{Store: openStoreAt(t, path)}
	b := newService(t, st, Config{PollInterval: 10 * time.Millisecond, MaxStaleness: -1})
	a := newService(t, openStoreAt(t, path), Config{})
	raw := mint(t, a, Access{GrantID: "grant-o"})
	if _, err := b.Verify(raw); err != nil {
		t.Fatal(err)
	}
	st.down.Store(true)
	time.Sleep(30 * time.Millisecond)
	if err := a.RevokeGrant(t.Context(), "grant-o"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	st.down.Store(false)
	eventually(t, 2*time.Second, "revocation after outage", func() bool {
		_, err := b.Verify(raw)
		return errors.Is(err, ErrRevoked)
	})
	eventually(t, 2*time.Second, "key rotation after outage", func() bool {
		return len(b.Keys()) == 2*len(b.algs()) // two key sets
	})
}

func TestKeyRotationReachesOtherNode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauthgate.db")
	a := newService(t, openStoreAt(t, path), Config{})
	// A long poll interval: b must find the new key through the
	// unknown-kid reload, not the feed.
	b := newService(t, openStoreAt(t, path), Config{PollInterval: time.Hour})
	if _, err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(mint(t, a, Access{})); err != nil {
		t.Errorf("token of a key rotated on another node: %v", err)
	}
}

// TestConcurrentVerifyDuringChanges runs readers of every cache against
// writers of each (meant for -race).
func TestConcurrentVerifyDuringChanges(t *testing.T) {
	st := openStore(t)
	if err := st.CreateClient(t.Context(), &tokenstore.Client{ID: "app-1", Businesses: []string{"biz-1"}}); err != nil {
		t.Fatal(err)
	}
	s := newService(t, st, Config{PollInterval: 5 * time.Millisecond})
	toks := make([]string, 16)
	for i := range toks {
		toks[i] = mint(t, s, Access{GrantID: "grant-" + strconv.Itoa(i)})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s.Verify(toks[i%len(toks)])
				s.ClientOwns(t.Context(), "app-1", "biz-1")
				s.JWKS()
			}
		}()
	}
	for i := range 8 {
		if err := s.RevokeGrant(t.Context(), "grant-"+strconv.Itoa(i)); err != nil {
			t.Error(err)
		}
		if _, err := s.Verify(toks[i]); !errors.Is(err, ErrRevoked) {
			t.Errorf("token %d right after its revocation: %v", i, err)
		}
		if _, err := s.Rotate(t.Context()); err != nil {
			t.Error(err)
		}
		if err := st.UpdateClient(t.Context(), &tokenstore.Client{ID: "app-1", Businesses: []string{"biz-1"}}); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	for i, raw := range toks {
		_, err := s.Verify(raw)
		if revoked := i < 8; revoked != errors.Is(err, ErrRevoked) || (!revoked && err != nil) {
			t.Errorf("token %d: %v", i, err)
		}
	}
}
