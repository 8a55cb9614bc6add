-- Opaque (reference) access tokens: the token is handed to the client, the
-- store keeps only its SHA-256 and the claim set a JWT would have carried,
-- as the JSON of its payload, so claims added later need no new column.
-- grant_id and client_id repeat the gid and client_id claims for operators.
CREATE TABLE access_tokens (
	hash       {{blob}} PRIMARY KEY,
	grant_id   TEXT NOT NULL,
	client_id  TEXT NOT NULL,
	claims     TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);
