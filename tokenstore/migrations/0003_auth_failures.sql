-- Failed authentications per key (an account, a client id or a client
-- address, each hashed by the caller so that no e-mail or address is
-- stored), for sign-in and client-authentication throttling. A row lives
-- until expires_at; Prune deletes it then.

CREATE TABLE auth_failures (
	key        TEXT PRIMARY KEY,
	failures   INTEGER NOT NULL,
	last_at    BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX auth_failures_expires_at ON auth_failures (expires_at);
