// Package tokens mints and verifies oauthgate's tokens and owns every
// in-memory cache the gateway's hot path reads: the verified-token cache, the
// signing key set, the revocation deny list and the client cache.
//
// All of them are kept correct by the store's change feed (see
// tokenstore.Feed), so that on a cache hit Verify touches no database, takes
// no lock that writers hold for long, and logs nothing above debug.
package tokens

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// Config configures a Service. The zero value of every field but Issuer
// selects the documented default.
type Config struct {
	// Issuer is the exact string put in and required of the iss claim.
	Issuer string
	// Audience is the aud of access tokens and what Verify requires.
	// Default: Issuer.
	Audience string
	// Resources are the RFC 8707 resource identifiers of the configuration
	// (the oauth_protect handlers'): Verify also accepts a token whose aud
	// names one of them.
	Resources []string
	// Alg is the signing algorithm of new keys: "ES256" (default), "EdDSA"
	// or "RS256" (3072-bit keys).
	Alg string
	// AccessTTL is the lifetime of access tokens. Default: 1h.
	AccessTTL time.Duration
	// AccessFormat is FormatJWT (default: RFC 9068 JWTs, verified by
	// signature) or FormatOpaque (random references whose claims the store
	// keeps; see opaque.go).
	AccessFormat string
	// AccessPrefix starts every opaque access token (e.g. "yapp_at_");
	// only with FormatOpaque. Default: none.
	AccessPrefix string
	// IDTokenTTL is the lifetime of id_tokens. Default: 1h.
	IDTokenTTL time.Duration
	// RotationPeriod replaces the active signing keys once they are older
	// than this; see CheckRotationPeriod for what is accepted. Default 0:
	// no automatic rotation.
	RotationPeriod time.Duration
	// CacheMaxBytes bounds the verified-token cache. Default: 64 MiB.
	CacheMaxBytes int64
	// PollInterval is how often the change feed is re-read even without a
	// wakeup from the store. Default: 1s.
	PollInterval time.Duration
	// MaxStaleness makes Verify fail closed with ErrUnavailable once the
	// change feed could not be read for this long, since a revocation may
	// have been missed. Default: 5m. Negative: never fail closed.
	MaxStaleness time.Duration
	// StaticClients are declared in configuration and take precedence over
	// stored clients with the same ID.
	StaticClients []*tokenstore.Client
	// Followers keep state of their own current from the change feed this
	// Service follows (the store's Wakeup has room for one reader).
	Followers []Follower
	// Logger receives the service's logs. Default: zap.NewNop().
	Logger *zap.Logger
	// Metrics receives the service's counters. Default: none.
	Metrics *Metrics

	// Clock tells the time. Default: time.Now (tests inject a fake one).
	Clock func() time.Time
	// after replaces time.After in tests where it paces work by that clock
	// (the unknown-kid reload throttle).
	after func(time.Duration) <-chan time.Time
}

// Defaults of Config.
const (
	DefaultAlg           = "ES256"
	DefaultAccessTTL     = time.Hour
	DefaultIDTokenTTL    = time.Hour
	DefaultCacheMaxBytes = 64 << 20
	DefaultPollInterval  = time.Second
	DefaultMaxStaleness  = 5 * time.Minute
)

// skew is the clock difference tolerated between nodes for exp, nbf and iat.
const skew = 30 * time.Second

// housekeepingInterval is how often expired state is pruned, rotation is
// considered and the key set and deny list are re-read in full (catching any
// change the feed may have skipped).
const housekeepingInterval = time.Minute

// Service mints and verifies tokens. It is safe for concurrent use.
type Service struct {
	store Store
	cfg   Config
	log   *zap.Logger
	m     metrics
	now   func() time.Time

	keys     atomic.Pointer[keySet]
	keysMu   sync.Mutex      // serialises loadKeys
	badKeys  map[string]bool // undecodable keys already logged; guarded by keysMu
	kids     kidGate         // reloads of the key set for unknown kids
	rotateMu sync.Mutex      // serialises Rotate on this node

	cache   *tokenCache
	deny    atomic.Pointer[denyList]
	denyMu  sync.Mutex // serialises writers of deny
	clients clientCache

	// lookups merges concurrent store reads of one opaque token (a
	// client's burst of first requests) into one.
	lookups singleflight.Group
	// lookupSlots holds one token per opaque-token store read in flight
	// (at most maxOpaqueLookups).
	lookupSlots chan struct{}
	// rereads merges concurrent store reads of one client on the refusal
	// path of ClientOwns; rereadSeq numbers them (owns.go).
	rereads   singleflight.Group
	rereadSeq atomic.Uint64

	// feedOK is the unix-nano time of the last successful read of the
	// change feed; Verify compares it with MaxStaleness.
	feedOK atomic.Int64
	// storeDown is set while the last read of the change feed failed;
	// Available reports it to the token endpoint.
	storeDown atomic.Bool
	// maxTTL is the longest access-token TTL this node has minted, so that
	// grant revocations outlive every token they must deny.
	maxTTL atomic.Int64
	// internalTTL is the longest SignInternal TTL this node has used; key
	// retention covers it.
	internalTTL atomic.Int64

	// seq is the last change applied. It is written only by the watcher
	// (and New before it starts); atomic so tests can wait for it.
	seq atomic.Int64

	// Owned by the watcher goroutine.
	feedDown   bool
	feedDownAt time.Time
	houseDown  bool
	resync     bool

	// life ends with Close; background work started on demand uses it.
	life      context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// CheckConfig reports what New would refuse in cfg without touching a
// store, so a configuration can be validated before anything starts.
func CheckConfig(cfg Config) error {
	if cfg.Issuer == "" {
		return errors.New("tokens: issuer is required")
	}
	if cfg.Alg != "" {
		if _, err := parseAlg(cfg.Alg); err != nil {
			return fmt.Errorf("tokens: %w", err)
		}
	}
	if _, err := newStaticClients(cfg.StaticClients); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	if err := checkAccessFormat(cfg.AccessFormat, cfg.AccessPrefix); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	return nil
}

// New loads (or, on a new store, creates) the signing key set, the active
// revocations and the position in the change feed, then starts the
// goroutine that follows the feed. ctx bounds the initial load and the
// lifetime of that goroutine; Close stops it too.
func New(ctx context.Context, store Store, cfg Config) (*Service, error) {
	if store == nil {
		return nil, errors.New("tokens: no store")
	}
	if cfg.Issuer == "" {
		return nil, errors.New("tokens: issuer is required")
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.Issuer
	}
	if cfg.Alg == "" {
		cfg.Alg = DefaultAlg
	}
	if err := CheckConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.IDTokenTTL <= 0 {
		cfg.IDTokenTTL = DefaultIDTokenTTL
	}
	if err := CheckRotationPeriod(cfg.RotationPeriod, cfg.AccessTTL); err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	if cfg.CacheMaxBytes <= 0 {
		cfg.CacheMaxBytes = DefaultCacheMaxBytes
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.MaxStaleness == 0 {
		cfg.MaxStaleness = DefaultMaxStaleness
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.after == nil {
		cfg.after = time.After
	}
	static, err := newStaticClients(cfg.StaticClients)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}

	s := &Service{
		store:   store,
		cfg:     cfg,
		log:     cfg.Logger,
		m:       newMetrics(cfg.Metrics),
		now:     cfg.Clock,
		clients: clientCache{static: static},
		done:    make(chan struct{}),

		lookupSlots: make(chan struct{}, maxOpaqueLookups),
	}
	s.maxTTL.Store(int64(cfg.AccessTTL))
	s.deny.Store(&denyList{})
	s.cache, err = newTokenCache(cfg.CacheMaxBytes)
	if err != nil {
		return nil, fmt.Errorf("tokens: creating token cache: %w", err)
	}

	wctx, cancel := context.WithCancel(ctx)
	s.life, s.cancel = wctx, cancel
	if err := s.load(ctx); err != nil {
		cancel()
		s.cache.close()
		return nil, fmt.Errorf("tokens: %w", err)
	}
	go s.watch(wctx)
	return s, nil
}

// load reads the feed position before the state it covers, so that a
// change recorded meanwhile is replayed rather than lost (applying a change
// is idempotent).
func (s *Service) load(ctx context.Context) error {
	seq, err := s.store.LastChange(ctx)
	if err != nil {
		return fmt.Errorf("reading change feed: %w", err)
	}
	s.seq.Store(seq)
	if err := s.initKeys(ctx); err != nil {
		return err
	}
	if err := s.reloadRevocations(ctx); err != nil {
		return err
	}
	if err := s.reloadFollowers(ctx); err != nil {
		return err
	}
	s.feedOK.Store(s.now().UnixNano())
	return nil
}

// Close stops the background goroutine and releases the caches. It does not
// close the store, which the caller owns.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		<-s.done
		s.cache.close()
	})
	return nil
}

// maxTokenTTL is the longest lifetime of any token this node signs.
func (s *Service) maxTokenTTL() time.Duration {
	return max(time.Duration(s.maxTTL.Load()), s.cfg.IDTokenTTL, time.Duration(s.internalTTL.Load()))
}
