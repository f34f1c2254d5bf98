-- 0009: pause. A paused run keeps why, who and since when (and the request id
-- that paused it); the flag itself (executions.paused) exists since 0001.
ALTER TABLE executions ADD COLUMN pause_info jsonb;

-- An activity an operator paused (or whose retries ran out under a policy that
-- says pause): no new attempt starts until unpause; control keeps the reason,
-- who and since when, and a reset waiting for the running attempt to end.
ALTER TABLE activities ADD COLUMN paused boolean;
ALTER TABLE activities ADD COLUMN control jsonb;
