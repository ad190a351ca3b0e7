-- The same tables as migrations/sqlite/0001_init.sql (see the comments there). Identifiers
-- compare byte by byte (utf8mb4_bin), as on the other backends. InnoDB keys are limited to
-- 3072 bytes, so a workflow id is at most 700 characters here (Temporal's MySQL schema: 255).
CREATE TABLE shards (
    shard_id BIGINT PRIMARY KEY,
    range_id BIGINT NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE namespaces (
    id   VARCHAR(64) PRIMARY KEY,
    name VARCHAR(750) NOT NULL UNIQUE,
    data LONGBLOB NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE current_executions (
    namespace_id     VARCHAR(64) CHARACTER SET ascii NOT NULL,
    workflow_id      VARCHAR(700) NOT NULL,
    run_id           VARCHAR(64) CHARACTER SET ascii NOT NULL,
    running          BIGINT NOT NULL,
    status           BIGINT NOT NULL,
    start_request_id VARCHAR(1000) NOT NULL,
    PRIMARY KEY (namespace_id, workflow_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE executions (
    namespace_id VARCHAR(64) CHARACTER SET ascii NOT NULL,
    workflow_id  VARCHAR(700) NOT NULL,
    run_id       VARCHAR(64) CHARACTER SET ascii NOT NULL,
    shard_id     BIGINT NOT NULL,
    db_version   BIGINT NOT NULL,
    state        LONGBLOB NOT NULL,
    PRIMARY KEY (namespace_id, workflow_id, run_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE history_events (
    run_id   VARCHAR(64) CHARACTER SET ascii NOT NULL,
    event_id BIGINT NOT NULL,
    data     LONGBLOB NOT NULL,
    PRIMARY KEY (run_id, event_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE queue_tasks (
    task_id      BIGINT PRIMARY KEY,
    namespace_id VARCHAR(64) CHARACTER SET ascii NOT NULL,
    task_queue   VARCHAR(1000) NOT NULL,
    kind         BIGINT NOT NULL,
    data         LONGBLOB NOT NULL,
    INDEX queue_tasks_by_queue (namespace_id, task_queue(255), kind, task_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE timer_tasks (
    shard_id  BIGINT NOT NULL,
    fire_time BIGINT NOT NULL,
    task_id   BIGINT NOT NULL,
    data      LONGBLOB NOT NULL,
    PRIMARY KEY (shard_id, fire_time, task_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
