package tokens

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

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
		return len(b.Keys()) == 2
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
