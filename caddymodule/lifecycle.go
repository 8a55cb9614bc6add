package caddymodule

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/oauthgate/oauthgate/authserver"
	"github.com/oauthgate/oauthgate/throttle"
	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// The oauthgate app's lifecycle, as Caddy runs it:
//
//   - Provision (app.go) checks the configuration and registers metrics.
//     `caddy validate` stops there, so it opens no database and writes
//     nothing.
//   - Start opens the store (or shares the one an earlier configuration
//     opened: storePool), loads or creates the key set, starts following the
//     change feed and brings the declared users into the directory. Then it
//     publishes the running state.
//   - Handlers and the admin API take the running state per request
//     (App.acquire). Caddy starts apps in no fixed order, so the http app
//     may listen before this app has started: a request that comes first
//     waits for Start rather than failing.
//   - On a reload Caddy starts the new configuration before it stops the
//     old one, and the old configuration's servers finish the requests they
//     accepted after that. Both configurations share the store through
//     storePool, each has its own token service, and the old one is released
//     once its configuration is torn down and its last request is done.

// startWait bounds how long a request waits for the app to start.
const startWait = 30 * time.Second

// storePool shares one open store per store configuration among the Caddy
// configurations that use it, so that a reload neither reopens the
// database nor runs its migrations again, and the old and new
// configurations write through one connection pool while they overlap.
var storePool = caddy.NewUsagePool()

// pooledStore lets storePool close the store when its last user lets go.
type pooledStore struct{ tokenstore.Store }

// Destruct implements caddy.Destructor.
func (p pooledStore) Destruct() error { return p.Close() }

// running is what Start builds and every request of one configuration
// uses. It is reference-counted: the app holds one reference until its
// configuration is cleaned up, each request one while it uses it, and
// whoever lets go of the last one closes it.
type running struct {
	store  tokenstore.Store
	tokens *tokens.Service
	server *authserver.Server

	// refs counts the references; retire subtracts retiredBias as well,
	// so that afterwards it is never positive and acquire fails.
	refs      atomic.Int64
	closeOnce sync.Once
	poolKey   tokenstore.Config
	logger    *zap.Logger
}

const retiredBias = 1 << 62

// acquire takes a reference; it fails once the state is retired.
func (rt *running) acquire() bool {
	if rt.refs.Add(1) > 0 {
		return true
	}
	rt.release()
	return false
}

// release returns a reference taken by acquire.
func (rt *running) release() {
	if rt.refs.Add(-1) == -retiredBias {
		rt.closeOnce.Do(rt.close)
	}
}

// retire drops the app's own reference: no request takes the state after
// this, and the last one still holding it closes it.
func (rt *running) retire() {
	if rt.refs.Add(-1-retiredBias) == -retiredBias {
		rt.closeOnce.Do(rt.close)
	}
}

// close stops the token service (and with it the change feed and key
// rotation) and gives the store back to storePool.
func (rt *running) close() {
	var errs []error
	if rt.tokens != nil {
		errs = append(errs, rt.tokens.Close())
	}
	if rt.store != nil {
		_, err := storePool.Delete(rt.poolKey)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		rt.logger.Error("stopping oauthgate", zap.Error(err))
	}
}

// Start opens the store, loads or creates the signing keys, starts the
// token service and its change feed, builds the authorization server and
// brings the declared users into the directory.
func (a *App) Start() error {
	defer close(a.ready)
	rt, err := a.start()
	if err != nil {
		return err
	}
	a.rt.Store(rt)
	return nil
}

func (a *App) start() (*running, error) {
	// Opening, migrating and syncing the directory are bounded; the token
	// service lives as long as the configuration.
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	sc := a.storeCfg
	val, _, err := storePool.LoadOrNew(sc, func() (caddy.Destructor, error) {
		s, err := tokenstore.Open(ctx, sc)
		if err != nil {
			return nil, err
		}
		return pooledStore{s}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("opening %s store: %w", sc.Driver, err)
	}
	rt := &running{store: val.(pooledStore).Store, poolKey: sc, logger: a.logger}
	rt.refs.Store(1)
	if err := a.build(ctx, rt); err != nil {
		rt.retire()
		return nil, err
	}
	return rt, nil
}

func (a *App) build(ctx context.Context, rt *running) error {
	tcfg, scfg := a.tokensCfg, a.serverCfg
	// Every oauth_protect has registered its resource by now: Caddy
	// provisions all handlers before it starts any app.
	tcfg.Resources = a.resources.ids()
	scfg.Resources = tcfg.Resources
	if a.throttleCfg != nil {
		th, err := throttle.New(rt.store, *a.throttleCfg)
		if err != nil {
			return err
		}
		// The throttle's view of failures follows the change feed.
		tcfg.Followers = append(tcfg.Followers[:len(tcfg.Followers):len(tcfg.Followers)], th)
		scfg.Throttle = th
	}
	var err error
	if rt.tokens, err = tokens.New(a.ctx, rt.store, tcfg); err != nil {
		return fmt.Errorf("starting token service: %w", err)
	}
	if rt.server, err = authserver.New(scfg, rt.store, rt.tokens); err != nil {
		return err
	}
	return syncUsers(ctx, rt.server, a.users)
}

// Stop implements caddy.App. The running state outlives it on purpose:
// Caddy stops a configuration's apps in no fixed order, and its HTTP
// servers may still be answering (on a reload they finish the requests
// they accepted), so the state is released by Cleanup, which Caddy calls
// after every app of the configuration has stopped, once the last request
// holding it is done.
func (a *App) Stop() error { return nil }

// Cleanup releases what Start built when the configuration unloads
// (immediately if no request holds it).
func (a *App) Cleanup() error {
	if rt := a.rt.Load(); rt != nil {
		rt.retire()
	}
	return nil
}

// acquire returns the running state with a reference the caller must
// release, or nil if the app is not running: it failed to start, its
// configuration was unloaded, or it did not start within startWait. A
// request that arrives before Start (Caddy may start the http app first)
// waits for it. Once running, it costs one atomic load and one add.
func (a *App) acquire(ctx context.Context) *running {
	if rt := a.rt.Load(); rt != nil {
		if rt.acquire() {
			return rt
		}
		return nil
	}
	t := time.NewTimer(startWait)
	defer t.Stop()
	select {
	case <-a.ready:
	case <-a.ctx.Done():
	case <-ctx.Done():
	case <-t.C:
	}
	if rt := a.rt.Load(); rt != nil && rt.acquire() {
		return rt
	}
	return nil
}

// storeStats reads the running store's pool statistics for the metrics;
// zero before Start.
func (a *App) storeStats() sql.DBStats {
	if rt := a.rt.Load(); rt != nil {
		return rt.store.Stats()
	}
	return sql.DBStats{}
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
	_ caddy.Destructor   = pooledStore{}
)
