package tokenstore

import (
	"context"
	"database/sql"
	"hash/fnv"
	"strconv"
	"strings"
)

// dialect is everything that differs between SQLite and PostgreSQL. The rest
// of the package writes portable SQL with ? placeholders.
type dialect struct {
	name string
	// numbered placeholders ($1, $2 …) instead of ?.
	numbered bool
	// schema replaces the {{…}} tokens of the embedded migrations.
	schema *strings.Replacer
	// notify is executed in every transaction that records a change, so that
	// other nodes wake up when it commits; empty when there are no other nodes.
	notify string
	// lock takes a transaction-scoped lock by id; empty when the engine
	// admits only one writer at a time anyway.
	lock string
	// forUpdate ends a SELECT that must lock the rows it reads; empty when
	// the write transaction already excludes every other writer.
	forUpdate string
	// forShare ends a SELECT that must keep the rows it reads from being
	// deleted until the transaction ends; empty as forUpdate is.
	forShare string
	// migrateSetup lifts the statement timeout for the migration
	// transaction, which may wait for another node's.
	migrateSetup string
}

// notifyChannel is the LISTEN/NOTIFY channel of the change feed.
const notifyChannel = "oauthgate_changes"

var (
	sqliteDialect = dialect{
		name: "sqlite",
		schema: strings.NewReplacer(
			"{{serial}}", "INTEGER PRIMARY KEY AUTOINCREMENT",
			"{{blob}}", "BLOB",
		),
	}
	postgresDialect = dialect{
		name:     "postgres",
		numbered: true,
		schema: strings.NewReplacer(
			"{{serial}}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
			"{{blob}}", "BYTEA",
		),
		notify:       "SELECT pg_notify('" + notifyChannel + "', '')",
		lock:         "SELECT pg_advisory_xact_lock(?)",
		forUpdate:    " FOR UPDATE",
		forShare:     " FOR SHARE",
		migrateSetup: "SET LOCAL statement_timeout = 0",
	}
)

// Transaction-scoped lock ids (PostgreSQL advisory locks). Whoever takes
// more than one takes them in this order.
const (
	lockMigrate int64 = 0x6f61757468_01 // schema migrations
	lockKeys    int64 = 0x6f61757468_02 // InitKey and AddKey agree on one active key
	lockFeed    int64 = 0x6f61757468_03 // change seq order is commit order
	// lockGrant is the class of the per-grant locks (see grantLock); taken
	// before lockFeed.
	lockGrant int64 = 0x47 << 56
)

// grantLock is the lock id under which CreateGrant and RevokeGrant of one
// grant id run, so that of a creation and a racing revocation one sees the
// other. Two ids sharing a hash merely wait for each other.
func grantLock(id string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return lockGrant | int64(h.Sum64()&(1<<56-1))
}

// rebind rewrites ? placeholders for engines that number them. The package's
// queries contain no other question marks.
func (d dialect) rebind(query string) string {
	if !d.numbered || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// acquire takes a lock held until tx ends. On SQLite every write transaction
// is BEGIN IMMEDIATE, which already excludes every other writer.
func (d dialect) acquire(ctx context.Context, tx *sql.Tx, id int64) error {
	if d.lock == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, d.rebind(d.lock), id)
	return err
}
