-- The simulated provider's ledger, in a database of its own (PSP_DATABASE_URL): OrderFlow never
-- reads it; the tests and the chaos checker read it through the provider's API. Installed at
-- start, idempotently.

CREATE TABLE IF NOT EXISTS psp_intents (
    id             TEXT PRIMARY KEY,
    -- The merchant's idempotency key for the payment: one intent per order.
    order_id       TEXT NOT NULL UNIQUE,
    amount         NUMERIC(12, 2) NOT NULL CHECK (amount >= 0),
    currency       TEXT NOT NULL,
    status         TEXT NOT NULL,
    captured       NUMERIC(12, 2) NOT NULL DEFAULT 0 CHECK (captured >= 0),
    refunded       NUMERIC(12, 2) NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= captured),
    failure_reason TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Partial refunds, each under the merchant's idempotency key: a retried refund is the same one.
CREATE TABLE IF NOT EXISTS psp_refunds (
    key        TEXT PRIMARY KEY,
    intent_id  TEXT NOT NULL REFERENCES psp_intents (id),
    amount     NUMERIC(12, 2) NOT NULL CHECK (amount > 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Customer confirmations the simulator will decide later (PSP_CONFIRM_DELAY_MS), durable so that a
-- provider killed meanwhile still decides them when it is back.
CREATE TABLE IF NOT EXISTS psp_confirmations (
    intent_id  TEXT PRIMARY KEY REFERENCES psp_intents (id),
    succeed    BOOLEAN NOT NULL,
    due_at     TIMESTAMPTZ NOT NULL
);

-- The webhook outbox: every event is delivered until the merchant answers 2xx (at least once).
CREATE TABLE IF NOT EXISTS psp_webhooks (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     TEXT NOT NULL,
    payload      TEXT NOT NULL,
    due_at       TIMESTAMPTZ NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    delivered_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS psp_webhooks_due_idx ON psp_webhooks (due_at) WHERE delivered_at IS NULL;
