-- Dynamic client registration (RFC 7591, RFC 7592): a client that
-- registered itself has a row here, with the SHA-256 of its registration
-- access token and the metadata it registered that the clients row does
-- not hold (client_uri, contacts, token_endpoint_auth_method …, JSON). Its
-- presence is what "dynamically registered" (unverified) means.
CREATE TABLE client_registrations (
	client_id  TEXT PRIMARY KEY,
	token_hash {{blob}} NOT NULL,
	metadata   TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
