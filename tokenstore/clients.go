package tokenstore

import (
	"context"
	"errors"
	"time"
)

const clientColumns = `id, secret_hash, name, grant_types, scopes, redirect_uris, businesses,
	is_first_party, is_public, created_at, updated_at, post_logout_redirect_uris, id_token_signed_response_alg,
	dpop_bound_access_tokens, owner_id, owner_business_id`

func scanClient(r scanner) (*Client, error) {
	var c Client
	var firstParty, public, dpopBound, created, updated int64
	if err := r.Scan(&c.ID, &c.SecretHash, &c.Name, (*strList)(&c.GrantTypes), (*strList)(&c.Scopes),
		(*strList)(&c.RedirectURIs), (*strList)(&c.Businesses), &firstParty, &public, &created, &updated, (*strList)(&c.PostLogoutRedirectURIs),
		&c.IDTokenSignedResponseAlg, &dpopBound, &c.OwnerID, &c.OwnerBusinessID); err != nil {
		return nil, err
	}
	if len(c.SecretHash) == 0 {
		c.SecretHash = nil
	}
	c.FirstParty, c.Public, c.DPoPBoundAccessTokens = firstParty != 0, public != 0, dpopBound != 0
	c.CreatedAt, c.UpdatedAt = fromMs(created), fromMs(updated)
	return &c, nil
}

// CreateClient stores c, filling a zero CreatedAt and UpdatedAt with now.
func (s *store) CreateClient(ctx context.Context, c *Client) error {
	const op = "creating client"
	if c.ID == "" {
		return errors.New(op + ": empty id")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	return s.write(ctx, op, func(ctx context.Context, t *tx) error { return insertClient(ctx, t, c) })
}

// insertClient inserts c and announces it, inside t (CreateClient, and
// RegisterClient with its registration row).
func insertClient(ctx context.Context, t *tx, c *Client) error {
	if _, err := t.exec(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, blob(c.SecretHash), c.Name, list(c.GrantTypes), list(c.Scopes), list(c.RedirectURIs),
		list(c.Businesses), boolInt(c.FirstParty), boolInt(c.Public), ms(c.CreatedAt), ms(c.UpdatedAt),
		list(c.PostLogoutRedirectURIs), c.IDTokenSignedResponseAlg, boolInt(c.DPoPBoundAccessTokens), c.OwnerID, c.OwnerBusinessID); err != nil {
		return err
	}
	return t.change(ctx, ChangeClient, c.ID)
}

// GetClient returns the client or ErrNotFound.
func (s *store) GetClient(ctx context.Context, id string) (*Client, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	c, err := scanClient(s.read().row(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if err != nil {
		return nil, fail("getting client", err)
	}
	return c, nil
}

// ListClients returns every client ordered by ID.
func (s *store) ListClients(ctx context.Context) ([]*Client, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.read().query(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	out, err := collect(rows, err, scanClient)
	if err != nil {
		return nil, fail("listing clients", err)
	}
	return out, nil
}

// ListClientsByOwner returns the clients owner registered, newest first.
// The operator's clients, with no owner, are nobody's.
func (s *store) ListClientsByOwner(ctx context.Context, owner string) ([]*Client, error) {
	if owner == "" {
		return nil, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.read().query(ctx, `SELECT `+clientColumns+` FROM clients WHERE owner_id = ? ORDER BY created_at DESC, id`, owner)
	out, err := collect(rows, err, scanClient)
	if err != nil {
		return nil, fail("listing clients by owner", err)
	}
	return out, nil
}

// UpdateClient replaces every field but ID and CreatedAt, filling a zero
// UpdatedAt with now.
func (s *store) UpdateClient(ctx context.Context, c *Client) error {
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = time.Now()
	}
	return s.write(ctx, "updating client", func(ctx context.Context, t *tx) error { return updateClientRow(ctx, t, c) })
}

// updateClientRow replaces c's row and announces it, inside t
// (UpdateClient, and UpdateRegisteredClient with its registration row).
func updateClientRow(ctx context.Context, t *tx, c *Client) error {
	n, err := t.execN(ctx, `UPDATE clients SET secret_hash = ?, name = ?, grant_types = ?, scopes = ?,
		redirect_uris = ?, businesses = ?, is_first_party = ?, is_public = ?, updated_at = ?,
		post_logout_redirect_uris = ?, id_token_signed_response_alg = ?, dpop_bound_access_tokens = ?, owner_id = ?, owner_business_id = ?
		WHERE id = ?`,
		blob(c.SecretHash), c.Name, list(c.GrantTypes), list(c.Scopes), list(c.RedirectURIs),
		list(c.Businesses), boolInt(c.FirstParty), boolInt(c.Public), ms(c.UpdatedAt),
		list(c.PostLogoutRedirectURIs), c.IDTokenSignedResponseAlg, boolInt(c.DPoPBoundAccessTokens), c.OwnerID, c.OwnerBusinessID, c.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return t.change(ctx, ChangeClient, c.ID)
}

// ClientDeletionMargin is added to the revocation time DeleteClient
// records, so that it covers every token minted by a node that saw the
// client before the deletion committed: the commit follows the time taken
// by a little, and the nodes' clocks differ by a little.
const ClientDeletionMargin = 2 * time.Second

// DeleteClient deletes the client with its codes, grants, refresh tokens
// and consents, so that a client registered again under the same ID
// inherits nothing, and in the same transaction records a RevokeClient
// revocation lasting until until that denies every access token issued to
// it up to the commit (plus ClientDeletionMargin). It returns that time.
//
// The revocation time is taken after the rows are deleted: a code
// redemption or refresh rotation holding one of them has committed by
// then, and its access token, signed before its commit, is dated before.
// The rows go in lock order (client, codes, grants, refresh tokens), the
// order of RedeemCode, RotateRefreshToken and RevokeGrant.
func (s *store) DeleteClient(ctx context.Context, id string, until time.Time) (time.Time, error) {
	var revokedAt time.Time
	err := s.write(ctx, "deleting client", func(ctx context.Context, t *tx) error {
		n, err := t.execN(ctx, `DELETE FROM clients WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		for _, q := range []string{
			`DELETE FROM codes WHERE client_id = ?`,
			`DELETE FROM grants WHERE client_id = ?`,
			`DELETE FROM refresh_tokens WHERE client_id = ?`,
			`DELETE FROM consents WHERE client_id = ?`,
			`DELETE FROM client_registrations WHERE client_id = ?`,
		} {
			if _, err := t.exec(ctx, q, id); err != nil {
				return err
			}
		}
		revokedAt = time.Now().Add(ClientDeletionMargin)
		if !until.After(revokedAt) {
			until = revokedAt.Add(time.Minute)
		}
		if err := addRevocation(ctx, t, &Revocation{Kind: RevokeClient, ID: id, CreatedAt: revokedAt, ExpiresAt: until}); err != nil {
			return err
		}
		return t.change(ctx, ChangeClient, id)
	})
	if err != nil {
		return time.Time{}, err
	}
	return fromMs(ms(revokedAt)), nil
}
