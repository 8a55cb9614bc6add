-- The developer portal: who registered a client (a user id of the
-- directory, empty for the operator's clients) and the business it was
-- registered for (shown, not a tenancy grant: that is businesses).
ALTER TABLE clients ADD COLUMN owner_id TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN owner_business_id TEXT NOT NULL DEFAULT '';
CREATE INDEX clients_owner ON clients (owner_id);
