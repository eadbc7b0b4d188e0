-- The database records what happened, not which step comes next: `orders.current_step` is the
-- step that last changed the order. Before, reserving stock wrote the next step's name
-- ('process_payment') and confirming wrote 'notify_customer', so a new step between them meant
-- rewriting these functions. The bodies are otherwise unchanged.

CREATE OR REPLACE FUNCTION reserve_stock(p_order uuid)
RETURNS TABLE (short_product text, requested integer, in_stock integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    SELECT status INTO v_status FROM orders WHERE id = p_order FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % does not exist', p_order USING ERRCODE = 'no_data_found';
    END IF;
    -- A closed order is fenced; reservations that exist are this step's own, from a retry.
    IF v_status IN ('failed', 'cancelled')
       OR EXISTS (SELECT 1 FROM reservations WHERE order_id = p_order) THEN
        RETURN;
    END IF;
    -- Lock every line's product in id order (NO KEY UPDATE: see settle_reservations), then
    -- check them all before taking any units: all or nothing without a savepoint. The
    -- CHECK (available >= 0) would stop an oversell anyway.
    PERFORM 1 FROM products
      WHERE id IN (SELECT product_id FROM order_items WHERE order_id = p_order)
      ORDER BY id
        FOR NO KEY UPDATE;
    RETURN QUERY
        SELECT i.product_id, i.quantity, p.available
          FROM order_items i JOIN products p ON p.id = i.product_id
         WHERE i.order_id = p_order AND p.available < i.quantity
         ORDER BY i.product_id
         LIMIT 1;
    IF FOUND THEN
        RETURN;
    END IF;
    UPDATE products p
       SET available = p.available - i.quantity, reserved = p.reserved + i.quantity, updated_at = now()
      FROM order_items i
     WHERE i.order_id = p_order AND p.id = i.product_id;
    INSERT INTO reservations (order_id, product_id, quantity, status)
    SELECT order_id, product_id, quantity, 'held' FROM order_items WHERE order_id = p_order;
    UPDATE orders SET status = 'payment', current_step = 'reserve_stock', updated_at = now()
     WHERE id = p_order AND status IN ('pending', 'validating');
END $$;

CREATE OR REPLACE FUNCTION confirm_order(p_order uuid) RETURNS text LANGUAGE plpgsql AS $$
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
    PERFORM settle_reservations(p_order, 'sold');
    UPDATE orders
       SET status = 'completed', current_step = 'confirm_order', completed_at = now(), updated_at = now()
     WHERE id = p_order;
    RETURN 'confirmed';
END $$;

-- Orders already past these steps keep what was written then.
