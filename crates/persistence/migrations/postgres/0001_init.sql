-- The same tables as migrations/sqlite/0001_init.sql (see the comments there).
CREATE TABLE shards (
    shard_id BIGINT PRIMARY KEY,
    range_id BIGINT NOT NULL
);

CREATE TABLE namespaces (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data BYTEA NOT NULL
);

CREATE TABLE current_executions (
    namespace_id     TEXT NOT NULL,
    workflow_id      TEXT NOT NULL,
    run_id           TEXT NOT NULL,
    running          BIGINT NOT NULL,
    status           BIGINT NOT NULL,
    start_request_id TEXT NOT NULL,
    PRIMARY KEY (namespace_id, workflow_id)
);

CREATE TABLE executions (
    namespace_id TEXT NOT NULL,
    workflow_id  TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    shard_id     BIGINT NOT NULL,
    db_version   BIGINT NOT NULL,
    state        BYTEA NOT NULL,
    PRIMARY KEY (namespace_id, workflow_id, run_id)
);

CREATE TABLE history_events (
    run_id   TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    data     BYTEA NOT NULL,
    PRIMARY KEY (run_id, event_id)
);

CREATE TABLE queue_tasks (
    task_id      BIGINT PRIMARY KEY,
    namespace_id TEXT NOT NULL,
    task_queue   TEXT NOT NULL,
    kind         BIGINT NOT NULL,
    data         BYTEA NOT NULL
);
CREATE INDEX queue_tasks_by_queue ON queue_tasks (namespace_id, task_queue, kind, task_id);

CREATE TABLE timer_tasks (
    shard_id  BIGINT NOT NULL,
    fire_time BIGINT NOT NULL,
    task_id   BIGINT NOT NULL,
    data      BYTEA NOT NULL,
    PRIMARY KEY (shard_id, fire_time, task_id)
);
