-- 0021: a query's task is found by its query id through an index of its
-- own. A query answered or given up before a worker took its task deletes
-- the task by ref (delete_query); with no index on ref, that delete read
-- every row of tasks, so beside a backlog each query cost a scan of it.
-- Query tasks are few at any time: the partial index holds only them, and
-- the writes of every other task pass it by.
CREATE INDEX tasks_query_idx ON tasks (ref) WHERE kind = 'query';
