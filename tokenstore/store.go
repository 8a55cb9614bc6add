// Package tokenstore persists everything oauthgate must not lose: clients,
// authorization codes, grants, refresh tokens, consents, signing keys, the
// built-in user directory and the revocation list.
//
// One SQL implementation serves two engines: SQLite (modernc.org/sqlite, the
// embedded single-node default) and PostgreSQL (pgx, for clusters). Secrets
// never reach the store in the clear: codes, refresh tokens, opaque access
// tokens and client secrets are stored as SHA-256 hashes of high-entropy
// random strings.
//
// The store also keeps a change feed (see Feed) so that every node of a
// cluster can invalidate its in-memory caches when another node revokes a
// token or edits a client.
package tokenstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Errors returned by every Store implementation. Callers test with errors.Is.
var (
	// ErrNotFound: no such record (or it has expired).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a record with the same key already exists.
	ErrConflict = errors.New("already exists")
	// ErrReused: a single-use code or refresh token was presented again.
	// The record is returned alongside so the caller can revoke what it issued.
	ErrReused = errors.New("already used")
	// ErrRevoked: CreateGrant was asked to create a grant whose id is
	// already revoked, as when a replayed code (possibly on another node)
	// revoked it before the first exchange stored it. Nothing is stored.
	ErrRevoked = errors.New("revoked")
	// ErrUnavailable wraps failures to reach the database (connection refused,
	// pool exhausted, statement timeout). Callers answer 503 rather than 500.
	ErrUnavailable = errors.New("store unavailable")
)

// Client is a registered OAuth client (an "app").
type Client struct {
	ID string
	// SecretHash is SHA-256 of the client secret; empty for public clients.
	SecretHash []byte
	Name       string
	// GrantTypes the client may use, e.g. "client_credentials",
	// "authorization_code", "refresh_token".
	GrantTypes []string
	// Scopes is the ceiling of what the client may request.
	Scopes []string
	// RedirectURIs are compared by exact string match.
	RedirectURIs []string
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser afterwards, also compared by exact string match.
	PostLogoutRedirectURIs []string
	// IDTokenSignedResponseAlg is the JWS algorithm of the client's
	// id_tokens (OIDC Registration); empty for the server's default.
	IDTokenSignedResponseAlg string
	// Businesses the client owns: a client-credentials token may act only for
	// these.
	Businesses []string
	// FirstParty clients (platform-scoped) skip the consent screen.
	FirstParty bool
	// Public clients have no secret and must use PKCE.
	Public bool
	// DPoPBoundAccessTokens clients (RFC 9449 §5.2) always send a DPoP
	// proof to the token endpoint and never get a bearer token.
	DPoPBoundAccessTokens bool
	// OwnerID is the user who registered the client in the developer
	// portal; empty for the operator's clients (admin API, configuration).
	OwnerID string
	// OwnerBusinessID is the business the owner registered it for, as the
	// portal shows it; it grants no tenancy (Businesses does).
	OwnerBusinessID string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Grant is what a user (or, for client credentials, nobody) authorised a
// client to do. Access and refresh tokens carry its ID so revoking the grant
// revokes them all.
type Grant struct {
	ID       string
	ClientID string
	// UserID is empty for client-credentials grants.
	UserID string
	// BusinessID is the business the grant may act for (authorized_business_id).
	BusinessID string
	Scopes     []string
	AuthTime   time.Time
	CreatedAt  time.Time
	// ExpiresAt is when the grant's last token expires (a refresh moves
	// it on); past it the grant is over without a revocation.
	ExpiresAt time.Time
	// RevokedAt is zero while the grant is live.
	RevokedAt time.Time
	// RefreshedAt is when a refresh token of the grant was last exchanged;
	// zero until the first refresh.
	RefreshedAt time.Time
	// Resources are the RFC 8707 resources the grant's tokens may be for
	// (its code's); empty: the configured default audience.
	Resources []string
}

// AuthCode is an authorization code between /authorize and /token.
type AuthCode struct {
	// Hash is SHA-256 of the code handed to the client.
	Hash []byte
	// GrantID is chosen when the code is minted; redeeming the code creates
	// the grant with this ID, and a replayed code revokes it.
	GrantID             string
	ClientID            string
	RedirectURI         string
	UserID              string
	BusinessID          string
	Scopes              []string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	AuthTime            time.Time
	CreatedAt           time.Time
	ExpiresAt           time.Time
	// UsedAt is zero until the code is redeemed.
	UsedAt time.Time
	// Resources are the RFC 8707 resources the authorization request
	// named; empty for none.
	Resources []string
}

// RefreshToken is one link of a grant's refresh-token chain.
type RefreshToken struct {
	// Hash is SHA-256 of the token handed to the client.
	Hash      []byte
	GrantID   string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is zero until the token is rotated.
	UsedAt time.Time
	// JKT binds the token to a DPoP key (RFC 9449 §5): a refresh must
	// carry a proof by the key with this thumbprint. Empty: unbound.
	JKT string
}

// Consent remembers that a user allowed a client some scopes for a business.
type Consent struct {
	UserID     string
	ClientID   string
	BusinessID string
	Scopes     []string
	// Resources limits the consent to these RFC 8707 resources; empty: the
	// consent was given without a resource and has no limit.
	Resources []string
	// ResourcesUnknown marks a consent remembered before the store recorded
	// resources (a NULL resources column, migration 0011): what it was
	// limited to is unknown, and authserver treats it as covering no
	// request. Resources is then empty.
	ResourcesUnknown bool
	CreatedAt        time.Time
}

// Key is a signing key. The private key is stored as a JWK in JSON.
type Key struct {
	ID  string // kid
	Alg string // ES256, EdDSA, RS256
	// PrivateJWK is the private key serialised as a JSON Web Key.
	PrivateJWK []byte
	CreatedAt  time.Time
	// RetiredAt is zero for the active key. A retired key verifies but no
	// longer signs; it is deleted once every token it signed has expired.
	RetiredAt time.Time
}

// User is an account of the built-in directory.
type User struct {
	ID    string
	Email string // unique, compared case-insensitively (stored lower-case)
	Name  string
	// PasswordHash is a PHC-format argon2id or bcrypt hash.
	PasswordHash    string
	CurrentBusiness string
	CreatedAt       time.Time
}

// Business is a tenant: the thing x-business-id names.
type Business struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// Revocation denies every token that carries ID in the claim named by Kind
// until ExpiresAt, by which time those tokens have expired on their own.
type Revocation struct {
	Kind      string // RevokeGrant or RevokeClient
	ID        string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Revocation kinds.
const (
	// RevokeGrant denies tokens whose grant id ("gid") is ID.
	RevokeGrant = "grant"
	// RevokeClient denies tokens issued to client ID at or before CreatedAt.
	RevokeClient = "client"
)

// Change is one entry of the change feed.
type Change struct {
	Seq  int64
	Kind string // ChangeRevocation, ChangeClient, ChangeKeys, ChangeUser, ChangeFailures
	Key  string // the revoked or changed id; empty for ChangeKeys
}

// Change kinds.
const (
	ChangeRevocation = "revocation" // Key: "<kind>:<id>" of the Revocation
	ChangeClient     = "client"     // Key: client id (created, updated, deleted, businesses changed)
	ChangeKeys       = "keys"       // the signing key set changed
	ChangeUser       = "user"       // Key: user id
	// ChangeFailures: Key is FailuresChangeKey of the new count (see
	// ParseFailuresChange).
	ChangeFailures = "failures"
)

// Clients stores registered clients.
//
// Throughout the Store, a zero CreatedAt (or UpdatedAt) passed in is filled
// with the current time, in the caller's struct too, and times come back in
// UTC with millisecond precision.
type Clients interface {
	CreateClient(ctx context.Context, c *Client) error // ErrConflict on duplicate ID
	GetClient(ctx context.Context, id string) (*Client, error)
	// ListClients returns every client ordered by ID.
	ListClients(ctx context.Context) ([]*Client, error)
	// ListClientsByOwner returns the clients owner registered, newest
	// first.
	ListClientsByOwner(ctx context.Context, owner string) ([]*Client, error)
	// UpdateClient replaces every field but ID and CreatedAt.
	UpdateClient(ctx context.Context, c *Client) error
	// DeleteClient also deletes the client's codes, grants, refresh tokens,
	// consents and registration (RFC 7591), so that a client registered again under the same ID
	// inherits nothing, and records, in the same transaction, a
	// RevokeClient revocation lasting until until that denies every access
	// token issued to the client before the deletion committed. It returns
	// the revocation's time (CreatedAt).
	DeleteClient(ctx context.Context, id string, until time.Time) (time.Time, error)
	// LinkCreatedBusiness records that the client created the business
	// (oauth_protect's creation routes); see created.go.
	LinkCreatedBusiness(ctx context.Context, clientID, businessID string, now time.Time) (LinkOutcome, error)
	// EditClient reads, edits and stores a client in one transaction, so
	// a concurrent LinkCreatedBusiness is never undone; see created.go.
	EditClient(ctx context.Context, id string, edit func(c *Client) error) (*Client, error)
}

// Codes stores authorization codes.
type Codes interface {
	CreateCode(ctx context.Context, c *AuthCode) error
	// ConsumeCode marks the code used and returns it. An expired or unknown
	// code is ErrNotFound; a code used before returns the code and ErrReused
	// (even once expired, until pruned, so that a replay is still caught).
	// Of concurrent callers exactly one succeeds. It spends a code that
	// will issue nothing (one presented by the wrong client, say).
	ConsumeCode(ctx context.Context, hash []byte) (*AuthCode, error)
	// GetCode returns the code without spending it, used or not (a used
	// one even once expired, until pruned); an unused expired or unknown
	// code is ErrNotFound.
	GetCode(ctx context.Context, hash []byte) (*AuthCode, error)
	// RedeemCode spends the code and creates the grant g it was minted for
	// (g.ID and g.ClientID must be the code's) with its first refresh token
	// rt (may be nil), in one transaction: both happen or neither. It
	// returns the code. Unknown or expired: ErrNotFound. Used before, or by
	// a concurrent caller that won: the code and ErrReused (of concurrent
	// callers exactly one succeeds, and the others return once the winner
	// has committed). A grant id already revoked: ErrRevoked, and the code
	// is not spent. A grant for a user no longer in the directory:
	// ErrNotFound.
	RedeemCode(ctx context.Context, hash []byte, g *Grant, rt *RefreshToken) (*AuthCode, error)
}

// Grants stores grants and their refresh tokens.
type Grants interface {
	// CreateGrant stores g and, when rt is not nil, its first refresh token,
	// in one transaction. A grant id already revoked is ErrRevoked.
	CreateGrant(ctx context.Context, g *Grant, rt *RefreshToken) error
	// GetGrant returns revoked and expired grants too: the caller judges.
	GetGrant(ctx context.Context, id string) (*Grant, error)
	// ListGrants returns the grants of a client and/or a user, newest first;
	// an empty clientID or userID does not filter.
	ListGrants(ctx context.Context, clientID, userID string) ([]*Grant, error)
	// ListLiveGrants returns the user's grants (of clientID only, when not
	// empty) neither revoked nor expired at now, newest first; a grant
	// stored without an expiry counts as live.
	ListLiveGrants(ctx context.Context, userID, clientID string, now time.Time) ([]*Grant, error)
	// RevokeGrant marks the grant revoked, deletes its refresh tokens and
	// records a RevokeGrant revocation lasting until until, in one
	// transaction. Revoking a revoked or unknown grant is not an error
	// (tokens of stateless grants have no grant row but still get revoked).
	RevokeGrant(ctx context.Context, id string, until time.Time) error
	// GetRefreshToken returns an unexpired token whether used or not.
	GetRefreshToken(ctx context.Context, hash []byte) (*RefreshToken, error)
	// RotateRefreshToken marks old used, stores next and records the
	// time as the grant's RefreshedAt (and next's expiry as its ExpiresAt,
	// when later), atomically. Of
	// concurrent callers with the same old token exactly one succeeds. An
	// expired or unknown token is ErrNotFound; a used one returns the token
	// and ErrReused (the caller then revokes the grant), even once expired,
	// until pruned. The old token is returned on success too. An empty
	// next.GrantID or ClientID is filled from the old token.
	RotateRefreshToken(ctx context.Context, oldHash []byte, next *RefreshToken) (*RefreshToken, error)
}

// Consents stores remembered consents.
type Consents interface {
	SaveConsent(ctx context.Context, c *Consent) error // upsert on (user, client, business)
	GetConsent(ctx context.Context, userID, clientID, businessID string) (*Consent, error)
	// DeleteConsents forgets the user's consents to the client for every
	// business; an empty clientID forgets all of the user's consents.
	DeleteConsents(ctx context.Context, userID, clientID string) error
}

// Keys stores signing keys.
type Keys interface {
	// ListKeys returns every key, newest first.
	ListKeys(ctx context.Context) ([]*Key, error)
	// AddKey stores k and retires every other active key, in one transaction.
	AddKey(ctx context.Context, k *Key) error
	// DeleteKeysRetiredBefore removes keys retired before t.
	DeleteKeysRetiredBefore(ctx context.Context, t time.Time) error
	// InitKey stores k only if there is no active key (in particular no key
	// at all), and returns the active key afterwards, so that nodes starting
	// together agree on one.
	InitKey(ctx context.Context, k *Key) (*Key, error)
	// RotateKeys stores keys as the new active set and retires every other
	// active key, in one transaction, if due, called inside it with the
	// active keys newest first, says so (nil due: always). Callers are
	// serialised, so nodes deciding at once make one rotation. It reports
	// whether it rotated.
	RotateKeys(ctx context.Context, keys []*Key, due func(active []*Key) bool) (bool, error)
}

// Directory is the built-in user directory.
type Directory interface {
	CreateUser(ctx context.Context, u *User) error // ErrConflict on duplicate e-mail or ID
	GetUser(ctx context.Context, id string) (*User, error)
	GetUserByEmail(ctx context.Context, email string) (*User, error)
	// ListUsers returns every user ordered by e-mail.
	ListUsers(ctx context.Context) ([]*User, error)
	UpdateUser(ctx context.Context, u *User) error // ErrConflict on a taken e-mail
	// DeleteUser also deletes the user's memberships, consents and codes,
	// and revokes every live grant of the user (revocations lasting until
	// until), all in one transaction, and returns the revoked grant ids. A
	// code exchange racing it either commits first (and its grant is among
	// those revoked) or finds the user gone.
	DeleteUser(ctx context.Context, id string, until time.Time) ([]string, error)
	// UpsertBusiness creates b or renames it.
	UpsertBusiness(ctx context.Context, b *Business) error
	// CreateBusiness creates b: ErrConflict when its id exists, whose name
	// is then left alone.
	CreateBusiness(ctx context.Context, b *Business) error
	GetBusiness(ctx context.Context, id string) (*Business, error)
	// ListBusinesses returns every business ordered by ID.
	ListBusinesses(ctx context.Context) ([]*Business, error)
	// SetMemberships replaces the businesses a user administers. The user
	// and every business must exist (ErrNotFound otherwise).
	SetMemberships(ctx context.Context, userID string, businessIDs []string) error
	// Memberships lists the businesses a user administers, sorted by ID.
	Memberships(ctx context.Context, userID string) ([]*Business, error)
}

// Feed is the change feed caches are invalidated from.
type Feed interface {
	// ActiveRevocations lists revocations that have not expired at now.
	ActiveRevocations(ctx context.Context, now time.Time) ([]*Revocation, error)
	// AddRevocation records r (idempotent on Kind+ID; a later ExpiresAt wins).
	AddRevocation(ctx context.Context, r *Revocation) error
	// LastChange returns the sequence number of the newest change (0 if none).
	LastChange(ctx context.Context) (int64, error)
	// ChangesSince returns up to limit changes with Seq > seq, oldest first
	// (limit <= 0: DefaultChangesLimit). Seqs may have gaps, but a change
	// is never seen before one with a lower Seq.
	ChangesSince(ctx context.Context, seq int64, limit int) ([]Change, error)
	// Wakeup receives a value, without blocking the sender, whenever a change
	// may have been recorded: by this process, or (PostgreSQL) by any node via
	// LISTEN/NOTIFY. It is a hint; ChangesSince is the truth.
	Wakeup() <-chan struct{}
	// Prune deletes codes, refresh and opaque access tokens, revocations
	// and failure records expired at now, and changes older than ChangeRetention before now
	// except the newest (so LastChange never goes back).
	Prune(ctx context.Context, now time.Time) error
}

// AuthFailures counts failed authentications per key for throttling.
type AuthFailures interface {
	// RecordFailures adds one failure to each key, in one transaction, and
	// returns the new counts in the order of keys. A key whose last failure
	// is before since counts from 1 again. The records expire at expires
	// (or later, if they already did). Every new count is announced on the
	// change feed.
	RecordFailures(ctx context.Context, keys []string, now, since, expires time.Time) ([]Failures, error)
	// ClearFailures deletes the records of keys, announcing each deleted one
	// on the change feed with a count of 0 at now.
	ClearFailures(ctx context.Context, keys []string, now time.Time) error
	// ListFailures returns the records unexpired at now, ordered by key.
	ListFailures(ctx context.Context, now time.Time) ([]Failures, error)
}

// Store is every concern at once, as opened by Open.
type Store interface {
	Clients
	Registrations
	Codes
	Grants
	AccessTokens
	Consents
	Keys
	Directory
	AuthFailures
	Feed
	// Ping checks the database can be reached.
	Ping(ctx context.Context) error
	// Stats reports the connection pool so that it can be exported as metrics.
	Stats() sql.DBStats
	Close() error
}
