-- Jobs are claimed by one runner at a time: each claim (and each replacement of the job, a
-- stop say) adds one to epoch, and a runner's progress is written only while the epoch is
-- still the one its claim made, so a runner that lost its job writes nothing more to it.
ALTER TABLE system_jobs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
