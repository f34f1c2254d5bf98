-- 0009: pause. A paused run keeps why, who and since when (and the request id
-- that paused it); the flag itself (executions.paused) exists since 0001.
ALTER TABLE executions ADD COLUMN pause_info jsonb;
