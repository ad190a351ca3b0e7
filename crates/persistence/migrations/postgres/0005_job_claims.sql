-- The same column as migrations/sqlite/0005_job_claims.sql (see the comment there).
ALTER TABLE system_jobs ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
