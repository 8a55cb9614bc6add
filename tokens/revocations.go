package tokens

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
	"go.uber.org/zap"
)

// denyList is an immutable snapshot of the active revocations. Verify reads
// it with one atomic load and no lock; writers, which are rare, copy it.
// Entries are only ever added (a revocation is never undone) and dropped
// once expired, when every token they deny has expired too; so merging a
// reload from the store with the current list is always safe.
type denyList struct {
	grants  map[string]time.Time // grant id → expiry of the entry
	clients map[string]clientDeny
}

// clientDeny denies a client's tokens issued at or before at.
type clientDeny struct {
	at      int64 // unix seconds
	expires time.Time
}

func (d *denyList) addGrant(id string, expires time.Time) {
	if cur, ok := d.grants[id]; !ok || expires.After(cur) {
		d.grants[id] = expires
	}
}

func (d *denyList) addClient(id string, at, expires time.Time) {
	cur := d.clients[id]
	cur.at = max(cur.at, at.Unix())
	if expires.After(cur.expires) {
		cur.expires = expires
	}
	d.clients[id] = cur
}

func (d *denyList) add(r *tokenstore.Revocation) {
	switch r.Kind {
	case tokenstore.RevokeGrant:
		d.addGrant(r.ID, r.ExpiresAt)
	case tokenstore.RevokeClient:
		d.addClient(r.ID, r.CreatedAt, r.ExpiresAt)
	}
}

// checkRevoked is the per-request deny-list lookup.
func (s *Service) checkRevoked(c *Claims) error {
	d := s.deny.Load()
	if len(d.grants) > 0 {
		if _, ok := d.grants[c.GrantID]; ok {
			return fail(reasonGrantRevoked)
		}
	}
	if len(d.clients) > 0 {
		if cd, ok := d.clients[c.ClientID]; ok && c.IssuedAt <= cd.at {
			return fail(reasonClientRevoked)
		}
	}
	return nil
}

// updateDeny publishes a copy of the deny list changed by fn.
func (s *Service) updateDeny(fn func(d *denyList)) {
	s.denyMu.Lock()
	defer s.denyMu.Unlock()
	old := s.deny.Load()
	d := &denyList{grants: maps.Clone(old.grants), clients: maps.Clone(old.clients)}
	if d.grants == nil {
		d.grants = make(map[string]time.Time)
	}
	if d.clients == nil {
		d.clients = make(map[string]clientDeny)
	}
	fn(d)
	s.deny.Store(d)
	s.m.denied.Set(float64(len(d.grants) + len(d.clients)))
}

// reloadRevocations merges the store's active revocations into the list.
func (s *Service) reloadRevocations(ctx context.Context) error {
	revs, err := s.store.ActiveRevocations(ctx, s.now())
	if err != nil {
		return fmt.Errorf("loading revocations: %w", err)
	}
	if len(revs) == 0 {
		return nil
	}
	s.updateDeny(func(d *denyList) {
		for _, r := range revs {
			d.add(r)
		}
	})
	return nil
}

// pruneDeny drops entries whose tokens have all expired.
func (s *Service) pruneDeny(now time.Time) {
	d := s.deny.Load()
	expired := false
	for _, exp := range d.grants {
		if !exp.After(now) {
			expired = true
			break
		}
	}
	for _, cd := range d.clients {
		if expired || !cd.expires.After(now) {
			expired = true
			break
		}
	}
	if !expired {
		return
	}
	s.updateDeny(func(d *denyList) {
		maps.DeleteFunc(d.grants, func(_ string, exp time.Time) bool { return !exp.After(now) })
		maps.DeleteFunc(d.clients, func(_ string, cd clientDeny) bool { return !cd.expires.After(now) })
	})
}

// revocationLifetime is how long a revocation must last: until every token
// it may deny has expired.
func (s *Service) revocationLifetime() time.Duration {
	return time.Duration(s.maxTTL.Load()) + skew
}

// RevokeGrant denies every access token of the grant, deletes its refresh
// tokens (in the store) and tells every node through the change feed. It
// takes effect on this node at once.
func (s *Service) RevokeGrant(ctx context.Context, grantID string) error {
	until := s.now().Add(s.revocationLifetime())
	if err := s.store.RevokeGrant(ctx, grantID, until); err != nil {
		return fmt.Errorf("revoking grant: %w", err)
	}
	s.updateDeny(func(d *denyList) { d.addGrant(grantID, until) })
	if ce := s.log.Check(zap.DebugLevel, "grant revoked"); ce != nil {
		ce.Write(zap.String("grant_id", grantID))
	}
	return nil
}

// RevokeClientTokens denies every access token issued to the client until
// now (e.g. after its secret leaked); tokens issued afterwards are
// accepted. It takes effect on this node at once and on the others through
// the change feed.
func (s *Service) RevokeClientTokens(ctx context.Context, clientID string) error {
	now := s.now()
	r := &tokenstore.Revocation{
		Kind:      tokenstore.RevokeClient,
		ID:        clientID,
		CreatedAt: now,
		ExpiresAt: now.Add(s.revocationLifetime()),
	}
	if err := s.store.AddRevocation(ctx, r); err != nil {
		return fmt.Errorf("revoking client tokens: %w", err)
	}
	s.updateDeny(func(d *denyList) { d.add(r) })
	s.log.Info("client tokens revoked", zap.String("client_id", clientID))
	return nil
}

// DeleteClient deletes a stored client with everything it holds and, in
// the same commit, denies every access token issued to it before the
// deletion committed: at once on this node, through the change feed on the
// others. A token endpoint that confirmed the client in the store before
// the commit dated its token before it; after the commit none confirms it.
func (s *Service) DeleteClient(ctx context.Context, clientID string) error {
	until := s.now().Add(s.revocationLifetime() + tokenstore.ClientDeletionMargin)
	at, err := s.store.DeleteClient(ctx, clientID, until)
	if err != nil {
		return fmt.Errorf("deleting client: %w", err)
	}
	s.updateDeny(func(d *denyList) { d.addClient(clientID, at, until) })
	s.clients.invalidate(clientID)
	s.log.Info("client deleted and its tokens revoked", zap.String("client_id", clientID))
	return nil
}

// DeleteUser deletes a user of the directory and, in the same commit,
// revokes every grant of the user: at once on this node, through the
// change feed on the others. A code exchange for the user that committed
// first is among the grants revoked; one that commits later finds no user.
func (s *Service) DeleteUser(ctx context.Context, userID string) error {
	until := s.now().Add(s.revocationLifetime())
	ids, err := s.store.DeleteUser(ctx, userID, until)
	if err != nil {
		return fmt.Errorf("deleting user: %w", err)
	}
	if len(ids) > 0 {
		s.updateDeny(func(d *denyList) {
			for _, id := range ids {
				d.addGrant(id, until)
			}
		})
	}
	return nil
}
