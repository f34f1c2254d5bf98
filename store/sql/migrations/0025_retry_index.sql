-- 0025: the workflow task retries waiting out a backoff, by namespace. A
-- worker new to a task queue makes those of the queue's runs due at once
-- (store/tasks.py, hurry_workflow_task_retries): a fixed worker deployed
-- after a bug runs them without waiting up to a minute, and this index keeps
-- that lookup off the namespace's other timers (100,000 sleeping runs).
CREATE INDEX timers_wt_retry_idx ON timers (namespace) WHERE kind = 'workflow_task_retry';
