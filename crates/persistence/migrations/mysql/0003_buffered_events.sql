-- The same table as migrations/sqlite/0003_buffered_events.sql (see the comments there).
CREATE TABLE buffered_events (
    run_id VARCHAR(64) CHARACTER SET ascii NOT NULL,
    seq    BIGINT NOT NULL,
    data   LONGBLOB NOT NULL,
    PRIMARY KEY (run_id, seq)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
