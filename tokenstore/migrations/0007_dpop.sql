-- RFC 9449 (DPoP). A client registered with dpop_bound_access_tokens (§5.2)
-- gets only DPoP-bound tokens; a refresh token issued to a public client
-- with a proof is bound to that proof's key (§5), by its RFC 7638 thumbprint.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN jkt TEXT NOT NULL DEFAULT '';
