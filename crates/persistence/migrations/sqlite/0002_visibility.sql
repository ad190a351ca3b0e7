-- Visibility: one row per run, written in the same transaction as the state change it
-- reflects (start, search attribute or memo upsert, close).
CREATE TABLE executions_visibility (
    namespace_id           TEXT NOT NULL,
    run_id                 TEXT NOT NULL,
    workflow_id            TEXT NOT NULL,
    workflow_type          TEXT NOT NULL,
    task_queue             TEXT NOT NULL,
    status                 INTEGER NOT NULL,
    -- times in unix nanoseconds; close fields stay NULL while the run is open
    start_time             INTEGER NOT NULL,
    execution_time         INTEGER NOT NULL,
    close_time             INTEGER,
    execution_duration     INTEGER,
    history_length         INTEGER,
    history_size_bytes     INTEGER,
    state_transition_count INTEGER,
    parent_workflow_id     TEXT,
    parent_run_id          TEXT,
    root_workflow_id       TEXT,
    root_run_id            TEXT,
    -- protobuf-encoded WorkflowExecutionInfo, returned as is by List
    data                   BLOB NOT NULL,
    PRIMARY KEY (namespace_id, run_id)
) WITHOUT ROWID;
CREATE INDEX visibility_by_close_time ON executions_visibility (namespace_id, close_time, start_time);
CREATE INDEX visibility_by_workflow_id ON executions_visibility (namespace_id, workflow_id);
CREATE INDEX visibility_by_status ON executions_visibility (namespace_id, status, close_time);

-- Search attribute values, a row per value: Keyword/KeywordList elements and Text words in
-- sval, Int/Bool/Datetime in ival, Double in dval.
CREATE TABLE visibility_attributes (
    namespace_id TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    sval         TEXT,
    ival         INTEGER,
    dval         REAL
);
CREATE INDEX visibility_attributes_by_run ON visibility_attributes (namespace_id, run_id, name);
CREATE INDEX visibility_attributes_by_sval ON visibility_attributes (namespace_id, name, sval);
CREATE INDEX visibility_attributes_by_ival ON visibility_attributes (namespace_id, name, ival);

-- Custom search attributes registered per namespace (IndexedValueType).
CREATE TABLE search_attributes (
    namespace_id TEXT NOT NULL,
    name         TEXT NOT NULL,
    value_type   INTEGER NOT NULL,
    PRIMARY KEY (namespace_id, name)
) WITHOUT ROWID;

-- Jobs the internal worker runs (batch operations): protobuf-encoded request and progress.
CREATE TABLE system_jobs (
    namespace_id TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    running      INTEGER NOT NULL,
    -- unix nanoseconds when the job was created; lists show the newest first
    created      INTEGER NOT NULL,
    data         BLOB NOT NULL,
    PRIMARY KEY (namespace_id, job_id)
) WITHOUT ROWID;
