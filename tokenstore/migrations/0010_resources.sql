-- RFC 8707 resource indicators: the resources an authorization code and
-- the grant it creates were requested for (a JSON list, as scopes are);
-- '[]' for none, the tokens' audience being then the configured default.
ALTER TABLE codes ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE grants ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
