-- The same table as migrations/sqlite/0004_cluster_members.sql (see the comments there).
-- VARCHAR, not TEXT: the Any driver reads MySQL TEXT columns as blobs, not strings.
CREATE TABLE cluster_members (
    member_id    VARCHAR(255) PRIMARY KEY,
    address      VARCHAR(1024) NOT NULL,
    roles        VARCHAR(1024) NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
