// Package throttle slows down password and client-secret guessing. It counts
// failed authentications per account, client id and client address and,
// past a threshold, locks the key for a time that doubles with every
// further failure: the sign-in page and the token, revocation and
// introspection endpoints then refuse it (HTTP 429 with Retry-After)
// without checking the credentials.
//
// Failures are counted in the store (tokenstore.AuthFailures), one write per
// failure, so every node of a cluster counts together. Each count reaches
// every node through the store's change feed into an in-memory view, which
// is all a check reads: a successful authentication costs no store round
// trip, and none at all when no key has recent failures.
//
// Keys are SHA-256 hashes of what they stand for, so unknown and known
// accounts are counted, locked and answered alike, and the store holds no
// e-mail or address (only a pseudonym: a short input such as an IPv4
// address can be found again by trying them all).
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// Kind is what a key counts the failures of.
type Kind uint8

// Kinds of key. Sign-in and client authentication count addresses apart.
const (
	// Account is an e-mail address typed on the sign-in page, whether or
	// not an account has it.
	Account Kind = iota
	// SignInAddress is the client address of a sign-in attempt.
	SignInAddress
	// Client is a client_id presented to the token, revocation or
	// introspection endpoint, registered or not.
	Client
	// ClientAddress is the client address of a client authentication.
	ClientAddress
	numKinds
)

// names are the kinds' key prefixes and metric label values.
var names = [numKinds]string{"account", "sign_in_address", "client", "client_address"}

func (k Kind) String() string {
	if k < numKinds {
		return names[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// isAddress reports whether k counts client addresses.
func (k Kind) isAddress() bool { return k == SignInAddress || k == ClientAddress }

// Subject is one thing an attempt is counted against.
type Subject struct {
	Kind  Kind
	Value string
}

// Config tunes a Throttle. Zero fields take the defaults.
type Config struct {
	// AccountFailures is how many failed sign-ins of one account lock it.
	// Default 5; negative: accounts are not throttled.
	AccountFailures int
	// ClientFailures is how many failed authentications of one client_id
	// lock it. Default 5; negative: client ids are not throttled.
	ClientFailures int
	// AddressFailures is how many failures from one client address (an
	// IPv4 address or an IPv6 /64) lock it, counted apart for sign-in and
	// for client authentication. Higher than the others since many users
	// may share an address. Default 20; negative: not throttled.
	AddressFailures int
	// LockMin is the first lock, once a key reaches its threshold; each
	// further failure (possible only once a lock has expired) doubles it.
	// Default 1m.
	LockMin time.Duration
	// LockMax caps the lock. Default 15m.
	LockMax time.Duration
	// Forget is how long after its last failure a key's count starts again
	// from zero. It must be at least LockMax. Default 1h.
	Forget time.Duration
	// Metrics counts refusals and locks. Default: none.
	Metrics *Metrics
	// Clock replaces time.Now, for tests.
	Clock func() time.Time
}

// Defaults of Config.
const (
	DefaultAccountFailures = 5
	DefaultClientFailures  = 5
	DefaultAddressFailures = 20
	DefaultLockMin         = time.Minute
	DefaultLockMax         = 15 * time.Minute
	DefaultForget          = time.Hour
)

// Store is what the throttle keeps its counts in.
type Store interface {
	RecordFailures(ctx context.Context, keys []string, now, since, expires time.Time) ([]tokenstore.Failures, error)
	ClearFailures(ctx context.Context, keys []string, now time.Time) error
	ListFailures(ctx context.Context, now time.Time) ([]tokenstore.Failures, error)
}

// key identifies a counter without allocating.
type key struct {
	kind Kind
	sum  [16]byte
}

// String is the key as stored: "<kind>:<hex>".
func (k key) String() string { return names[k.kind] + ":" + hex.EncodeToString(k.sum[:]) }

func parseKey(s string) (key, bool) {
	for kind, name := range names {
		if len(s) == len(name)+1+32 && s[:len(name)] == name && s[len(name)] == ':' {
			var k key
			if _, err := hex.Decode(k.sum[:], []byte(s[len(name)+1:])); err != nil {
				return key{}, false
			}
			k.kind = Kind(kind)
			return k, true
		}
	}
	return key{}, false
}

// entry is a key's count as last heard of.
type entry struct {
	count int
	last  time.Time
}

// Throttle counts failures and answers whether a subject is locked. A nil
// *Throttle throttles nothing. It is safe for concurrent use.
type Throttle struct {
	store     Store
	now       func() time.Time
	threshold [numKinds]int
	lockMin   time.Duration
	lockMax   time.Duration
	forget    time.Duration
	m         *Metrics

	mu   sync.RWMutex
	view map[key]entry
	// size mirrors len(view), so that a check with nothing to look at takes
	// no lock.
	size atomic.Int64
	// sweepAt is the size at which expired entries are next dropped.
	sweepAt int
}

// New checks cfg and returns an empty Throttle; Reload (or the feed, once
// the Throttle is a tokens.Follower) fills it.
func New(store Store, cfg Config) (*Throttle, error) {
	if store == nil {
		return nil, errors.New("throttle: no store")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Throttle{
		store:   store,
		now:     c.Clock,
		lockMin: c.LockMin,
		lockMax: c.LockMax,
		forget:  c.Forget,
		m:       c.Metrics,
		view:    make(map[key]entry),
		sweepAt: 1024,
	}
	t.threshold[Account] = c.AccountFailures
	t.threshold[Client] = c.ClientFailures
	t.threshold[SignInAddress] = c.AddressFailures
	t.threshold[ClientAddress] = c.AddressFailures
	return t, nil
}

// Check reports whether cfg is valid, with its defaults applied.
func (cfg Config) Check() error {
	_, err := cfg.withDefaults()
	return err
}

func (cfg Config) withDefaults() (Config, error) {
	def := func(v *int, d int) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	def(&cfg.AccountFailures, DefaultAccountFailures)
	def(&cfg.ClientFailures, DefaultClientFailures)
	def(&cfg.AddressFailures, DefaultAddressFailures)
	if cfg.LockMin == 0 {
		cfg.LockMin = DefaultLockMin
	}
	if cfg.LockMax == 0 {
		cfg.LockMax = max(DefaultLockMax, cfg.LockMin)
	}
	if cfg.Forget == 0 {
		cfg.Forget = max(DefaultForget, cfg.LockMax)
	}
	switch {
	case cfg.LockMin < time.Second:
		return cfg, fmt.Errorf("throttle: lock %v: must be at least 1s", cfg.LockMin)
	case cfg.LockMax < cfg.LockMin:
		return cfg, fmt.Errorf("throttle: the longest lock (%v) is shorter than the first (%v)", cfg.LockMax, cfg.LockMin)
	case cfg.Forget < cfg.LockMax:
		return cfg, fmt.Errorf("throttle: failures forgotten after %v, before the longest lock (%v) ends", cfg.Forget, cfg.LockMax)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return cfg, nil
}

// lockFor is how long count failures lock a key of kind, from its last.
func (t *Throttle) lockFor(kind Kind, count int) time.Duration {
	th := t.threshold[kind]
	if th == 0 || count < th {
		return 0
	}
	d := t.lockMin
	for i := th; i < count && d < t.lockMax; i++ {
		d *= 2
	}
	return min(d, t.lockMax)
}

// remaining is how long e still locks a key of kind at now.
func (t *Throttle) remaining(kind Kind, e entry, now time.Time) time.Duration {
	if now.Sub(e.last) > t.forget {
		return 0
	}
	return max(0, e.last.Add(t.lockFor(kind, e.count)).Sub(now))
}

func (t *Throttle) keyOf(s Subject) key {
	var buf [128]byte
	b := append(buf[:0], names[s.Kind]...)
	b = append(b, 0)
	if a, ok := parseAddress(s); ok {
		b = append(b, a[:]...)
	} else {
		b = append(b, s.Value...)
	}
	sum := sha256.Sum256(b)
	k := key{kind: s.Kind}
	copy(k.sum[:], sum[:])
	return k
}

// parseAddress reads an address subject as its AddressBlock.
func parseAddress(s Subject) ([16]byte, bool) {
	if !s.Kind.isAddress() {
		return [16]byte{}, false
	}
	return AddressBlock(s.Value)
}

// AddressBlock is the block of addresses one client is counted as: an IPv4
// address alone (as IPv4-mapped IPv6), an IPv6 address as its /64, which
// one host usually holds entirely. It reports false for a string that is
// not an IP address. Everything that limits by client address counts by it.
func AddressBlock(addr string) ([16]byte, bool) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return [16]byte{}, false
	}
	b := a.Unmap().As16()
	if a.Unmap().Is6() {
		clear(b[8:])
	}
	return b, true
}

// counted reports whether failures of s are counted at all.
func (t *Throttle) counted(s Subject) bool {
	return s.Kind < numKinds && t.threshold[s.Kind] > 0 && (s.Value != "" || s.Kind == Account)
}

// Locked returns how long the longest lock of subjects still lasts, or 0.
// It reads only memory; with no recent failure anywhere it takes no lock.
func (t *Throttle) Locked(subjects ...Subject) time.Duration {
	if t == nil || t.size.Load() == 0 {
		return 0
	}
	now := t.now()
	var d time.Duration
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, s := range subjects {
		if !t.counted(s) {
			continue
		}
		if e, ok := t.view[t.keyOf(s)]; ok {
			d = max(d, t.remaining(s.Kind, e, now))
		}
	}
	return d
}

// Refused counts an attempt at endpoint refused because Locked said so.
func (t *Throttle) Refused(endpoint string) {
	if t != nil {
		t.m.refused(endpoint)
	}
}

// Failed records a failed authentication of subjects at endpoint and
// returns how long the longest lock now in force lasts, including one this
// failure started.
//
// An address is charged once per account or client id whose count starts
// (or, when that is not counted, once per failure): it is the guard against
// guessing across many accounts from one place, and one user mistyping, or
// one client retrying a stale secret, must not lock out everyone behind the
// same address. The store says whose count starts, so concurrent failures
// of one client id charge the address once. A failure is one store write;
// the first of an account or client id, two.
func (t *Throttle) Failed(ctx context.Context, endpoint string, subjects ...Subject) (time.Duration, error) {
	if t == nil {
		return 0, nil
	}
	var pk, ak [int(numKinds)]key
	primary, addrs := pk[:0], ak[:0]
	for _, s := range subjects {
		switch {
		case !t.counted(s):
		case s.Kind.isAddress() && len(addrs) < len(ak):
			addrs = append(addrs, t.keyOf(s))
		case !s.Kind.isAddress() && len(primary) < len(pk):
			primary = append(primary, t.keyOf(s))
		}
	}
	now := t.now()
	d, started, err := t.record(ctx, endpoint, now, primary)
	if err != nil {
		return 0, err
	}
	if len(primary) == 0 || started {
		da, _, err := t.record(ctx, endpoint, now, addrs)
		if err != nil {
			return 0, err
		}
		d = max(d, da)
	}
	// An address already locked stays locked whether or not it was charged.
	t.mu.RLock()
	for _, k := range addrs {
		if e, ok := t.view[k]; ok {
			d = max(d, t.remaining(k.kind, e, now))
		}
	}
	t.mu.RUnlock()
	return d, nil
}

// record adds a failure to keys in one store write and returns the longest
// lock among them and whether any count started at 1.
func (t *Throttle) record(ctx context.Context, endpoint string, now time.Time, keys []key) (time.Duration, bool, error) {
	if len(keys) == 0 {
		return 0, false, nil
	}
	var strs [int(numKinds)]string
	stored := strs[:0]
	for _, k := range keys {
		stored = append(stored, k.String())
	}
	got, err := t.store.RecordFailures(ctx, stored, now, now.Add(-t.forget), now.Add(t.forget))
	if err != nil {
		return 0, false, fmt.Errorf("recording failed authentication: %w", err)
	}
	var d time.Duration
	started := false
	t.mu.Lock()
	for i, f := range got {
		e := entry{count: f.Count, last: f.LastAt}
		t.setLocked(keys[i], e)
		// Failures are refused, not counted, while a lock lasts, so each
		// one counted at or past the threshold starts a lock.
		if t.lockFor(keys[i].kind, f.Count) > 0 {
			t.m.locked(endpoint, keys[i].kind)
		}
		d = max(d, t.remaining(keys[i].kind, e, now))
		started = started || f.Count == 1
	}
	t.mu.Unlock()
	return d, started, nil
}

// Succeeded forgets the failures of subjects that have any, except client
// addresses: one good password must not buy an address more guesses at
// other accounts. It writes to the store only when there is something to
// forget.
func (t *Throttle) Succeeded(ctx context.Context, subjects ...Subject) error {
	if t == nil || t.size.Load() == 0 {
		return nil
	}
	var ks [int(numKinds)]key
	keys := ks[:0]
	t.mu.RLock()
	for _, s := range subjects {
		if !t.counted(s) || s.Kind.isAddress() || len(keys) == len(ks) {
			continue
		}
		k := t.keyOf(s)
		if e, ok := t.view[k]; ok && e.count > 0 {
			keys = append(keys, k)
		}
	}
	t.mu.RUnlock()
	if len(keys) == 0 {
		return nil
	}
	stored := make([]string, len(keys))
	for i, k := range keys {
		stored[i] = k.String()
	}
	if err := t.store.ClearFailures(ctx, stored, t.now()); err != nil {
		return fmt.Errorf("clearing failed authentications: %w", err)
	}
	t.mu.Lock()
	for _, k := range keys {
		t.setLocked(k, entry{})
	}
	t.mu.Unlock()
	return nil
}

// setLocked records e as k's count; t.mu is held.
func (t *Throttle) setLocked(k key, e entry) {
	if e.count == 0 {
		delete(t.view, k)
	} else {
		t.view[k] = e
		if len(t.view) >= t.sweepAt {
			t.sweepLocked()
		}
	}
	t.size.Store(int64(len(t.view)))
}

// sweepLocked drops forgotten entries once the view has doubled since the
// last sweep, so an attack with many keys costs memory only for Forget.
func (t *Throttle) sweepLocked() {
	now := t.now()
	for k, e := range t.view {
		if now.Sub(e.last) > t.forget {
			delete(t.view, k)
		}
	}
	t.sweepAt = max(1024, 2*len(t.view))
}

// Reload replaces the view with the store's unexpired counts. It makes the
// Throttle a tokens.Follower.
func (t *Throttle) Reload(ctx context.Context) error {
	list, err := t.store.ListFailures(ctx, t.now())
	if err != nil {
		return fmt.Errorf("loading failed authentications: %w", err)
	}
	view := make(map[key]entry, len(list))
	for _, f := range list {
		if k, ok := parseKey(f.Key); ok && f.Count > 0 {
			view[k] = entry{count: f.Count, last: f.LastAt}
		}
	}
	t.mu.Lock()
	t.view = view
	t.sweepAt = max(1024, 2*len(view))
	t.size.Store(int64(len(view)))
	t.mu.Unlock()
	return nil
}

// Apply takes every count announced on the change feed, in feed order,
// which is the order the store counted in. A node's own count, taken at
// once in Failed, is announced again there.
func (t *Throttle) Apply(changes []tokenstore.Change) {
	locked := false
	for _, c := range changes {
		if c.Kind != tokenstore.ChangeFailures {
			continue
		}
		f, ok := tokenstore.ParseFailuresChange(c.Key)
		if !ok {
			continue
		}
		k, ok := parseKey(f.Key)
		if !ok {
			continue
		}
		if !locked {
			t.mu.Lock()
			locked = true
		}
		t.setLocked(k, entry{count: f.Count, last: f.LastAt})
	}
	if locked {
		t.mu.Unlock()
	}
}
