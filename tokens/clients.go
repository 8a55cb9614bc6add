package tokens

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// maxCachedClients bounds the client cache, negative entries included, so
// requests naming random client ids cannot grow it without limit. Past it
// the cache starts over, which costs one store read per client.
const maxCachedClients = 100_000

// clientEntry is a cached client (nil for "no such client") with its
// businesses as a set for the hot-path tenancy check.
type clientEntry struct {
	c    *tokenstore.Client
	owns map[string]struct{}
	// reread is the rereadSeq of the refusal-path read that made the
	// entry (owns.go); 0 for any other read.
	reread uint64
}

func newClientEntry(c *tokenstore.Client) *clientEntry {
	e := &clientEntry{c: c, owns: make(map[string]struct{}, len(c.Businesses))}
	for _, b := range c.Businesses {
		e.owns[b] = struct{}{}
	}
	return e
}

// clientCache holds static clients (never invalidated) and stored clients
// read through on first use and dropped on ChangeClient.
type clientCache struct {
	static map[string]*clientEntry

	mu  sync.RWMutex
	m   map[string]*clientEntry
	gen uint64 // bumped by every invalidation; guarded by mu
	// refused holds, per client, the businesses a store read refused and
	// when (see owns.go); guarded by mu, dropped with the client.
	refused  map[string]map[string]time.Time
	nRefused int
}

func newStaticClients(cs []*tokenstore.Client) (map[string]*clientEntry, error) {
	m := make(map[string]*clientEntry, len(cs))
	for _, c := range cs {
		if c == nil || c.ID == "" {
			return nil, errors.New("static client without an id")
		}
		if _, dup := m[c.ID]; dup {
			return nil, fmt.Errorf("static client %q declared twice", c.ID)
		}
		m[c.ID] = newClientEntry(c)
	}
	return m, nil
}

func (cc *clientCache) lookup(id string) (e *clientEntry, cached bool, gen uint64) {
	if e := cc.static[id]; e != nil {
		return e, true, 0
	}
	cc.mu.RLock()
	e, cached = cc.m[id]
	gen = cc.gen
	cc.mu.RUnlock()
	return e, cached, gen
}

// put caches e unless an invalidation happened since the read began, in
// which case e may already be stale.
func (cc *clientCache) put(id string, e *clientEntry, gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.gen != gen {
		return
	}
	if cc.m == nil || len(cc.m) >= maxCachedClients {
		cc.m = make(map[string]*clientEntry)
	}
	cc.m[id] = e
}

func (cc *clientCache) invalidate(id string) {
	cc.mu.Lock()
	delete(cc.m, id)
	cc.nRefused -= len(cc.refused[id])
	delete(cc.refused, id)
	cc.gen++
	cc.mu.Unlock()
}

func (cc *clientCache) clear() {
	cc.mu.Lock()
	cc.m = nil
	cc.refused, cc.nRefused = nil, 0
	cc.gen++
	cc.mu.Unlock()
}

func (s *Service) clientEntry(ctx context.Context, id string) (*clientEntry, error) {
	e, cached, gen := s.clients.lookup(id)
	if cached {
		return e, nil
	}
	c, err := s.store.GetClient(ctx, id)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		e = nil
	case err != nil:
		return nil, fmt.Errorf("loading client: %w", err)
	default:
		e = newClientEntry(c)
	}
	s.clients.put(id, e, gen)
	return e, nil
}

// Client returns the client with the given id, static clients first, or
// an error matching tokenstore.ErrNotFound. The result is shared: treat it
// as read-only.
func (s *Service) Client(ctx context.Context, id string) (*tokenstore.Client, error) {
	e, err := s.clientEntry(ctx, id)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("client %q: %w", id, tokenstore.ErrNotFound)
	}
	return e.c, nil
}

// ClientOwns reports whether the client may act for the business (the
// client-credentials tenancy rule). An unknown client owns nothing. Once
// the client is cached, a business it owns is two map lookups and no store
// trip; any other answer comes from the store (a client not cached yet, or
// a business the cached client does not own: recheckOwns, owns.go), so a
// link made on another node counts before the change feed brings it here.
func (s *Service) ClientOwns(ctx context.Context, clientID, business string) (bool, error) {
	if e, cached, _ := s.clients.lookup(clientID); cached && e != nil {
		if _, ok := e.owns[business]; ok {
			return true, nil
		}
	}
	return s.recheckOwns(clientID, business)
}

// ConfirmClient checks in the store, not the cache, that a stored client
// still exists (static clients always do), dropping a deleted one from the
// cache. The token endpoint calls it after signing a stateless token and
// before handing it out: a deletion committed before the read leaves this
// node's cache behind but is seen here, and one committed after it is
// dated after the token (see DeleteClient).
func (s *Service) ConfirmClient(ctx context.Context, id string) error {
	if s.clients.static[id] != nil {
		return nil
	}
	_, err := s.store.GetClient(ctx, id)
	if errors.Is(err, tokenstore.ErrNotFound) {
		s.clients.invalidate(id)
	}
	if err != nil {
		return fmt.Errorf("confirming client: %w", err)
	}
	return nil
}
