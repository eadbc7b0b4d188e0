-- The identity of this database: one row, made once with the schema. Every order carries it
-- through its workflow, and a worker connected to another database refuses the order's steps
-- (two deployments sharing a Temporal task queue would otherwise run each other's orders against
-- the wrong data). A restored backup keeps the identity, as it keeps the orders.
CREATE TABLE database_identity (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now(),
    one_row    boolean     NOT NULL DEFAULT true UNIQUE CHECK (one_row)
);
INSERT INTO database_identity DEFAULT VALUES;
