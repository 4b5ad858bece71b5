-- lastseat schema v4: payments through a provider outside the database. One row per order
-- paid that way; its payment key (derived from the order id) is what the provider dedupes on.
-- The lease elects one driver at a time (the request that placed the order, then reconcilers).
CREATE TABLE payments (
    order_id       TEXT PRIMARY KEY REFERENCES orders (order_id) DEFERRABLE INITIALLY DEFERRED,
    provider       TEXT NOT NULL,
    payment_key    TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN
                       ('pending', 'captured', 'declined', 'refund_pending', 'refunded')),
    amount_minor   INTEGER NOT NULL CHECK (amount_minor > 0),
    currency       TEXT NOT NULL,
    payment_id     TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    lease_until_us INTEGER NOT NULL,
    updated_at_us  INTEGER NOT NULL,
    CHECK (status IN ('pending', 'declined') OR payment_id IS NOT NULL)
);
CREATE INDEX payments_unsettled ON payments (lease_until_us)
    WHERE status IN ('pending', 'refund_pending');
