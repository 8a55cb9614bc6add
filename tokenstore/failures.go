package tokenstore

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Failures is the count of recent failed authentications of one key. Keys
// are opaque to the store: the caller hashes what they stand for (an
// account, a client id, a client address), so no e-mail or address is
// stored or put in the change feed.
type Failures struct {
	Key   string
	Count int
	// LastAt is the time of the newest failure counted, or of the clearing
	// when Count is 0.
	LastAt time.Time
	// ExpiresAt is when Prune deletes the record.
	ExpiresAt time.Time
}

// RecordFailures adds one failure to each key in one transaction and
// returns the new counts in the order of keys. A key whose last failure is
// before since starts again from 1. Each record's ExpiresAt becomes
// expires; each new count is announced on the change feed (ChangeFailures).
func (s *store) RecordFailures(ctx context.Context, keys []string, now, since, expires time.Time) ([]Failures, error) {
	const op = "recording failed authentication"
	if len(keys) == 0 {
		return nil, nil
	}
	for _, k := range keys {
		if !validFailureKey(k) {
			return nil, errors.New(op + ": invalid key")
		}
	}
	// Rows are locked in key order and the feed lock is taken after them,
	// so transactions counting overlapping keys cannot deadlock.
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return keys[order[a]] < keys[order[b]] })
	out := make([]Failures, len(keys))
	err := s.write(ctx, op, func(ctx context.Context, t *tx) error {
		for _, i := range order {
			var n int
			var last, exp int64
			// The upsert holds the row until commit, so two nodes counting
			// the same key both count, and their changes reach the feed in
			// count order.
			if err := t.row(ctx, `INSERT INTO auth_failures (key, failures, last_at, expires_at) VALUES (?, 1, ?, ?)
				ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN auth_failures.last_at < ? THEN 1 ELSE auth_failures.failures + 1 END,
				last_at = CASE WHEN excluded.last_at > auth_failures.last_at
					THEN excluded.last_at ELSE auth_failures.last_at END,
				expires_at = CASE WHEN excluded.expires_at > auth_failures.expires_at
					THEN excluded.expires_at ELSE auth_failures.expires_at END
				RETURNING failures, last_at, expires_at`,
				keys[i], ms(now), ms(expires), ms(since)).Scan(&n, &last, &exp); err != nil {
				return err
			}
			out[i] = Failures{Key: keys[i], Count: n, LastAt: fromMs(last), ExpiresAt: fromMs(exp)}
		}
		for _, f := range out {
			if err := t.change(ctx, ChangeFailures, FailuresChangeKey(f)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ClearFailures forgets the failures of each key that has any and
// announces it on the change feed (ChangeFailures with a count of 0).
func (s *store) ClearFailures(ctx context.Context, keys []string, now time.Time) error {
	return s.write(ctx, "clearing failed authentications", func(ctx context.Context, t *tx) error {
		for _, k := range keys {
			n, err := t.execN(ctx, `DELETE FROM auth_failures WHERE key = ?`, k)
			if err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			if err := t.change(ctx, ChangeFailures, FailuresChangeKey(Failures{Key: k, LastAt: now})); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListFailures returns every record unexpired at now, ordered by key.
func (s *store) ListFailures(ctx context.Context, now time.Time) ([]Failures, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.read().query(ctx, `SELECT key, failures, last_at, expires_at FROM auth_failures
		WHERE expires_at > ? ORDER BY key`, ms(now))
	out, err := collect(rows, err, func(r scanner) (Failures, error) {
		var f Failures
		var last, exp int64
		err := r.Scan(&f.Key, &f.Count, &last, &exp)
		f.LastAt, f.ExpiresAt = fromMs(last), fromMs(exp)
		return f, err
	})
	if err != nil {
		return nil, fail("listing failed authentications", err)
	}
	return out, nil
}

// FailuresChangeKey is the Change.Key announcing f: "<key> <count>
// <last_at ms>", so that a node following the feed learns the new count
// without reading the store.
func FailuresChangeKey(f Failures) string {
	return f.Key + " " + strconv.Itoa(f.Count) + " " + strconv.FormatInt(ms(f.LastAt), 10)
}

// ParseFailuresChange decodes the Key of a ChangeFailures change; ExpiresAt
// is not carried.
func ParseFailuresChange(key string) (Failures, bool) {
	k, rest, ok := strings.Cut(key, " ")
	if !ok || !validFailureKey(k) {
		return Failures{}, false
	}
	c, l, ok := strings.Cut(rest, " ")
	if !ok {
		return Failures{}, false
	}
	n, err1 := strconv.Atoi(c)
	last, err2 := strconv.ParseInt(l, 10, 64)
	if err1 != nil || err2 != nil || n < 0 {
		return Failures{}, false
	}
	return Failures{Key: k, Count: n, LastAt: fromMs(last)}, true
}

// validFailureKey admits short printable keys without spaces, which the
// change-feed encoding relies on.
func validFailureKey(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' {
			return false
		}
	}
	return true
}
