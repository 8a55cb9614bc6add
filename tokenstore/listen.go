package tokenstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listener timing. A notification can be missed only while disconnected, and
// every reconnection signals Wakeup, so the backoff bounds how stale a node's
// caches can get when the database blips.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 2 * time.Second
	// listenHealthEvery is how long the listener waits in silence before
	// pinging, so that a half-open connection (a partitioned or restarted
	// server) is noticed long before TCP keepalive would.
	listenHealthEvery = 30 * time.Second
)

// listener follows LISTEN/NOTIFY on a dedicated connection: the pool's
// connections come and go, and a notification is delivered only to the
// session that listens.
type listener struct {
	cfg    *pgx.ConnConfig
	wake   func()
	cancel context.CancelFunc
	done   chan struct{}
}

// startListener returns once the first LISTEN has been established or has
// failed (it is then retried in the background), waiting at most ready, so
// that a node is normally listening by the time Open returns.
func startListener(cfg *pgx.ConnConfig, wake func(), ready time.Duration) *listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{cfg: cfg, wake: wake, cancel: cancel, done: make(chan struct{})}
	first := make(chan struct{})
	go l.run(ctx, sync.OnceFunc(func() { close(first) }))
	t := time.NewTimer(ready)
	defer t.Stop()
	select {
	case <-first:
	case <-t.C:
	}
	return l
}

// stop ends the listener and waits for it.
func (l *listener) stop() {
	l.cancel()
	<-l.done
}

func (l *listener) run(ctx context.Context, attempted func()) {
	defer close(l.done)
	backoff := listenMinBackoff
	for {
		listened := l.session(ctx, attempted)
		attempted()
		if listened {
			backoff = listenMinBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, listenMaxBackoff)
	}
}

// session connects, listens and relays notifications until the connection
// fails or ctx ends, and reports whether LISTEN succeeded. Errors are not
// kept: the pool reports the same outage to callers as ErrUnavailable.
func (l *listener) session(ctx context.Context, established func()) bool {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return false
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return false
	}
	l.wake() // whatever happened while not listening is unknown
	established()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenHealthEvery)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			l.wake()
		case ctx.Err() != nil:
			return true
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			pctx, cancel := context.WithTimeout(ctx, l.cfg.ConnectTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return true
			}
		default:
			return true
		}
	}
}
