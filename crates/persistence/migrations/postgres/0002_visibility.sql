-- The same tables as migrations/sqlite/0002_visibility.sql (see the comments there).
CREATE TABLE executions_visibility (
    namespace_id           TEXT NOT NULL,
    run_id                 TEXT NOT NULL,
    workflow_id            TEXT NOT NULL,
    workflow_type          TEXT NOT NULL,
    task_queue             TEXT NOT NULL,
    status                 BIGINT NOT NULL,
    start_time             BIGINT NOT NULL,
    execution_time         BIGINT NOT NULL,
    close_time             BIGINT,
    execution_duration     BIGINT,
    history_length         BIGINT,
    history_size_bytes     BIGINT,
    state_transition_count BIGINT,
    parent_workflow_id     TEXT,
    parent_run_id          TEXT,
    root_workflow_id       TEXT,
    root_run_id            TEXT,
    data                   BYTEA NOT NULL,
    PRIMARY KEY (namespace_id, run_id)
);
CREATE INDEX visibility_by_close_time ON executions_visibility (namespace_id, close_time, start_time);
CREATE INDEX visibility_by_workflow_id ON executions_visibility (namespace_id, workflow_id);
CREATE INDEX visibility_by_status ON executions_visibility (namespace_id, status, close_time);

CREATE TABLE visibility_attributes (
    namespace_id TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    sval         TEXT,
    ival         BIGINT,
    dval         DOUBLE PRECISION
);
CREATE INDEX visibility_attributes_by_run ON visibility_attributes (namespace_id, run_id, name);
CREATE INDEX visibility_attributes_by_sval ON visibility_attributes (namespace_id, name, sval);
CREATE INDEX visibility_attributes_by_ival ON visibility_attributes (namespace_id, name, ival);

CREATE TABLE search_attributes (
    namespace_id TEXT NOT NULL,
    name         TEXT NOT NULL,
    value_type   BIGINT NOT NULL,
    PRIMARY KEY (namespace_id, name)
);

CREATE TABLE system_jobs (
    namespace_id TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    running      BIGINT NOT NULL,
    created      BIGINT NOT NULL,
    data         BYTEA NOT NULL,
    PRIMARY KEY (namespace_id, job_id)
);
