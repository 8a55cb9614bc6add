package tokenstore

import (
	"context"
	"database/sql"
	"time"
)

// SaveConsent stores c, replacing the scopes, resources and time of an
// earlier consent of the same user to the same client for the same
// business. A zero CreatedAt is filled with now.
func (s *store) SaveConsent(ctx context.Context, c *Consent) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var resources any = list(c.Resources)
	if c.ResourcesUnknown {
		resources = nil
	}
	_, err := s.read().exec(ctx, `INSERT INTO consents (user_id, client_id, business_id, scopes, resources, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id, client_id, business_id)
		DO UPDATE SET scopes = excluded.scopes, resources = excluded.resources, created_at = excluded.created_at`,
		c.UserID, c.ClientID, c.BusinessID, list(c.Scopes), resources, ms(c.CreatedAt))
	return fail("saving consent", err)
}

// GetConsent returns the consent or ErrNotFound.
func (s *store) GetConsent(ctx context.Context, userID, clientID, businessID string) (*Consent, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	c := Consent{UserID: userID, ClientID: clientID, BusinessID: businessID}
	var created int64
	var resources sql.NullString
	err := s.read().row(ctx, `SELECT scopes, resources, created_at FROM consents
		WHERE user_id = ? AND client_id = ? AND business_id = ?`, userID, clientID, businessID).
		Scan((*strList)(&c.Scopes), &resources, &created)
	if err != nil {
		return nil, fail("getting consent", err)
	}
	if !resources.Valid {
		c.ResourcesUnknown = true
	} else if err := (*strList)(&c.Resources).Scan(resources.String); err != nil {
		return nil, fail("getting consent", err)
	}
	c.CreatedAt = fromMs(created)
	return &c, nil
}

// DeleteConsents forgets what the user allowed the client, for every
// business; an empty clientID forgets every consent of the user. Deleting
// nothing is not an error.
func (s *store) DeleteConsents(ctx context.Context, userID, clientID string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var err error
	if clientID == "" {
		_, err = s.read().exec(ctx, `DELETE FROM consents WHERE user_id = ?`, userID)
	} else {
		_, err = s.read().exec(ctx, `DELETE FROM consents WHERE user_id = ? AND client_id = ?`, userID, clientID)
	}
	return fail("deleting consents", err)
}
