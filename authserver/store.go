package authserver

import (
	"context"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// Store is what the authorization server reads and writes, declared here
// (not the whole tokenstore.Store, which satisfies it) so protocol code can
// be tested against a fake that holds only what a test needs. Revocation
// and the change feed are the token service's, not the server's.
type Store interface {
	// Clients: the admin API and dynamic registration.
	tokenstore.Clients
	// Registrations: dynamic registration and the unverified mark.
	tokenstore.Registrations
	// Codes: the authorization endpoint mints them, the code grant spends
	// them.
	tokenstore.Codes
	// Directory: built-in sign-in, userinfo and the admin API.
	tokenstore.Directory
	grantStore
	consentStore
}

// grantStore is what the token grants, introspection and the admin API need
// of grants and refresh tokens.
type grantStore interface {
	CreateGrant(ctx context.Context, g *tokenstore.Grant, rt *tokenstore.RefreshToken) error
	GetGrant(ctx context.Context, id string) (*tokenstore.Grant, error)
	ListGrants(ctx context.Context, clientID, userID string) ([]*tokenstore.Grant, error)
	ListLiveGrants(ctx context.Context, userID, clientID string, now time.Time) ([]*tokenstore.Grant, error)
	GetRefreshToken(ctx context.Context, hash []byte) (*tokenstore.RefreshToken, error)
	RotateRefreshToken(ctx context.Context, oldHash []byte, next *tokenstore.RefreshToken) (*tokenstore.RefreshToken, error)
}

// consentStore is what the consent screen remembers, and what an
// operator's revocation of a user's grants forgets.
type consentStore interface {
	SaveConsent(ctx context.Context, c *tokenstore.Consent) error
	GetConsent(ctx context.Context, userID, clientID, businessID string) (*tokenstore.Consent, error)
	DeleteConsents(ctx context.Context, userID, clientID string) error
}

// Interface guard: the real store serves the server.
var _ Store = tokenstore.Store(nil)
