-- Payments as providers do them (docs/payments.md): the money is authorized while the order
-- is placed, captured when it is confirmed, and voided (or refunded) when it is not. The stock
-- is held until `hold_expires_at`: an order still waiting for its payment then fails with
-- `payment_timeout` and gives the stock back.

ALTER TABLE orders ADD COLUMN hold_expires_at TIMESTAMPTZ;

-- One row per order, as before; `payment_id` is now the provider's payment intent, known from
-- the authorization on. 'declined' is the word of workers older than this migration; new ones
-- write 'failed'. (Old and new workers must not run side by side: see docs/payments.md,
-- "Upgrading".)
ALTER TABLE payments
    DROP CONSTRAINT payments_status_check,
    DROP CONSTRAINT payments_check,
    DROP CONSTRAINT payments_check1,
    ADD COLUMN captured NUMERIC(12, 2) NOT NULL DEFAULT 0,
    ADD COLUMN refunded NUMERIC(12, 2) NOT NULL DEFAULT 0;
UPDATE payments SET captured = amount WHERE status IN ('captured', 'refunded');
UPDATE payments SET refunded = amount WHERE status = 'refunded';
ALTER TABLE payments
    ADD CONSTRAINT payments_status_check CHECK (status IN
        ('requires_action', 'authorized', 'captured', 'voided', 'refunded', 'failed', 'declined')),
    ADD CONSTRAINT payments_amounts_check CHECK (captured <= amount AND refunded <= captured),
    ADD CONSTRAINT payments_refund_id_check CHECK ((status = 'refunded') = (refund_id IS NOT NULL));

-- The provider's webhook events, each once: the primary key is how a repeated delivery is
-- recognized. Not tied to orders by a foreign key: an event for an order this database does
-- not know is kept (and acknowledged), so that it can be looked at.
CREATE TABLE payment_events (
    event_id      TEXT PRIMARY KEY,
    order_id      UUID,
    type          TEXT NOT NULL,
    payment_id    TEXT NOT NULL,
    -- What OrderFlow did with it: 'delivered' (handed to the order's workflow), 'voided'
    -- (the order had ended: its authorization was voided), 'ignored' (nothing to do),
    -- 'unknown_order'.
    outcome       TEXT NOT NULL CHECK (outcome IN ('delivered', 'voided', 'ignored', 'unknown_order')),
    received_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payment_events_order_idx ON payment_events (order_id, received_at);

-- reserve_stock, holding the stock until now() + p_hold (none when NULL). The one-argument
-- form stays for workers older than this migration.
CREATE FUNCTION reserve_stock(p_order uuid, p_hold interval)
RETURNS TABLE (short_product text, requested integer, in_stock integer)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY SELECT * FROM reserve_stock(p_order);
    IF NOT FOUND AND p_hold IS NOT NULL THEN
        UPDATE orders SET hold_expires_at = now() + p_hold
         WHERE id = p_order AND hold_expires_at IS NULL AND status = 'payment';
    END IF;
END $$;
