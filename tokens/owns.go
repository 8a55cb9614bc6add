package tokens

import (
	"errors"
	"fmt"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// A business linked to a client on one node (LinkCreatedBusiness, the
// admin API) reaches the other nodes' client caches through the change
// feed: about a millisecond with LISTEN/NOTIFY, up to the poll interval
// when that connection is down. So that the very next request naming a
// business just linked elsewhere passes anyway, ClientOwns does not refuse
// on the cache's word alone: a business the cached client does not own is
// looked up once more in the store, and the cache takes what the store
// says. The allowed path is unchanged (no store trip); only the would-be
// refusal pays one primary-key read, bounded as follows:
//
//   - a refusal the store confirmed is remembered per (client, business)
//     for refusalTTL, so a client repeating a business it does not own
//     costs no read; the memory is dropped with the client whenever the
//     change feed (or this node's own link) reports it changed, and is
//     bounded by maxRefusals;
//   - the reads of one client are merged: at most one is in flight per
//     client on a node, whatever the number of requests (random business
//     ids from a valid token included).
//
// A failed read is an error, which the gateway turns into 503 like every
// failed ownership lookup (fail closed).
const (
	// refusalTTL is how long a confirmed refusal is repeated without a
	// store read: well under max_staleness, and short enough that a
	// business an app names before it exists (only an app choosing its
	// own ids can) and then creates is refused at most that long on a node
	// whose feed is down.
	refusalTTL = 3 * time.Second
	// maxRefusals bounds the remembered refusals of all clients; past it
	// the memory starts over.
	maxRefusals = 10_000
)

// reread is one store read of a client on the refusal path.
type reread struct {
	e   *clientEntry // nil: no such client
	seq uint64       // rereadSeq when the read began
	gen uint64       // the cache's generation when the read began
}

// recheckOwns decides a business the cached client does not own (or a
// client not cached yet): a recent confirmed refusal answers at once,
// otherwise the store does. The read
// must have begun after this call did, since the link it may reveal was
// committed before the request arrived: joining a read already under way
// is not enough, so a caller whose merged read began earlier waits for the
// next one (which begins after the earlier finished, hence after the call).
func (s *Service) recheckOwns(clientID, business string) (bool, error) {
	if business == "" || s.clients.static[clientID] != nil {
		return false, nil // static clients are the configuration's: nothing to re-read
	}
	now := s.now()
	if s.clients.refusedAt(clientID, business, now) {
		return false, nil
	}
	arrived := s.rereadSeq.Load()
	for range 3 {
		// A read that began after this call and has ended answers too:
		// waiters woken by a stale read need not each start another.
		if e, cached, gen := s.clients.lookup(clientID); cached && e != nil && e.reread > arrived {
			if _, ok := e.owns[business]; ok {
				return true, nil
			}
			s.clients.refuse(clientID, business, now, gen)
			return false, nil
		}
		r, err := s.rereadClient(clientID)
		if err != nil {
			return false, err
		}
		if r.e != nil {
			if _, ok := r.e.owns[business]; ok {
				return true, nil
			}
		}
		if r.seq > arrived {
			s.clients.refuse(clientID, business, now, r.gen)
			return false, nil
		}
	}
	return false, nil
}

// rereadClient reads a client from the store, merged with any read of the
// same client under way, and caches what it read.
func (s *Service) rereadClient(id string) (reread, error) {
	v, err, _ := s.rereads.Do(id, func() (any, error) {
		_, _, gen := s.clients.lookup(id)
		seq := s.rereadSeq.Add(1)
		c, err := s.store.GetClient(s.life, id)
		var e *clientEntry
		switch {
		case errors.Is(err, tokenstore.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("re-reading client: %w", err)
		default:
			e = newClientEntry(c)
			e.reread = seq
		}
		s.clients.put(id, e, gen)
		return reread{e: e, seq: seq, gen: gen}, nil
	})
	if err != nil {
		return reread{}, err
	}
	return v.(reread), nil
}

// refusedAt reports whether a store read refused the business to the
// client less than refusalTTL before now.
func (cc *clientCache) refusedAt(client, business string, now time.Time) bool {
	cc.mu.RLock()
	at, ok := cc.refused[client][business]
	cc.mu.RUnlock()
	return ok && now.Sub(at) < refusalTTL && !now.Before(at)
}

// refuse remembers that a store read refused the business to the client
// at now, unless an invalidation happened since the read began (the
// refusal may be stale already).
func (cc *clientCache) refuse(client, business string, now time.Time, gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.gen != gen {
		return
	}
	if cc.refused == nil || cc.nRefused >= maxRefusals {
		cc.refused, cc.nRefused = make(map[string]map[string]time.Time), 0
	}
	m := cc.refused[client]
	if m == nil {
		m = make(map[string]time.Time)
		cc.refused[client] = m
	}
	if _, ok := m[business]; !ok {
		cc.nRefused++
	}
	m[business] = now
}
