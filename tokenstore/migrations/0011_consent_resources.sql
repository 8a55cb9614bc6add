-- RFC 8707 resource indicators and remembered consent: the resources a
-- consent was given for (a JSON list, as scopes are). '[]': given without
-- a resource, no limit. NULL: a consent remembered before this column
-- existed, whose resources are unknown; it covers no request, so the user
-- sees the consent page once more (fail closed).
ALTER TABLE consents ADD COLUMN resources TEXT;
