-- OpenID Connect RP-Initiated Logout 1.0: where a client may send the
-- browser after sign-out, compared by exact string match.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
