-- 0007: visibility. Custom search attributes are registered per namespace
-- (name -> type) and kept per run in executions.search_attributes, written in
-- the same transaction as the history they come from. The indexes keep the
-- list filters operators use off sequential scans at a million runs in a
-- namespace (chosen by EXPLAIN on a generated million, see ops/bench_visibility.py).
-- The execution row leaves room on its page so that the many updates a run
-- gets stay HOT (no index entry written) despite the extra indexes.

ALTER TABLE namespaces ADD COLUMN search_attributes jsonb NOT NULL DEFAULT '{}';
ALTER TABLE executions ADD COLUMN search_attributes jsonb NOT NULL DEFAULT '{}';
ALTER TABLE executions SET (fillfactor = 80);

CREATE INDEX executions_type_idx ON executions (namespace, workflow_type, start_time DESC);
CREATE INDEX executions_queue_idx ON executions (namespace, task_queue, start_time DESC);
CREATE INDEX executions_close_idx ON executions (namespace, close_time DESC)
    WHERE close_time IS NOT NULL;
CREATE INDEX executions_duration_idx ON executions (namespace, (close_time - start_time))
    WHERE close_time IS NOT NULL;
CREATE INDEX executions_run_idx ON executions (namespace, run_id);
CREATE INDEX executions_wid_prefix_idx ON executions (namespace, workflow_id text_pattern_ops);
CREATE INDEX executions_paused_idx ON executions (namespace, start_time DESC) WHERE paused;
CREATE INDEX executions_build_idx ON executions (namespace, build_id, start_time DESC)
    WHERE build_id IS NOT NULL;
CREATE INDEX executions_attrs_idx ON executions USING gin (search_attributes jsonb_path_ops);
