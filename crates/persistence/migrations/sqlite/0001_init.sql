-- Shard leases: range_id is the fencing token every execution write checks.
CREATE TABLE shards (
    shard_id INTEGER PRIMARY KEY,
    range_id INTEGER NOT NULL
);

CREATE TABLE namespaces (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- protobuf-encoded namespace description, config and state
    data BLOB NOT NULL
);

-- The run a workflow id currently points at.
CREATE TABLE current_executions (
    namespace_id     TEXT NOT NULL,
    workflow_id      TEXT NOT NULL,
    run_id           TEXT NOT NULL,
    running          INTEGER NOT NULL,
    status           INTEGER NOT NULL,
    start_request_id TEXT NOT NULL,
    PRIMARY KEY (namespace_id, workflow_id)
) WITHOUT ROWID;

-- Mutable state, one row per run; db_version guards every update.
CREATE TABLE executions (
    namespace_id TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    shard_id     INTEGER NOT NULL,
    db_version   INTEGER NOT NULL,
    state        BLOB NOT NULL,
    PRIMARY KEY (namespace_id, workflow_id, run_id)
) WITHOUT ROWID;

-- Append-only history; events are never rewritten.
CREATE TABLE history_events (
    run_id   TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (run_id, event_id)
) WITHOUT ROWID;

-- Matching backlog: tasks written with the state change that scheduled them, deleted with the
-- state change that started them.
CREATE TABLE queue_tasks (
    task_id      INTEGER PRIMARY KEY,
    namespace_id TEXT NOT NULL,
    task_queue   TEXT NOT NULL,
    kind         INTEGER NOT NULL,
    data         BLOB NOT NULL
);
CREATE INDEX queue_tasks_by_queue ON queue_tasks (namespace_id, task_queue, kind, task_id);

-- Durable timers of each shard, fired in fire_time order.
CREATE TABLE timer_tasks (
    shard_id  INTEGER NOT NULL,
    fire_time INTEGER NOT NULL,
    task_id   INTEGER NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (shard_id, fire_time, task_id)
) WITHOUT ROWID;
