-- Steps that keep failing (a broken migration, a revoked grant, an outage), for the operators:
-- written by the worker once a step has failed STUCK_AFTER_ATTEMPTS times in a row, removed when
-- it succeeds. The raw error is here and in the logs, never in what customers see. No foreign
-- key: the stuck step may be the one that writes the order.
CREATE TABLE stuck_steps (
    order_id     uuid        NOT NULL,
    step         text        NOT NULL,
    attempts     integer     NOT NULL,
    last_error   text        NOT NULL,
    stuck_since  timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, step)
);
