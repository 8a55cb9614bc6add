-- When a grant's refresh token was last exchanged (unix milliseconds), for
-- the connected-apps page and the admin API; NULL until the first refresh.
ALTER TABLE grants ADD COLUMN refreshed_at BIGINT;
