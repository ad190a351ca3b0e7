-- The same table as migrations/sqlite/0003_buffered_events.sql (see the comments there).
CREATE TABLE buffered_events (
    run_id TEXT NOT NULL,
    seq    BIGINT NOT NULL,
    data   BYTEA NOT NULL,
    PRIMARY KEY (run_id, seq)
);
