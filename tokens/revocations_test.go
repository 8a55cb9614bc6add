package tokens

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

func TestRevokeGrant(t *testing.T) {
	m := testMetrics()
	s := newService(t, openStore(t), Config{Metrics: m})
	revoked := mint(t, s, Access{GrantID: "grant-a"})
	other := mint(t, s, Access{GrantID: "grant-b"})
	if _, err := s.Verify(revoked); err != nil {
		t.Fatal(err) // now cached: revocation must still apply
	}
	if err := s.RevokeGrant(t.Context(), "grant-a"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Verify(revoked)
	if !errors.Is(err, ErrRevoked) || !errors.Is(err, ErrInvalidToken) || err.Error() != "token revoked: grant revoked" {
		t.Errorf("Verify(revoked) = %v", err)
	}
	if _, err := s.Verify(other); err != nil {
		t.Errorf("token of another grant: %v", err)
	}
	if got := value(m.VerifyFailures.WithLabelValues("grant_revoked")); got != 1 {
		t.Errorf("grant_revoked failures = %v", got)
	}
	if got := value(m.Revocations); got != 1 {
		t.Errorf("revocations gauge = %v", got)
	}
}

func TestRevokeClientTokens(t *testing.T) {
	clock := newFakeClock()
	s := newService(t, openStore(t), withClock(Config{}, clock))
	before := mint(t, s, Access{ClientID: "app-x"})
	otherClient := mint(t, s, Access{ClientID: "app-y"})
	clock.Advance(time.Second)
	if err := s.RevokeClientTokens(t.Context(), "app-x"); err != nil {
		t.Fatal(err)
	}
	sameSecond := mint(t, s, Access{ClientID: "app-x"})
	clock.Advance(time.Second)
	after := mint(t, s, Access{ClientID: "app-x"})

	if _, err := s.Verify(before); !errors.Is(err, ErrRevoked) {
		t.Errorf("token issued before revocation: %v", err)
	}
	for name, raw := range map[string]string{"after": after, "same second, after": sameSecond, "other client": otherClient} {
		if _, err := s.Verify(raw); err != nil {
			t.Errorf("token %s: %v", name, err)
		}
	}
}

func TestRevocationsSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauthgate.db")
	a := newService(t, openStoreAt(t, path), Config{})
	raw := mint(t, a, Access{GrantID: "grant-r"})
	if err := a.RevokeGrant(t.Context(), "grant-r"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := newService(t, openStoreAt(t, path), Config{})
	if _, err := b.Verify(raw); !errors.Is(err, ErrRevoked) {
		t.Errorf("after restart: %v", err)
	}
}

// TestRevocationReachesOtherNode runs two services on one SQLite file, as
// two nodes of a cluster would share a database.
func TestRevocationReachesOtherNode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauthgate.db")
	const poll = 50 * time.Millisecond
	a := newService(t, openStoreAt(t, path), Config{PollInterval: poll})
	b := newService(t, openStoreAt(t, path), Config{PollInterval: poll})

	raw := mint(t, a, Access{GrantID: "grant-x", ClientID: "app-x"})
	if _, err := b.Verify(raw); err != nil {
		t.Fatalf("other node: %v", err)
	}
	if err := a.RevokeGrant(t.Context(), "grant-x"); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 2*time.Second, "grant revocation on the other node", func() bool {
		_, err := b.Verify(raw)
		return errors.Is(err, ErrRevoked)
	})
	t.Logf("grant revocation reached the other node in %v (poll interval %v)", took, poll)
	if took > 3*poll {
		t.Errorf("took %v, want within about one poll interval (%v)", took, poll)
	}

	raw2 := mint(t, a, Access{GrantID: "grant-y", ClientID: "app-y"})
	if _, err := b.Verify(raw2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // client revocations are to the second
	if err := a.RevokeClientTokens(t.Context(), "app-y"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "client revocation on the other node", func() bool {
		_, err := b.Verify(raw2)
		return errors.Is(err, ErrRevoked)
	})
}

func TestDenyListPrunedAfterExpiry(t *testing.T) {
	clock := newFakeClock()
	s := newService(t, openStore(t), withClock(Config{AccessTTL: time.Minute}, clock))
	if err := s.RevokeGrant(t.Context(), "g1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeClientTokens(t.Context(), "c1"); err != nil {
		t.Fatal(err)
	}
	waitFeed(t, s)
	s.housekeep(t.Context())
	if d := s.deny.Load(); len(d.grants) != 1 || len(d.clients) != 1 {
		t.Fatalf("deny list pruned early: %d grants, %d clients", len(d.grants), len(d.clients))
	}
	clock.Advance(time.Minute + skew + time.Second)
	s.housekeep(t.Context())
	if d := s.deny.Load(); len(d.grants) != 0 || len(d.clients) != 0 {
		t.Errorf("deny list not pruned: %d grants, %d clients", len(d.grants), len(d.clients))
	}
	revs, err := s.store.ActiveRevocations(t.Context(), clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 0 {
		t.Errorf("store still has %d active revocations", len(revs))
	}
}

func TestRevocationOutlivesLongestToken(t *testing.T) {
	clock := newFakeClock()
	st := openStore(t)
	s := newService(t, st, withClock(Config{AccessTTL: time.Minute}, clock))
	raw, _, err := s.MintAccess(Access{Subject: "u", ClientID: "c", GrantID: "g-long", TTL: 3 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeGrant(t.Context(), "g-long"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	s.housekeep(t.Context())
	if _, err := s.Verify(raw); !errors.Is(err, ErrRevoked) {
		t.Errorf("3h token two hours after revocation: %v", err)
	}
	revs, _ := st.ActiveRevocations(t.Context(), clock.Now())
	if len(revs) != 1 || revs[0].Kind != tokenstore.RevokeGrant {
		t.Errorf("stored revocations = %v", revs)
	}
}
