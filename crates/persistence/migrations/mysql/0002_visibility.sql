-- The same tables as migrations/sqlite/0002_visibility.sql (see the comments there).
CREATE TABLE executions_visibility (
    namespace_id           VARCHAR(64) CHARACTER SET ascii NOT NULL,
    run_id                 VARCHAR(64) CHARACTER SET ascii NOT NULL,
    workflow_id            VARCHAR(1000) NOT NULL,
    workflow_type          VARCHAR(1000) NOT NULL,
    task_queue             VARCHAR(1000) NOT NULL,
    status                 BIGINT NOT NULL,
    start_time             BIGINT NOT NULL,
    execution_time         BIGINT NOT NULL,
    close_time             BIGINT,
    execution_duration     BIGINT,
    history_length         BIGINT,
    history_size_bytes     BIGINT,
    state_transition_count BIGINT,
    parent_workflow_id     VARCHAR(1000),
    parent_run_id          VARCHAR(64),
    root_workflow_id       VARCHAR(1000),
    root_run_id            VARCHAR(64),
    data                   LONGBLOB NOT NULL,
    PRIMARY KEY (namespace_id, run_id),
    INDEX visibility_by_close_time (namespace_id, close_time, start_time),
    INDEX visibility_by_workflow_id (namespace_id, workflow_id(255)),
    INDEX visibility_by_status (namespace_id, status, close_time)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE visibility_attributes (
    namespace_id VARCHAR(64) CHARACTER SET ascii NOT NULL,
    run_id       VARCHAR(64) CHARACTER SET ascii NOT NULL,
    name         VARCHAR(255) NOT NULL,
    sval         TEXT,
    ival         BIGINT,
    dval         DOUBLE,
    INDEX visibility_attributes_by_run (namespace_id, run_id, name),
    INDEX visibility_attributes_by_sval (namespace_id, name, sval(255)),
    INDEX visibility_attributes_by_ival (namespace_id, name, ival)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE search_attributes (
    namespace_id VARCHAR(64) CHARACTER SET ascii NOT NULL,
    name         VARCHAR(255) NOT NULL,
    value_type   BIGINT NOT NULL,
    PRIMARY KEY (namespace_id, name)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE system_jobs (
    namespace_id VARCHAR(64) CHARACTER SET ascii NOT NULL,
    job_id       VARCHAR(255) NOT NULL,
    running      BIGINT NOT NULL,
    created      BIGINT NOT NULL,
    data         LONGBLOB NOT NULL,
    PRIMARY KEY (namespace_id, job_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
