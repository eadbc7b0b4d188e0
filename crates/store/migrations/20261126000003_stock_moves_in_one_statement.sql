-- The two stock moves of every order, reserve and confirm, as functions (with
-- settle_reservations, which release_stock uses too): one round trip per step instead of one
-- per statement (measured in BENCHMARKS.md). Each runs in the caller's statement,
-- so it is one transaction, and takes its locks in the one global order: the order row first,
-- then the order's products by id. The rules are the ones crates/store/src/inventory.rs
-- describes; the Rust methods there are thin wrappers.

-- Moves the order's held reservations to 'sold' or 'released', and the units with them
-- (reserved → sold, or reserved → available). Call with the order row locked.
CREATE FUNCTION settle_reservations(p_order uuid, p_to text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Lock the products first, in id order: a multi-row UPDATE alone would lock them in the
    -- planner's order, and two orders doing that can deadlock. NO KEY UPDATE is the lock the
    -- UPDATE takes anyway; FOR UPDATE would also block the key-share lock that inserting a new
    -- order's lines takes on their products (the foreign key), in the customer's line order,
    -- and deadlock with it (test: placing_orders_while_others_move_stock_does_not_deadlock).
    PERFORM 1 FROM products
      WHERE id IN (SELECT product_id FROM reservations WHERE order_id = p_order AND status = 'held')
      ORDER BY id
        FOR NO KEY UPDATE;
    WITH moved AS (
        UPDATE reservations SET status = p_to, updated_at = now()
         WHERE order_id = p_order AND status = 'held'
        RETURNING product_id, quantity)
    UPDATE products p
       SET reserved   = p.reserved - moved.quantity,
           sold       = p.sold + CASE WHEN p_to = 'sold' THEN moved.quantity ELSE 0 END,
           available  = p.available + CASE WHEN p_to = 'released' THEN moved.quantity ELSE 0 END,
           updated_at = now()
      FROM moved
     WHERE p.id = moved.product_id;
END $$;

-- Holds the stock of every line of the order, all or nothing, and moves the order to 'payment'.
-- Returns nothing when it did (or had done it before, or the order is closed), and the first
-- line it could not hold otherwise, having changed nothing.
CREATE FUNCTION reserve_stock(p_order uuid)
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
    UPDATE orders SET status = 'payment', current_step = 'process_payment', updated_at = now()
     WHERE id = p_order AND status IN ('pending', 'validating');
END $$;

-- Turns the held stock into sold stock and completes the order, unless the order is closed or
-- its cancellation was requested first (the order row lock decides which came first).
-- Returns 'confirmed', 'already_confirmed' (a retry) or 'refused'.
CREATE FUNCTION confirm_order(p_order uuid) RETURNS text LANGUAGE plpgsql AS $$
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
       SET status = 'completed', current_step = 'notify_customer', completed_at = now(), updated_at = now()
     WHERE id = p_order;
    RETURN 'confirmed';
END $$;
