package tokens

import (
	"context"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// Store is what the token service reads and writes, declared here (not the
// whole tokenstore.Store, which satisfies it) so the service can be tested
// against a fake that holds only what a test needs.
type Store interface {
	// Keys: the signing key set and its rotation.
	tokenstore.Keys
	// Feed: revocations and the change feed the caches follow.
	tokenstore.Feed
	// AccessTokens: opaque access tokens, stored by the minting node and
	// read on a cache miss of any node.
	tokenstore.AccessTokens
	// GetClient fills the client cache.
	GetClient(ctx context.Context, id string) (*tokenstore.Client, error)
	// RevokeGrant revokes a grant and its refresh tokens.
	RevokeGrant(ctx context.Context, id string, until time.Time) error
	// DeleteClient deletes a client and revokes its tokens in one commit.
	DeleteClient(ctx context.Context, id string, until time.Time) (time.Time, error)
	// DeleteUser deletes a user and revokes the user's grants in one commit.
	DeleteUser(ctx context.Context, id string, until time.Time) ([]string, error)
}

// Interface guard: the real store serves the service.
var _ Store = tokenstore.Store(nil)
