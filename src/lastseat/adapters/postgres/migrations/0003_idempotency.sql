-- lastseat schema v3: Idempotency-Key records. One row per (principal, method, path, key): the
-- request's fingerprint, which attempt runs it and until when (attempt, lease_until_us), and,
-- once it finished, the answer to replay (status IS NOT NULL). Reaped after the retention.
CREATE TABLE idempotency_keys (
    record_id       TEXT PRIMARY KEY,
    principal       TEXT NOT NULL,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    attempt         INTEGER NOT NULL CHECK (attempt >= 1),
    lease_until_us  BIGINT NOT NULL,
    created_at_us   BIGINT NOT NULL,
    finished_at_us  BIGINT,
    status          INTEGER,
    headers         TEXT,
    body            BYTEA,
    UNIQUE (principal, method, path, idempotency_key)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at_us);
