package authserver

import (
	"sync"
	"time"

	"github.com/oauthgate/oauthgate/throttle"
)

// registrationLimiter bounds how many registrations one client address may
// attempt per window: a fixed window per address, in memory, so each node
// of a cluster counts its own. An IPv6 address counts as its /64, which
// one host usually holds whole. The table is bounded: when it is full of
// live windows, a new address is refused (fail closed) until windows end.
type registrationLimiter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	seen map[addrKey]*regWindow
}

type regWindow struct {
	start time.Time
	n     int
}

// maxLimitedAddresses bounds the limiter's table (about 100 bytes each).
const maxLimitedAddresses = 100_000

func newRegistrationLimiter(limit int, window time.Duration, now func() time.Time) *registrationLimiter {
	return &registrationLimiter{limit: limit, window: window, now: now, seen: map[addrKey]*regWindow{}}
}

// allow counts one attempt from addr and reports whether it is within the
// limit; when it is not, it also says how long until the window ends.
func (l *registrationLimiter) allow(addr string) (bool, time.Duration) {
	if l == nil || l.limit <= 0 {
		return true, 0
	}
	key := addressKey(addr)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.seen[key]
	if w != nil && now.Sub(w.start) >= l.window {
		w.start, w.n = now, 0
	}
	if w == nil {
		if len(l.seen) >= maxLimitedAddresses {
			l.sweep(now)
			if len(l.seen) >= maxLimitedAddresses {
				return false, l.window
			}
		}
		w = &regWindow{start: now}
		l.seen[key] = w
	}
	if w.n >= l.limit {
		return false, w.start.Add(l.window).Sub(now)
	}
	w.n++
	return true, 0
}

// sweep forgets the windows that have ended.
func (l *registrationLimiter) sweep(now time.Time) {
	for k, w := range l.seen {
		if now.Sub(w.start) >= l.window {
			delete(l.seen, k)
		}
	}
}

// addrKey is an address as the limiter counts it: its
// throttle.AddressBlock (an IPv4 address alone, an IPv6 address as its
// /64), as the failure throttle counts addresses. Every unparsable address
// has the one key with valid false, so it cannot escape the limit and
// shares it with no real address.
type addrKey struct {
	block [16]byte
	valid bool
}

func addressKey(addr string) addrKey {
	b, ok := throttle.AddressBlock(addr)
	return addrKey{block: b, valid: ok}
}
