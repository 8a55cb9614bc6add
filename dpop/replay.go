package dpop

import (
	"crypto/sha256"
	"sync"
	"time"
)

// replayCache remembers the jtis of accepted proofs for as long as a proof
// can be accepted (MaxAge + Leeway), in two generations of that length:
// a jti is a replay while it is in either. Memory is bounded: a generation
// holds at most max entries, and when the current one is full a proof is
// refused (fail closed) rather than accepted unchecked.
//
// Entries are keyed by a hash of the key thumbprint and the jti, so that
// two clients choosing the same jti do not collide and memory per entry is
// fixed whatever the jti's length.
type replayCache struct {
	mu        sync.Mutex
	span      time.Duration
	max       int
	started   time.Time // of cur
	cur, prev map[[16]byte]struct{}
}

func newReplayCache(max int, span time.Duration) *replayCache {
	return &replayCache{max: max, span: span}
}

// use records jti for the key jkt, or fails if it was seen.
func (c *replayCache) use(jkt, jti string, now time.Time) error {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var k [16]byte
	copy(k[:], sum[:16])

	c.mu.Lock()
	defer c.mu.Unlock()
	// A clock stepping back rotates nothing: entries stay longer, never
	// shorter.
	switch age := now.Sub(c.started); {
	case c.cur == nil || age >= 2*c.span:
		// First use, or idle for two spans: nothing remembered could still
		// be accepted.
		c.prev, c.cur = nil, make(map[[16]byte]struct{})
		c.started = now
	case age >= c.span:
		c.prev, c.cur = c.cur, make(map[[16]byte]struct{}, len(c.cur))
		c.started = now
	}
	if _, ok := c.cur[k]; ok {
		return FailReplay
	}
	if _, ok := c.prev[k]; ok {
		return FailReplay
	}
	if len(c.cur) >= c.max {
		return FailReplayFull
	}
	c.cur[k] = struct{}{}
	return nil
}
