-- OpenID Connect Dynamic Client Registration 1.0 §2: the JWS algorithm a
-- client wants its id_tokens signed with; empty for the server's default.
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT '';
