package tokenstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// LinkOutcome says what LinkCreatedBusiness did.
type LinkOutcome int

// Outcomes of LinkCreatedBusiness.
const (
	// Linked: the business was new; it is now in the directory and owned
	// by the client.
	Linked LinkOutcome = iota + 1
	// AlreadyLinked: the client owned the business already (the same
	// creation replayed, or a link completed earlier); nothing changed but
	// a missing directory entry.
	AlreadyLinked
)

// LinkCreatedBusiness records that a client created a business: in one
// transaction it adds the business to the directory (named by its id) and
// to the businesses the client owns, and announces the client on the
// change feed, so every node's client cache drops it. It is idempotent: a
// business the client owns already is AlreadyLinked. A business that
// exists in the directory without being the client's, or that another
// client owns, is ErrConflict and nothing is stored; an unknown client is
// ErrNotFound.
//
// The directory row serializes concurrent links of one business: the
// second insert waits for the first transaction and then finds the row.
func (s *store) LinkCreatedBusiness(ctx context.Context, clientID, businessID string, now time.Time) (LinkOutcome, error) {
	const op = "linking created business"
	if clientID == "" || businessID == "" {
		return 0, errors.New(op + ": empty id")
	}
	var out LinkOutcome
	err := s.write(ctx, op, func(ctx context.Context, t *tx) error {
		var owned strList
		if err := t.row(ctx, `SELECT businesses FROM clients WHERE id = ?`+t.d.forUpdate, clientID).Scan(&owned); err != nil {
			return classify(err)
		}
		inserted, err := t.execN(ctx, `INSERT INTO businesses (id, name, created_at) VALUES (?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, businessID, businessID, ms(now))
		if err != nil {
			return err
		}
		if slices.Contains(owned, businessID) {
			out = AlreadyLinked
			return nil
		}
		if inserted == 0 {
			return ErrConflict // in the directory already, and not this client's
		}
		// An operator may have given the id to another client before the
		// business existed. LIKE only narrows the scan ('_' is one of its
		// wildcards): the decoded list decides.
		rows, err := t.query(ctx, `SELECT businesses FROM clients WHERE id <> ? AND businesses LIKE ?`,
			clientID, `%"`+strings.ReplaceAll(businessID, `%`, ``)+`"%`)
		others, err := collect(rows, err, func(r scanner) ([]string, error) {
			var l strList
			return l, r.Scan(&l)
		})
		if err != nil {
			return err
		}
		for _, l := range others {
			if slices.Contains(l, businessID) {
				return ErrConflict
			}
		}
		owned = append(owned, businessID)
		slices.Sort(owned)
		if _, err := t.exec(ctx, `UPDATE clients SET businesses = ?, updated_at = ? WHERE id = ?`,
			list(owned), ms(now), clientID); err != nil {
			return err
		}
		out = Linked
		return t.change(ctx, ChangeClient, clientID)
	})
	if err != nil {
		return 0, err
	}
	return out, nil
}

// EditClient changes a client in one transaction: it reads the client with
// its row locked, calls edit, and stores every field but ID and CreatedAt
// (as UpdateClient does), filling a zero UpdatedAt with now. Unlike a
// GetClient then UpdateClient, it cannot undo a business linked in
// between (LinkCreatedBusiness takes the same lock). An error of edit is
// returned as it is, and nothing is stored.
func (s *store) EditClient(ctx context.Context, id string, edit func(c *Client) error) (*Client, error) {
	var c *Client
	var editErr error
	err := s.write(ctx, "editing client", func(ctx context.Context, t *tx) error {
		var err error
		if c, err = scanClient(t.row(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`+t.d.forUpdate, id)); err != nil {
			return classify(err)
		}
		if editErr = edit(c); editErr != nil {
			return editErr
		}
		if c.UpdatedAt.IsZero() {
			c.UpdatedAt = time.Now()
		}
		return updateClientRow(ctx, t, c)
	})
	if editErr != nil {
		return nil, editErr
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}
