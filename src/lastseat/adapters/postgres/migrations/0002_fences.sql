-- lastseat schema v2: storage-side fencing. The highest fencing token a lock-guarded write has
-- carried, per locked resource (a seat id or a pool id). A write with a lower token is refused.
CREATE TABLE fences (
    resource TEXT PRIMARY KEY,
    token    BIGINT NOT NULL
);

-- Tokens of `pg-advisory` grants, drawn while the advisory locks are held.
CREATE SEQUENCE advisory_fences;
