-- lastseat schema v2: storage-side fencing. The highest fencing token a lock-guarded write has
-- carried, per locked resource (a seat id or a pool id). A write with a lower token is refused.
CREATE TABLE fences (
    resource TEXT PRIMARY KEY,
    token    INTEGER NOT NULL
);
