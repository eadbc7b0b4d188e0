-- An order is `completed` only once its money is taken (docs/payments.md, "Capture before
-- completion"). Confirmation now has two halves around the capture: `begin_confirmation` marks
-- the order as being confirmed, the point of no return (a cancellation is refused from then on,
-- under the same row lock that records one); the worker captures the payment at the provider;
-- then `confirm_order` sells the stock and completes the order. A capture the provider refuses
-- for good (the authorization failed, was voided or expired) fails the order with
-- `payment_failed` and rolls it back: stock released, customer told.
ALTER TABLE orders ADD COLUMN confirming_at TIMESTAMPTZ;

-- Returns 'begun' (now, or by an earlier attempt), 'already_confirmed', or 'refused' (closed,
-- or the customer's cancellation came first).
CREATE FUNCTION begin_confirmation(p_order uuid) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_cancel_requested boolean;
BEGIN
    SELECT status, cancel_requested_at IS NOT NULL INTO v_status, v_cancel_requested
      FROM orders WHERE id = p_order FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % does not exist', p_order USING ERRCODE = 'no_data_found';
    END IF;
    IF v_status = 'completed' THEN
        RETURN 'already_confirmed';
    END IF;
    IF v_status IN ('failed', 'cancelled') OR v_cancel_requested THEN
        RETURN 'refused';
    END IF;
    UPDATE orders SET confirming_at = COALESCE(confirming_at, now()), updated_at = now()
     WHERE id = p_order;
    RETURN 'begun';
END $$;
