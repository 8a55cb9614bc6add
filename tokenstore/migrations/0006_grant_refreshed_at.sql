-- When a grant's refresh token was last exchanged (unix milliseconds), for
-- the connected-apps page and the admin API; NULL until the first refresh.
ALTER TABLE grants ADD COLUMN refreshed_at BIGINT;

-- Grants of authorization codes were stored without an expiry (0). From
-- now on a grant expires with its last token; for those stored before,
-- that is their newest refresh token's expiry, or, with none, an hour
-- after they were created (the default access-token lifetime).
UPDATE grants SET expires_at = COALESCE(
	(SELECT MAX(r.expires_at) FROM refresh_tokens r WHERE r.grant_id = grants.id),
	created_at + 3600000)
WHERE expires_at = 0 AND user_id <> '';
