package tokens

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// quietStore wakes its node only when the test says so, like a node that
// was suspended while the others went on.
type quietStore struct {
	tokenstore.Store
	wake chan struct{}
}

func (q *quietStore) Wakeup() <-chan struct{} { return q.wake }

// TestResyncWhenFeedPrunedPastPosition: a node that read nothing for longer
// than tokenstore.ChangeRetention finds the changes it missed pruned, and
// must reload everything rather than apply what is left.
func TestResyncWhenFeedPrunedPastPosition(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauthgate.db")
	// A long access TTL keeps the revocation alive past the pruning below.
	a := newService(t, openStoreAt(t, path), Config{AccessTTL: 24 * time.Hour})
	q := &quietStore{Store: openStoreAt(t, path), wake: make(chan struct{}, 1)}
	b := newService(t, q, Config{PollInterval: time.Hour})

	raw := mint(t, a, Access{GrantID: "grant-p"})
	if _, err := b.Verify(raw); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeGrant(t.Context(), "grant-p"); err != nil {
		t.Fatal(err)
	}
	// The newest change, which Prune keeps, says nothing of the revocation.
	if _, err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := q.Prune(t.Context(), time.Now().Add(tokenstore.ChangeRetention+time.Minute)); err != nil {
		t.Fatal(err)
	}
	if kept, err := q.ChangesSince(t.Context(), 0, 0); err != nil || len(kept) != 1 {
		t.Fatalf("after pruning, the feed holds %d changes (%v), want 1", len(kept), err)
	}

	q.wake <- struct{}{}
	eventually(t, 5*time.Second, "revocation missed by the feed", func() bool {
		_, err := b.Verify(raw)
		return errors.Is(err, ErrRevoked)
	})
	eventually(t, 5*time.Second, "key rotation", func() bool { return len(b.Keys()) == 2*len(b.algs()) })
}

// TestAvailableFollowsFeed: the token endpoint's gate closes while the feed
// cannot be read and opens again when it can.
func TestAvailableFollowsFeed(t *testing.T) {
	st := &flakyStore{Store: openStore(t)}
	s := newService(t, st, Config{PollInterval: 10 * time.Millisecond})
	if err := s.Available(); err != nil {
		t.Fatalf("Available with the store up: %v", err)
	}
	st.down.Store(true)
	eventually(t, 3*time.Second, "unavailable", func() bool {
		return errors.Is(s.Available(), tokenstore.ErrUnavailable)
	})
	st.down.Store(false)
	eventually(t, 3*time.Second, "available again", func() bool { return s.Available() == nil })
}
