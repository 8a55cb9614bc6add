package tokens

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// ownsStore is a flakyStore whose client reads can fail.
type ownsStore struct {
	*flakyStore
	readsDown atomic.Bool
}

func (o *ownsStore) GetClient(ctx context.Context, id string) (*tokenstore.Client, error) {
	if o.readsDown.Load() {
		o.clientReads.Add(1)
		return nil, tokenstore.ErrUnavailable
	}
	return o.flakyStore.GetClient(ctx, id)
}

// TestClientOwnsRechecksRefusals: a business linked in the store that this
// node's cache has not heard of (the change feed is down) is allowed on the
// first request, at the cost of one store read; a business the store does
// not give the client either is refused, and refused again within
// refusalTTL without a read; a failed read is an error (the gateway's 503).
func TestClientOwnsRechecksRefusals(t *testing.T) {
	st := &ownsStore{flakyStore: &flakyStore{Store: openStore(t)}}
	ctx := t.Context()
	if err := st.CreateClient(ctx, &tokenstore.Client{ID: "app", Name: "App", Businesses: []string{"biz-1"}}); err != nil {
		t.Fatal(err)
	}
	static := &tokenstore.Client{ID: "static-app", Name: "From config", Businesses: []string{"biz-s"}}
	clock := newFakeClock()
	s := newService(t, st, Config{StaticClients: []*tokenstore.Client{static}, Clock: clock.Now})
	waitFeed(t, s) // the client's creation is applied before the feed stops
	owns := func(client, business string) (bool, int64) {
		t.Helper()
		before := st.clientReads.Load()
		ok, err := s.ClientOwns(ctx, client, business)
		if err != nil {
			t.Fatalf("ClientOwns(%q, %q): %v", client, business, err)
		}
		return ok, st.clientReads.Load() - before
	}
	if ok, _ := owns("app", "biz-1"); !ok {
		t.Fatal("the app does not own biz-1")
	}

	// The feed stops; another node links biz-new.
	st.down.Store(true)
	if _, err := st.LinkCreatedBusiness(ctx, "app", "biz-new", time.Now()); err != nil {
		t.Fatal(err)
	}
	if ok, reads := owns("app", "biz-new"); !ok || reads != 1 {
		t.Errorf("a business linked elsewhere: owns %v after %d store reads; want true after 1", ok, reads)
	}
	// The cache took what the store said: no more reads for either.
	for _, b := range []string{"biz-new", "biz-1"} {
		if ok, reads := owns("app", b); !ok || reads != 0 {
			t.Errorf("%s from the refreshed cache: owns %v after %d store reads; want true after 0", b, ok, reads)
		}
	}

	// Not in the store either: refused after one read, then from memory.
	if ok, reads := owns("app", "biz-other"); ok || reads != 1 {
		t.Errorf("a business nobody linked: owns %v after %d store reads; want false after 1", ok, reads)
	}
	for range 50 {
		if ok, reads := owns("app", "biz-other"); ok || reads != 0 {
			t.Fatalf("a refusal repeated within the TTL: owns %v after %d store reads; want false after 0", ok, reads)
		}
	}
	// Once the TTL has passed, the store is asked again.
	clock.Advance(refusalTTL)
	if ok, reads := owns("app", "biz-other"); ok || reads != 1 {
		t.Errorf("after the TTL: owns %v after %d store reads; want false after 1", ok, reads)
	}
	// A refusal is forgotten as soon as the client changes (here: this
	// node's own link, as caddymodule does after LinkCreatedBusiness).
	if _, err := st.LinkCreatedBusiness(ctx, "app", "biz-other", time.Now()); err != nil {
		t.Fatal(err)
	}
	s.ForgetClient("app")
	if ok, _ := owns("app", "biz-other"); !ok {
		t.Error("a refused business linked later is still refused")
	}

	// Static clients are the configuration's: never re-read.
	if ok, reads := owns("static-app", "biz-x"); ok || reads != 0 {
		t.Errorf("static client: owns %v after %d store reads; want false after 0", ok, reads)
	}

	// The store fails: an error, as for any failed ownership lookup, and
	// nothing remembered, so the next request asks again.
	st.readsDown.Store(true)
	for range 2 {
		ok, err := s.ClientOwns(ctx, "app", "biz-down")
		if ok || !errors.Is(err, tokenstore.ErrUnavailable) {
			t.Errorf("store down: ClientOwns = %v, %v; want false, ErrUnavailable", ok, err)
		}
	}
	// What the cache holds is still allowed without the store.
	if ok, err := s.ClientOwns(ctx, "app", "biz-new"); !ok || err != nil {
		t.Errorf("store down, cached business: ClientOwns = %v, %v", ok, err)
	}
}

// blockingStore holds client reads while hold is set, until gate is
// closed, and tracks how many run at once.
type blockingStore struct {
	*flakyStore
	hold             atomic.Bool
	gate             chan struct{}
	entered          chan struct{}
	inFlight, maxRun atomic.Int64
}

func (b *blockingStore) GetClient(ctx context.Context, id string) (*tokenstore.Client, error) {
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for m := b.maxRun.Load(); n > m && !b.maxRun.CompareAndSwap(m, n); m = b.maxRun.Load() {
	}
	if b.hold.Load() {
		b.entered <- struct{}{}
		<-b.gate
	}
	return b.flakyStore.GetClient(ctx, id)
}

// TestClientOwnsMergesRereads: concurrent would-be refusals of one client
// (random business ids from a valid token) cost the store one read at a
// time, fewer than the requests; a request that arrived while a read was
// under way waits for one that began after it, so a link committed before
// it arrived is seen.
func TestClientOwnsMergesRereads(t *testing.T) {
	inner := &flakyStore{Store: openStore(t)}
	ctx := t.Context()
	if err := inner.CreateClient(ctx, &tokenstore.Client{ID: "app", Name: "App"}); err != nil {
		t.Fatal(err)
	}
	st := &blockingStore{flakyStore: inner, gate: make(chan struct{}), entered: make(chan struct{}, 100)}
	s := newService(t, st, Config{})
	// Fill the cache (one read) and stop the feed.
	waitFeed(t, s)
	if ok, _ := s.ClientOwns(ctx, "app", "warm"); ok {
		t.Fatal("owns warm")
	}
	inner.down.Store(true)

	// A first refusal starts a read and is held in it.
	st.hold.Store(true)
	first := make(chan bool)
	go func() {
		ok, _ := s.ClientOwns(ctx, "app", "random-0")
		first <- ok
	}()
	select {
	case <-st.entered:
	case <-time.After(5 * time.Second):
		close(st.gate)
		t.Fatal("no store read for the first refusal")
	}
	// Meanwhile the business is linked, and many requests arrive.
	if _, err := inner.LinkCreatedBusiness(ctx, "app", "biz-new", time.Now()); err != nil {
		t.Fatal(err)
	}
	reads := inner.clientReads.Load()
	const requests = 20
	var wg sync.WaitGroup
	var allowed atomic.Bool
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := "biz-new"
			if i > 0 {
				b = fmt.Sprintf("random-%d", i)
			}
			ok, err := s.ClientOwns(ctx, "app", b)
			if err != nil {
				t.Error(err)
			}
			if i == 0 {
				allowed.Store(ok)
			} else if ok {
				t.Errorf("%s allowed", b)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them all join
	st.hold.Store(false)
	close(st.gate) // the first read (begun before the link) ends
	if <-first {
		t.Error("random-0 allowed")
	}
	wg.Wait()
	if !allowed.Load() {
		t.Error("biz-new, linked before the request arrived, was refused")
	}
	// The held read and the one after it, give or take a request the
	// busy machine started late.
	if n := inner.clientReads.Load() - reads; n > 3 {
		t.Errorf("%d store reads for %d concurrent refusals; want 2", n, requests+1)
	}
	if m := st.maxRun.Load(); m != 1 {
		t.Errorf("%d reads of one client at once; want 1", m)
	}
}
