-- A customer's cancellation, recorded in the same row lock that confirmation takes, so that the
-- database decides which came first: a cancelled order is never confirmed, a confirmed order is
-- never cancelled.
ALTER TABLE orders ADD COLUMN cancel_requested_at TIMESTAMPTZ;
