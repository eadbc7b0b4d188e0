-- Idempotency-Keys belong to whoever sent them (a customer, an operator, or everyone when the
-- API is open), so that nobody can replay another's key and read their order, and they expire
-- (IDEMPOTENCY_KEY_TTL_HOURS): an expired key is free to be used again. Keys from before belong
-- to the open API.
ALTER TABLE idempotency_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'open';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (scope, key);
ALTER TABLE idempotency_keys ALTER COLUMN scope DROP DEFAULT;
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
