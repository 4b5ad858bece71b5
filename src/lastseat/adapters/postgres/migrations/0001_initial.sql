-- lastseat schema v1 for PostgreSQL: the same tables, constraints and indexes as the SQLite
-- schema v1. Times are integer microseconds since the Unix epoch (UTC), money is integer minor
-- units. Lines between "-- safety-net:begin" and "-- safety-net:end" back an invariant with a
-- constraint; only the race lab's `naive` databases are made without them, so that the
-- unguarded race shows what it does instead of ending in a constraint error.

CREATE TABLE events (
    event_id      TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    currency      TEXT NOT NULL CHECK (length(currency) = 3),
    created_at_us BIGINT NOT NULL
);

CREATE TABLE pools (
    pool_id     TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL REFERENCES events (event_id),
    name        TEXT NOT NULL,
    capacity    INTEGER NOT NULL CHECK (capacity >= 0),
    held        INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
    sold        INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),
    price_minor BIGINT NOT NULL CHECK (price_minor > 0),
    version     BIGINT NOT NULL DEFAULT 0,
    UNIQUE (event_id, name),
    CHECK (held + sold <= capacity)
);

-- Fences only grow, across every writer: a sequence, not MAX(fence) + 1.
CREATE SEQUENCE hold_fences AS BIGINT;

CREATE TABLE holds (
    hold_id       TEXT PRIMARY KEY,
    fence         BIGINT NOT NULL UNIQUE,
    event_id      TEXT NOT NULL REFERENCES events (event_id),
    buyer_id      TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'converted', 'released', 'expired')),
    pool_id       TEXT REFERENCES pools (pool_id),
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL
);
CREATE INDEX holds_lapsing ON holds (expires_at_us) WHERE status = 'active';
CREATE INDEX holds_by_pool ON holds (pool_id, expires_at_us) WHERE status = 'active';

CREATE TABLE seats (
    seat_id     TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL REFERENCES events (event_id),
    section     TEXT NOT NULL,
    row_number  INTEGER NOT NULL,
    number      INTEGER NOT NULL,
    price_minor BIGINT NOT NULL CHECK (price_minor > 0),
    status      TEXT NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'held', 'sold')),
    hold_id     TEXT REFERENCES holds (hold_id) DEFERRABLE INITIALLY DEFERRED,
    version     BIGINT NOT NULL DEFAULT 0,
    UNIQUE (event_id, section, row_number, number),
    CHECK ((status = 'available') = (hold_id IS NULL))
);
CREATE INDEX seats_by_hold ON seats (hold_id) WHERE hold_id IS NOT NULL;

CREATE TABLE hold_seats (
    hold_id TEXT NOT NULL REFERENCES holds (hold_id) DEFERRABLE INITIALLY DEFERRED,
    seat_id TEXT NOT NULL REFERENCES seats (seat_id),
    PRIMARY KEY (hold_id, seat_id)
);

CREATE TABLE orders (
    order_id      TEXT PRIMARY KEY,
    buyer_id      TEXT NOT NULL,
    event_id      TEXT NOT NULL REFERENCES events (event_id),
    hold_id       TEXT NOT NULL UNIQUE REFERENCES holds (hold_id) DEFERRABLE INITIALLY DEFERRED,
    status        TEXT NOT NULL CHECK (status IN
                      ('pending_payment', 'confirmed', 'failed', 'expired', 'refunded')),
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    currency      TEXT NOT NULL,
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    created_at_us BIGINT NOT NULL
);
CREATE INDEX orders_by_buyer ON orders (buyer_id);

CREATE TABLE tickets (
    ticket_id TEXT PRIMARY KEY,
    order_id  TEXT NOT NULL REFERENCES orders (order_id) DEFERRABLE INITIALLY DEFERRED,
    event_id  TEXT NOT NULL REFERENCES events (event_id),
    seat_id   TEXT REFERENCES seats (seat_id),
    pool_id   TEXT REFERENCES pools (pool_id),
    code      TEXT NOT NULL UNIQUE,
    status    TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'void')),
    CHECK ((seat_id IS NULL) <> (pool_id IS NULL))
);
CREATE INDEX tickets_by_order ON tickets (order_id);
-- safety-net:begin
CREATE UNIQUE INDEX one_valid_ticket_per_seat ON tickets (seat_id)
    WHERE status = 'valid' AND seat_id IS NOT NULL;
-- safety-net:end

CREATE TABLE accounts (
    account_id    TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('wallet', 'revenue', 'world')),
    currency      TEXT NOT NULL CHECK (length(currency) = 3),
    balance_minor BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT balance_not_negative CHECK (balance_minor >= 0 OR kind = 'world')
);

CREATE TABLE transfers (
    transfer_id   TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('top_up', 'purchase', 'refund', 'transfer')),
    source        TEXT NOT NULL REFERENCES accounts (account_id),
    destination   TEXT NOT NULL REFERENCES accounts (account_id),
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    currency      TEXT NOT NULL,
    order_id      TEXT REFERENCES orders (order_id) DEFERRABLE INITIALLY DEFERRED,
    created_at_us BIGINT NOT NULL,
    CHECK (source <> destination)
);
CREATE UNIQUE INDEX one_purchase_per_order ON transfers (order_id) WHERE kind = 'purchase';
CREATE UNIQUE INDEX one_refund_per_order ON transfers (order_id) WHERE kind = 'refund';

CREATE TABLE ledger_entries (
    entry_id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id  TEXT NOT NULL REFERENCES transfers (transfer_id),
    account_id   TEXT NOT NULL REFERENCES accounts (account_id),
    amount_minor BIGINT NOT NULL CHECK (amount_minor <> 0)
);
CREATE INDEX entries_by_account ON ledger_entries (account_id);
