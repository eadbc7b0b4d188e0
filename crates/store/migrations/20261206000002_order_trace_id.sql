-- The OpenTelemetry trace of the order (32 hex digits), recorded by the step that writes the
-- order when traces are exported: the operators' order page links an order to its trace.
ALTER TABLE orders ADD COLUMN trace_id text
    CONSTRAINT orders_trace_id_is_hex CHECK (trace_id ~ '^[0-9a-f]{32}$');
