package tokenstore

import (
	"context"
	"errors"
	"time"
)

// Registration is what dynamic client registration (RFC 7591) keeps of a
// client beside its Client row: the hash of the registration access token
// that lets it read, update and delete itself (RFC 7592), and the metadata
// it registered that Client has no field for. A client with a Registration
// registered itself: nobody vouched for it.
type Registration struct {
	ClientID string
	// TokenHash is SHA-256 of the registration access token.
	TokenHash []byte
	// Metadata is a JSON object of the registered metadata Client does not
	// hold (client_uri, contacts, token_endpoint_auth_method …).
	Metadata  []byte
	CreatedAt time.Time
}

// Registrations stores what dynamic registration adds to a client. A
// client's registration goes with it: Clients.DeleteClient deletes both.
type Registrations interface {
	// RegisterClient stores c and r (r.ClientID is c.ID) in one
	// transaction: ErrConflict when either exists.
	RegisterClient(ctx context.Context, c *Client, r *Registration) error
	// GetRegistration returns the client's registration, or ErrNotFound
	// for a client that did not register itself (or does not exist).
	GetRegistration(ctx context.Context, clientID string) (*Registration, error)
	// UpdateRegisteredClient replaces c (as UpdateClient does) and the
	// token hash and metadata of its registration, in one transaction:
	// ErrNotFound unless both exist.
	UpdateRegisteredClient(ctx context.Context, c *Client, r *Registration) error
}

// RegisterClient stores c and its registration r in one transaction.
func (s *store) RegisterClient(ctx context.Context, c *Client, r *Registration) error {
	const op = "registering client"
	if c.ID == "" || r.ClientID != c.ID {
		return errors.New(op + ": the registration must name the client")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = c.CreatedAt
	}
	return s.write(ctx, op, func(ctx context.Context, t *tx) error {
		if _, err := t.exec(ctx, `INSERT INTO client_registrations (client_id, token_hash, metadata, created_at)
			VALUES (?, ?, ?, ?)`, r.ClientID, blob(r.TokenHash), metadataText(r.Metadata), ms(r.CreatedAt)); err != nil {
			return err
		}
		return insertClient(ctx, t, c)
	})
}

// GetRegistration returns the registration of clientID or ErrNotFound.
func (s *store) GetRegistration(ctx context.Context, clientID string) (*Registration, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r Registration
	var meta string
	var created int64
	err := s.read().row(ctx, `SELECT client_id, token_hash, metadata, created_at FROM client_registrations
		WHERE client_id = ?`, clientID).Scan(&r.ClientID, &r.TokenHash, &meta, &created)
	if err != nil {
		return nil, fail("getting registration", err)
	}
	r.Metadata, r.CreatedAt = []byte(meta), fromMs(created)
	return &r, nil
}

// UpdateRegisteredClient replaces c and its registration's token hash and
// metadata in one transaction.
func (s *store) UpdateRegisteredClient(ctx context.Context, c *Client, r *Registration) error {
	const op = "updating registered client"
	if r.ClientID != c.ID {
		return errors.New(op + ": the registration must name the client")
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = time.Now()
	}
	return s.write(ctx, op, func(ctx context.Context, t *tx) error {
		n, err := t.execN(ctx, `UPDATE client_registrations SET token_hash = ?, metadata = ? WHERE client_id = ?`,
			blob(r.TokenHash), metadataText(r.Metadata), r.ClientID)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return updateClientRow(ctx, t, c)
	})
}

func metadataText(b []byte) string {
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}
