-- Events that arrived while a workflow task was running, one row each, in arrival order
-- (seq). Written with the change that buffered them, read and deleted by the change that
-- appends them to history when the workflow task ends; a row never outlives its run's task.
CREATE TABLE buffered_events (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
