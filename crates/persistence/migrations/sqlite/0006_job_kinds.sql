-- Jobs have kinds (batch operations, namespace deletions, schedules), each with its own ids:
-- a schedule may share its id with a batch job. SQLite cannot change a primary key in
-- place, so the table is rebuilt; rows of the system namespace were namespace deletions.
CREATE TABLE system_jobs_kinds (
    namespace_id TEXT NOT NULL,
    kind         TEXT NOT NULL DEFAULT 'batch',
    job_id       TEXT NOT NULL,
    running      INTEGER NOT NULL,
    created      INTEGER NOT NULL,
    data         BLOB NOT NULL,
    epoch        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace_id, kind, job_id)
) WITHOUT ROWID;
INSERT INTO system_jobs_kinds (namespace_id, kind, job_id, running, created, data, epoch)
    SELECT namespace_id,
           CASE WHEN namespace_id = 'chronicle-system' THEN 'namespace_deletion' ELSE 'batch' END,
           job_id, running, created, data, epoch
    FROM system_jobs;
DROP TABLE system_jobs;
ALTER TABLE system_jobs_kinds RENAME TO system_jobs;
