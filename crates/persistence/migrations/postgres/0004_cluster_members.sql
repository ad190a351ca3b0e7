-- The same table as migrations/sqlite/0004_cluster_members.sql (see the comments there).
CREATE TABLE cluster_members (
    member_id    TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    roles        TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
