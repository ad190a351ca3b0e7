-- The same change as migrations/sqlite/0006_job_kinds.sql (see the comment there).
ALTER TABLE system_jobs ADD COLUMN kind VARCHAR(32) CHARACTER SET ascii NOT NULL DEFAULT 'batch';
UPDATE system_jobs SET kind = 'namespace_deletion' WHERE namespace_id = 'chronicle-system';
ALTER TABLE system_jobs DROP PRIMARY KEY, ADD PRIMARY KEY (namespace_id, kind, job_id);
