-- The OpenTelemetry trace of the order (32 hex digits), recorded by the step that writes the
-- order when traces are exported: the operators' order page links an order to its trace. No
-- constraint: checking one would scan the whole table under an exclusive lock at upgrade; the
-- only writer is the step, which writes a trace id or nothing.
ALTER TABLE orders ADD COLUMN trace_id text;
