package tokenstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Config says which database to open and how patiently to talk to it.
type Config struct {
	// Driver is "sqlite" (the default) or "postgres".
	Driver string
	// DSN is, for sqlite, the path of the database file (its parent
	// directories are created with mode 0700 and the file with mode 0600);
	// for postgres, a pgx connection string or URL.
	DSN string
	// MaxOpenConns caps the connection pool. Default: 10 for postgres, 4 for
	// sqlite (which admits one writer at a time anyway).
	MaxOpenConns int
	// ConnectTimeout bounds establishing a connection. Default: 5s.
	ConnectTimeout time.Duration
	// StatementTimeout bounds every operation, so that a stuck database
	// turns into ErrUnavailable instead of piling up requests. On postgres
	// it is also the server-side statement_timeout. Default: 5s.
	StatementTimeout time.Duration
}

// Driver names accepted by Config.Driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Defaults applied by Open to zero Config fields.
const (
	DefaultConnectTimeout   = 5 * time.Second
	DefaultStatementTimeout = 5 * time.Second
	defaultPostgresConns    = 10
	defaultSQLiteConns      = 4
	// migrateTimeout bounds waiting for another node's migrations plus
	// running ours; schema changes are not held to StatementTimeout.
	migrateTimeout = time.Minute
)

// store is the database/sql implementation of Store for both engines.
type store struct {
	db      *sql.DB
	d       dialect
	timeout time.Duration
	// wakeup has room for one value: a pending wakeup covers every change
	// recorded before it is received.
	wakeup   chan struct{}
	listener *listener // postgres only

	closeOnce sync.Once
	closeErr  error
}

// Open connects to the database cfg names and brings its schema up to date.
// Nodes opening one database together are safe: migrations run under a
// lock and exactly once.
func Open(ctx context.Context, cfg Config) (Store, error) {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.StatementTimeout <= 0 {
		cfg.StatementTimeout = DefaultStatementTimeout
	}
	switch cfg.Driver {
	case "", DriverSQLite:
		return openSQLite(ctx, cfg)
	case DriverPostgres, "postgresql", "pgx":
		return openPostgres(ctx, cfg)
	}
	return nil, fmt.Errorf("opening store: unknown driver %q (want %q or %q)", cfg.Driver, DriverSQLite, DriverPostgres)
}

func openSQLite(ctx context.Context, cfg Config) (Store, error) {
	path := cfg.DSN
	if path == "" {
		return nil, errors.New("opening sqlite: a database file path is required")
	}
	if strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") || path == ":memory:" {
		// An in-memory database would be one per pooled connection.
		return nil, errors.New("opening sqlite: the dsn must be a plain file path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("opening sqlite: %w", err)
	}
	// Create the file ourselves so that it never exists with a wider mode;
	// SQLite gives the -wal and -shm files the mode of the database.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("opening sqlite: %w", err)
	}

	q := url.Values{}
	// busy_timeout comes first (the driver orders it so): it makes a writer
	// wait for the lock rather than fail at once, and its expiry is reported
	// as ErrUnavailable.
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(ON)")
	// In WAL mode (set by enableWAL), synchronous=NORMAL keeps every
	// committed transaction across a process crash, SIGKILL included: the
	// WAL is already written to the OS. Only an OS crash or power loss may
	// drop the last commits, and never corrupts the database.
	q.Add("_pragma", "synchronous(NORMAL)")
	// Every transaction takes the write lock at BEGIN, so two writers never
	// both hold a read snapshot and deadlock upgrading it (SQLITE_BUSY
	// without waiting). The package only opens transactions to write.
	q.Set("_txlock", "immediate")

	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening sqlite: %w", err)
	}
	n := cfg.MaxOpenConns
	if n <= 0 {
		n = defaultSQLiteConns
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := enableWAL(ctx, db, cfg.ConnectTimeout); err != nil {
		db.Close()
		return nil, fail("opening sqlite", err)
	}
	return finishOpen(ctx, cfg, db, sqliteDialect, nil)
}

// enableWAL switches the database file to WAL, which lets readers proceed
// during a write and persists in the file. Processes opening a new file
// together race for the switch, and SQLite reports the losers busy without
// waiting, so they retry until timeout.
func enableWAL(ctx context.Context, db *sql.DB, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		switch {
		case err == nil && strings.EqualFold(mode, "wal"):
			return nil
		case err == nil:
			return fmt.Errorf("enabling WAL: journal mode is still %q", mode)
		case !isBusy(err):
			return fmt.Errorf("enabling WAL: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("enabling WAL: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func openPostgres(ctx context.Context, cfg Config) (Store, error) {
	pc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		// The parse error repeats the DSN, which may hold a password.
		return nil, errors.New("opening postgres: cannot parse the dsn")
	}
	pc.ConnectTimeout = cfg.ConnectTimeout
	pc.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	if pc.RuntimeParams["application_name"] == "" {
		pc.RuntimeParams["application_name"] = "oauthgate"
	}
	listenCfg := pc.Copy()

	db := stdlib.OpenDB(*pc)
	n := cfg.MaxOpenConns
	if n <= 0 {
		n = defaultPostgresConns
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return finishOpen(ctx, cfg, db, postgresDialect, listenCfg)
}

// finishOpen checks the connection, migrates and, on postgres, starts
// listening for other nodes' changes.
func finishOpen(ctx context.Context, cfg Config, db *sql.DB, d dialect, listenCfg *pgx.ConnConfig) (Store, error) {
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	err := db.PingContext(pctx)
	cancel()
	if err != nil {
		db.Close()
		return nil, fail("opening "+d.name, err)
	}
	mctx, cancel := context.WithTimeout(ctx, migrateTimeout)
	err = migrate(mctx, db, d)
	cancel()
	if err != nil {
		db.Close()
		return nil, fail("migrating "+d.name, err)
	}
	s := &store{
		db:      db,
		d:       d,
		timeout: cfg.StatementTimeout,
		wakeup:  make(chan struct{}, 1),
	}
	if listenCfg != nil {
		s.listener = startListener(listenCfg, s.wake, cfg.ConnectTimeout)
	}
	return s, nil
}

// Ping checks the database answers within the statement timeout.
func (s *store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return fail("pinging "+s.d.name, s.db.PingContext(ctx))
}

// Stats reports the connection pool.
func (s *store) Stats() sql.DBStats { return s.db.Stats() }

// Close stops listening for changes and closes the pool. It is safe to call
// more than once. The Wakeup channel is left open.
func (s *store) Close() error {
	s.closeOnce.Do(func() {
		if s.listener != nil {
			s.listener.stop()
		}
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("closing %s: %w", s.d.name, err)
		}
	})
	return s.closeErr
}

// bound applies the statement timeout to one operation.
func (s *store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// wake signals Wakeup without ever blocking.
func (s *store) wake() {
	select {
	case s.wakeup <- struct{}{}:
	default:
	}
}

// Interface guards
var _ Store = (*store)(nil)
