-- Cluster membership: each node records itself, one row per node, and renews the row with a
-- heartbeat. A node is live while its lease is fresh (expires_at is in the future); liveness
-- is decided by the reader, and rows long expired are deleted by whoever notices them.
CREATE TABLE cluster_members (
    member_id    TEXT PRIMARY KEY,
    -- the node's internal gRPC address, host:port
    address      TEXT NOT NULL,
    -- the roles it runs, comma-separated (empty: none)
    roles        TEXT NOT NULL,
    -- unix milliseconds: when this incarnation of the node started
    started_at   INTEGER NOT NULL,
    -- unix milliseconds: its last heartbeat, and heartbeat_at + lease
    heartbeat_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;
