-- OrderFlow schema. Every invariant the code relies on is also a constraint here, so that a bug
-- shows up as a failed statement instead of as oversold stock or a double charge.

CREATE TABLE products (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    sku         TEXT NOT NULL UNIQUE,
    price       NUMERIC(12, 2) NOT NULL CHECK (price >= 0),
    -- Units that can still be ordered.
    available   INTEGER NOT NULL CHECK (available >= 0),
    -- Units held by orders in flight.
    reserved    INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    -- Units of completed orders. available + reserved + sold is the stock ever received.
    sold        INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    -- UUIDv7: ordering by id is ordering by creation time.
    id                UUID PRIMARY KEY,
    workflow_id       TEXT NOT NULL UNIQUE,
    customer_id       TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN
                        ('pending', 'validating', 'payment', 'completed', 'failed', 'cancelled')),
    current_step      TEXT NOT NULL,
    total_amount      NUMERIC(12, 2) NOT NULL CHECK (total_amount >= 0),
    error_code        TEXT,
    error_message     TEXT,
    payment_id        TEXT,
    customer_notified BOOLEAN NOT NULL DEFAULT false,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at      TIMESTAMPTZ,
    CHECK ((status IN ('completed', 'failed', 'cancelled')) = (completed_at IS NOT NULL)),
    CHECK ((status = 'failed') = (error_code IS NOT NULL))
);
CREATE INDEX orders_customer_idx ON orders (customer_id, id DESC);
CREATE INDEX orders_status_idx ON orders (status, id DESC);

CREATE TABLE order_items (
    order_id    UUID NOT NULL REFERENCES orders (id),
    product_id  TEXT NOT NULL REFERENCES products (id),
    name        TEXT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    unit_price  NUMERIC(12, 2) NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX order_items_product_idx ON order_items (product_id);

-- Stock held for, then sold to or released from, one order. One row per order and product.
CREATE TABLE reservations (
    order_id    UUID NOT NULL REFERENCES orders (id),
    product_id  TEXT NOT NULL REFERENCES products (id),
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    status      TEXT NOT NULL CHECK (status IN ('held', 'sold', 'released')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX reservations_held_idx ON reservations (product_id) WHERE status = 'held';

-- At most one payment per order: the primary key is the guarantee against double charges.
CREATE TABLE payments (
    order_id    UUID PRIMARY KEY REFERENCES orders (id),
    -- The provider's id; the provider derives it from the order id (its idempotency key).
    payment_id  TEXT UNIQUE,
    amount      NUMERIC(12, 2) NOT NULL CHECK (amount >= 0),
    status      TEXT NOT NULL CHECK (status IN ('captured', 'declined', 'refunded')),
    decline_reason TEXT,
    refund_id   TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'declined') = (payment_id IS NULL)),
    CHECK ((status = 'refunded') = (refund_id IS NOT NULL))
);

-- What the customer was told. One row per order and kind of message.
CREATE TABLE notifications (
    order_id    UUID NOT NULL REFERENCES orders (id),
    kind        TEXT NOT NULL CHECK (kind IN ('order_confirmed', 'order_failed', 'order_cancelled')),
    channel     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('sent', 'failed')),
    message     TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 1,
    last_error  TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, kind)
);

-- Idempotency-Key header -> the order it created. The order row itself is written by the
-- workflow, so there is deliberately no foreign key to orders.
CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY,
    request_hash BYTEA NOT NULL,
    order_id     UUID NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
