-- The change history, the last snapshot and the request ledger (docs/history.md).
-- Times are epoch milliseconds (or minutes, for the ledger) in BIGINT, so that one query layer
-- serves SQLite and PostgreSQL alike.

-- Which merchant the history belongs to (one database holds one merchant's history).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per finished sync.
CREATE TABLE syncs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    requests    BIGINT NOT NULL,
    devices     BIGINT NOT NULL,
    complete    BIGINT NOT NULL,
    baseline    BIGINT NOT NULL,
    added       BIGINT NOT NULL,
    removed     BIGINT NOT NULL,
    changed     BIGINT NOT NULL
);
CREATE INDEX syncs_by_time ON syncs (finished_at);

-- One row per event. `at` is the finish time of the sync that found it.
CREATE TABLE events (
    id                     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sync_id                BIGINT NOT NULL,
    at                     BIGINT NOT NULL,
    kind                   TEXT NOT NULL,
    device_sn              TEXT NOT NULL,
    field                  TEXT NOT NULL,
    old_value              TEXT,
    new_value              TEXT,
    sub_mchid              TEXT NOT NULL,
    sub_merchant_shortname TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (at DESC, id);
CREATE INDEX events_by_device ON events (device_sn, at);
CREATE INDEX events_by_sub_merchant ON events (sub_mchid);

-- The last good snapshot (role 'served') and, after an incomplete sync, the list as the history
-- knows it (role 'baseline'), as JSON. Replaced in the same transaction as the events.
CREATE TABLE snapshots (
    source   TEXT NOT NULL,
    role     TEXT NOT NULL,
    saved_at BIGINT NOT NULL,
    body     BYTEA NOT NULL,
    PRIMARY KEY (source, role)
);

-- Requests sent to WeChat Pay per minute, over the last 24 h.
CREATE TABLE ledger (
    source   TEXT NOT NULL,
    minute   BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    PRIMARY KEY (source, minute)
);
