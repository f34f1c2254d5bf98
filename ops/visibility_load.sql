-- name: create_load_namespace
INSERT INTO namespaces (name, regions, active_region, failover_version, search_attributes)
VALUES ($1, $2, $3, 1, $4)
ON CONFLICT (name) DO UPDATE SET search_attributes = $4

-- name: load_runs
-- Runs $2..$3 of a generated namespace $1, each written by the store's own
-- write function (baton_write_run_v3) as a new run with its history, its
-- execution row, and its current-run entry: what a real start (and close)
-- writes, without a worker. 5% running, the rest closed; 20 types, 8 task
-- queues, starts spread over the 30 days before $4, custom attributes
-- CustomerId (Keyword, 100,000 values) and Amount (Int, 0-999).
SELECT count(baton_write_run_v3(
    $1, r.wid, r.rid,
    ARRAY[1, 2]::bigint[],
    ARRAY['WorkflowExecutionStarted', r.second_event]::text[],
    r.start, 1,
    ARRAY[jsonb_build_object('workflow_type', r.wtype, 'task_queue', r.queue, 'input', '[]'::jsonb,
                             'search_attributes', r.attrs, 'first_run_id', r.rid::text,
                             'task_timeout_s', 10, 'attempt', 1, 'memo', '{}'::jsonb),
          r.second_attrs]::jsonb[],
    '{}'::text[], '{}'::text[], '{}'::text[], '{}'::text[], '{}'::int[], '{}'::timestamptz[],
    '{}'::text[], '{}'::text[], '{}'::text[], '{}'::int[],
    '{}'::text[],
    r.status, false, 3, 1, r.close, NULL, r.wt_scheduled, NULL, 1, NULL, NULL, 0,
    NULL, NULL,
    true, '', false,
    '{}'::bigint[], false, '[]'::jsonb, true,
    false, false,
    '[]'::jsonb, 0, 0, 0,
    '{}'::text[], '{}'::text[],
    0, NULL, NULL,
    jsonb_build_object(
        'namespace', $1, 'workflow_id', r.wid, 'run_id', r.rid, 'workflow_type', r.wtype,
        'task_queue', r.queue, 'status', r.status, 'paused', false, 'next_event_id', 3,
        'last_write_version', 1, 'start_time', r.start, 'close_time', r.close,
        'first_run_id', r.rid, 'task_timeout_s', 10, 'memo', '{}'::jsonb,
        'wt_scheduled_event_id', r.wt_scheduled, 'wt_attempt', 1, 'last_completed_wt_started', 0,
        'pending_updates', false, 'buffered_seq', 0, 'buffered_flushed_seq', 0,
        'signal_count', 0, 'history_size_bytes', 0, 'search_attributes', r.attrs),
    NULL
))
FROM (
    SELECT g, 'load-' || g AS wid, md5($1 || '/' || g)::uuid AS rid,
           'Type' || (g % 20) AS wtype, 'queue-' || (g % 8) AS queue,
           s.status, s.start,
           CASE WHEN s.status = 'running' THEN NULL
                ELSE s.start + make_interval(secs => 1 + g % 600) END AS close,
           CASE WHEN s.status = 'running' THEN 2 END AS wt_scheduled,
           CASE s.status WHEN 'running' THEN 'WorkflowTaskScheduled'
                         WHEN 'failed' THEN 'WorkflowExecutionFailed'
                         WHEN 'terminated' THEN 'WorkflowExecutionTerminated'
                         ELSE 'WorkflowExecutionCompleted' END AS second_event,
           CASE s.status WHEN 'running' THEN jsonb_build_object('task_queue', 'queue-' || (g % 8))
                         WHEN 'failed' THEN jsonb_build_object('failure',
                              jsonb_build_object('message', 'generated', 'type', 'Generated'))
                         WHEN 'terminated' THEN jsonb_build_object('reason', 'generated')
                         ELSE jsonb_build_object('result', NULL) END AS second_attrs,
           jsonb_build_object('CustomerId', 'cust-' || (g % 100000), 'Amount', g % 1000) AS attrs
    FROM generate_series($2::bigint, $3::bigint) AS g
    CROSS JOIN LATERAL (
        SELECT CASE g % 20 WHEN 0 THEN 'running' WHEN 1 THEN 'failed'
                           WHEN 2 THEN 'terminated' ELSE 'completed' END AS status,
               $4::timestamptz - interval '30 days' + make_interval(secs => g * 2.592) AS start
    ) AS s
) AS r
