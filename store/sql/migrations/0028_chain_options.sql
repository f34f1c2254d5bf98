-- 0028: options of a whole workflow chain (every run continue-as-new, a
-- retry or a reset gives the id), as in Temporal: the execution timeout, the
-- deadline it sets (a durable timer of each run of the chain) and the
-- workflow's retry policy. Each run's row holds them from its start and
-- never changes them, so the upserts of a replicated row need not list them.
ALTER TABLE executions ADD COLUMN execution_timeout_s double precision;
ALTER TABLE executions ADD COLUMN execution_expiration_time timestamptz;
ALTER TABLE executions ADD COLUMN retry_policy jsonb;
