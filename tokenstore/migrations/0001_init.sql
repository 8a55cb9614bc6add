-- The initial schema, portable to SQLite and PostgreSQL: times are unix
-- milliseconds (0 or NULL for none), booleans INTEGER 0/1, lists JSON arrays
-- in TEXT. dialect.go says what {{serial}} and {{blob}} become per engine.
-- Client, user and business ids are not foreign keys of codes, grants or
-- consents: static clients and external directories live outside the store.

CREATE TABLE clients (
	id             TEXT PRIMARY KEY,
	secret_hash    {{blob}},
	name           TEXT NOT NULL,
	grant_types    TEXT NOT NULL,
	scopes         TEXT NOT NULL,
	redirect_uris  TEXT NOT NULL,
	businesses     TEXT NOT NULL,
	is_first_party INTEGER NOT NULL,
	is_public      INTEGER NOT NULL,
	created_at     BIGINT NOT NULL,
	updated_at     BIGINT NOT NULL
);

CREATE TABLE codes (
	hash                  {{blob}} PRIMARY KEY,
	grant_id              TEXT NOT NULL,
	client_id             TEXT NOT NULL,
	redirect_uri          TEXT NOT NULL,
	user_id               TEXT NOT NULL,
	business_id           TEXT NOT NULL,
	scopes                TEXT NOT NULL,
	nonce                 TEXT NOT NULL,
	code_challenge        TEXT NOT NULL,
	code_challenge_method TEXT NOT NULL,
	auth_time             BIGINT NOT NULL,
	created_at            BIGINT NOT NULL,
	expires_at            BIGINT NOT NULL,
	used_at               BIGINT
);
CREATE INDEX codes_client_id ON codes (client_id);
CREATE INDEX codes_expires_at ON codes (expires_at);

CREATE TABLE grants (
	id          TEXT PRIMARY KEY,
	client_id   TEXT NOT NULL,
	user_id     TEXT NOT NULL,
	business_id TEXT NOT NULL,
	scopes      TEXT NOT NULL,
	auth_time   BIGINT NOT NULL,
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL,
	revoked_at  BIGINT
);
CREATE INDEX grants_client_id ON grants (client_id, created_at);
CREATE INDEX grants_user_id ON grants (user_id, created_at);

CREATE TABLE refresh_tokens (
	hash       {{blob}} PRIMARY KEY,
	grant_id   TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
	client_id  TEXT NOT NULL,
	scopes     TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at    BIGINT
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_client_id ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE consents (
	user_id     TEXT NOT NULL,
	client_id   TEXT NOT NULL,
	business_id TEXT NOT NULL,
	scopes      TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	PRIMARY KEY (user_id, client_id, business_id)
);
CREATE INDEX consents_client_id ON consents (client_id);

CREATE TABLE signing_keys (
	id          TEXT PRIMARY KEY,
	alg         TEXT NOT NULL,
	private_jwk TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	retired_at  BIGINT
);

CREATE TABLE users (
	id               TEXT PRIMARY KEY,
	email            TEXT NOT NULL UNIQUE,
	name             TEXT NOT NULL,
	password_hash    TEXT NOT NULL,
	current_business TEXT NOT NULL,
	created_at       BIGINT NOT NULL
);

CREATE TABLE businesses (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
	user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	business_id TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
	PRIMARY KEY (user_id, business_id)
);
CREATE INDEX memberships_business_id ON memberships (business_id);

CREATE TABLE revocations (
	kind       TEXT NOT NULL,
	id         TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);

CREATE TABLE changes (
	seq        {{serial}},
	kind       TEXT NOT NULL,
	item       TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX changes_created_at ON changes (created_at);
