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
