-- 0015: a task take that stays one short index walk whatever its plan.
-- A workflow poll takes workflow and query tasks, and it said so with
-- kind = ANY('{workflow,query}'). That left (namespace, task_queue, kind,
-- build_id, id) unable to hand out rows in id order, so once PostgreSQL
-- settled on a generic plan for the prepared take, it walked the primary key
-- and filtered: a poll of a quiet queue, or an activity poll beside a backlog
-- of workflow tasks, read every row of every queue (20-35 ms with 100,000
-- rows). The take now says (kind = 'activity') = true or false, which this
-- index matches column for column, ids in order.
CREATE INDEX tasks_take_idx
    ON tasks (namespace, task_queue, (kind = 'activity'), (coalesce(build_id, '')), id);
DROP INDEX tasks_poll_idx;
