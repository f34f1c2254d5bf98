-- 0030: a workflow's cron schedule (Temporal's cron_schedule on a start), an
-- option of its whole chain as 0028's are: each run closes into the next one
-- at the next cron time. Set at a run's start and never changed, so the
-- upserts of a replicated row need not list it.
ALTER TABLE executions ADD COLUMN cron_schedule text;
