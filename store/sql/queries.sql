-- Named queries of the history store. Each follows a `-- name: NAME` line.

-- name: get_namespace
SELECT * FROM namespaces WHERE name = $1

-- name: list_namespaces
-- The namespaces this region ($1) is a region of: one taken out keeps its
-- copy (describe reads it) but is no longer one of this region's.
SELECT * FROM namespaces WHERE $1 = ANY(regions) ORDER BY name

-- name: insert_namespace
INSERT INTO namespaces (name, regions, active_region, failover_version, retention_days, description,
                        create_request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (name) DO NOTHING
RETURNING *

-- name: namespace_created_by
-- The namespace a create with this request id made (a retried create).
SELECT * FROM namespaces WHERE name = $1 AND create_request_id = $2

-- name: outbox_namespace
-- A namespace change travels to every other region of the namespace.
INSERT INTO outbox (namespace, workflow_id, run_id, first_event_id, last_event_id, version, kind)
SELECT name, '', '00000000-0000-0000-0000-000000000000', 0, 0, failover_version, 'namespace'
FROM namespaces WHERE name = $1 AND cardinality(regions) > 1

-- name: mark_waiting_inputs_held
-- The inputs waiting behind a started task that a promotion takes over (seqs
-- $4, which the old active region buffered under failover version $5) count
-- as applied here: a later message of that region carrying them again (a
-- re-ship, or its waiting inputs once deposed) applies only the others.
INSERT INTO replication_reapplied (namespace, workflow_id, run_id, event_id, version)
SELECT $1, $2, $3, -s, $5 FROM unnest($4::bigint[]) AS s
ON CONFLICT DO NOTHING

-- name: take_activity_progress_of_run
-- What a standby learnt of a run's activities, consumed by the promotion's rebuild.
DELETE FROM activity_progress WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
RETURNING scheduled_event_id, attempt, state, heartbeat_details, last_failure, scheduled_time

-- name: activity_progress_of_run
-- What a standby learnt of a run's activities, read (a describe there).
SELECT scheduled_event_id, attempt, state, heartbeat_details, last_failure, scheduled_time,
       updated_at
FROM activity_progress WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3

-- name: delete_activity_progress_of_run
DELETE FROM activity_progress WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3

-- name: lock_execution
-- One lock order everywhere: the namespace (its fence shared: a failover
-- takes it exclusively and waits for the writes in flight), then the run.
-- The CTE runs before the run's row is locked, and the fence's function
-- reads the namespace once the lock is granted, so a failover that committed
-- meanwhile is seen.
WITH n AS MATERIALIZED (
    SELECT (f.ns).name, (f.ns).regions, (f.ns).active_region, (f.ns).failover_version,
           (f.ns).state, (f.ns).retention_days, (f.ns).deployments, f.row_xmin
    FROM baton_namespace_shared_v1($1) f)
SELECT e.*, n.regions AS ns_regions, n.active_region AS ns_active_region,
       n.failover_version AS ns_failover_version, n.state AS ns_state,
       n.retention_days AS ns_retention_days, n.deployments AS ns_deployments,
       sq.queue IS NOT NULL AS ns_sticky_closed, n.row_xmin AS x_ns_xmin
FROM n JOIN executions e ON e.namespace = n.name
LEFT JOIN sticky_queues sq ON sq.namespace = e.namespace AND sq.queue = e.sticky_queue
WHERE e.workflow_id = $2 AND e.run_id = $3
FOR UPDATE OF e

-- name: lock_current_execution
WITH n AS MATERIALIZED (
    SELECT (f.ns).name, (f.ns).regions, (f.ns).active_region, (f.ns).failover_version,
           (f.ns).state, (f.ns).retention_days, (f.ns).deployments
    FROM baton_namespace_shared_v1($1) f)
SELECT e.*, n.regions AS ns_regions, n.active_region AS ns_active_region,
       n.failover_version AS ns_failover_version, n.state AS ns_state,
       n.retention_days AS ns_retention_days, n.deployments AS ns_deployments,
       sq.queue IS NOT NULL AS ns_sticky_closed
FROM n
JOIN current_executions c ON c.namespace = n.name AND c.workflow_id = $2
JOIN executions e ON e.namespace = c.namespace AND e.workflow_id = c.workflow_id AND e.run_id = c.run_id
LEFT JOIN sticky_queues sq ON sq.namespace = e.namespace AND sq.queue = e.sticky_queue
FOR UPDATE OF e

-- name: read_execution
-- A run and its namespace read without locks, with both rows' xmin: an
-- unlocked write (baton_write_run_v5) is refused if either changed since.
-- $4: an activity of the run (its scheduled event id) to read with it, or NULL.
SELECT e.*, n.regions AS ns_regions, n.active_region AS ns_active_region,
       n.failover_version AS ns_failover_version, n.state AS ns_state,
       n.retention_days AS ns_retention_days, n.deployments AS ns_deployments,
       sq.queue IS NOT NULL AS ns_sticky_closed,
       e.xmin::text::bigint AS x_run_xmin, n.xmin::text::bigint AS x_ns_xmin,
       a.attempt AS x_act_attempt, a.state AS x_act_state,
       a.started_identity AS x_act_started_identity, a.last_failure AS x_act_last_failure
FROM namespaces n JOIN executions e ON e.namespace = n.name
LEFT JOIN sticky_queues sq ON sq.namespace = e.namespace AND sq.queue = e.sticky_queue
LEFT JOIN activities a ON a.namespace = e.namespace AND a.workflow_id = e.workflow_id
    AND a.run_id = e.run_id AND a.scheduled_event_id = $4
WHERE n.name = $1 AND e.workflow_id = $2 AND e.run_id = $3

-- name: buffered_of_run
-- Inputs still waiting behind the run's started workflow task (read after
-- the run is locked), oldest first.
SELECT seq, event_type, attributes FROM buffered_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND seq > $4
ORDER BY seq

-- name: request_seen
-- The run a request id already acted on (a retried or re-applied request).
SELECT run_id, kind FROM request_ids WHERE namespace = $1 AND workflow_id = $2 AND request_id = $3

-- name: record_request
-- A request that found the run as it asked (a pause of a paused run, a cancel
-- of a run asked to cancel): its id is kept, so that its retry does nothing
-- either and answers as it did, whatever changed meanwhile.
INSERT INTO request_ids (namespace, workflow_id, request_id, run_id, kind)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING

-- name: signal_with_start_seen
-- Whether the run was opened by a signal-with-start of this request id (not a
-- plain start): its signal's event keeps the id (store/starts.py).
SELECT EXISTS (
    SELECT 1 FROM history_events
    WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
      AND event_type = 'WorkflowExecutionSignaled'
      AND attributes @> jsonb_build_object('with_start', $4::text))

-- name: reset_by_request
-- The run a reset with this request id made, by its history: a reset's request
-- id is in its ResetWorkflow task failure, which replicates, so a retry finds
-- it in every region. A later reset of that run copies the event into its own
-- run, before its own: a run's reset is its last ResetWorkflow task failure.
SELECT h.run_id, 'reset' AS kind FROM history_events h
WHERE h.namespace = $1 AND h.workflow_id = $2 AND h.event_type = 'WorkflowTaskFailed'
  AND h.attributes ->> 'request_id' = $3 AND h.attributes ? 'reset_from_run_id'
  AND NOT EXISTS (
    SELECT 1 FROM history_events l
    WHERE l.namespace = h.namespace AND l.workflow_id = h.workflow_id AND l.run_id = h.run_id
      AND l.event_id > h.event_id AND l.event_type = 'WorkflowTaskFailed'
      AND l.attributes ? 'reset_from_run_id')
LIMIT 1

-- name: reset_source
-- The run a reset run was reset from: its last ResetWorkflow task failure says
-- (the ones before it were copied from the run it was reset from).
SELECT attributes->>'reset_from_run_id' FROM history_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
  AND event_type = 'WorkflowTaskFailed' AND attributes ? 'reset_from_run_id'
ORDER BY event_id DESC LIMIT 1

-- name: lock_namespace_shared
SELECT (f.ns).* FROM baton_namespace_shared_v1($1) f

-- name: get_execution
SELECT * FROM executions WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3

-- name: first_run_of
-- the run that started the chain a run belongs to (a request meant for that chain)
SELECT first_run_id FROM executions WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3

-- name: get_current_execution
SELECT e.* FROM current_executions c
JOIN executions e ON e.namespace = c.namespace AND e.workflow_id = c.workflow_id AND e.run_id = c.run_id
WHERE c.namespace = $1 AND c.workflow_id = $2

-- name: insert_timers
INSERT INTO timers (namespace, workflow_id, run_id, kind, ref, attempt, fire_at)
SELECT $1, $2, $3, t.kind, t.ref, t.attempt, t.fire_at
FROM unnest($4::text[], $5::text[], $6::int[], $7::timestamptz[]) AS t(kind, ref, attempt, fire_at)

-- name: take_task
-- The oldest free task of a queue and whether the queue holds more
-- (baton_take_task_v1). $3 is true for an activity poll, false for a workflow
-- poll (workflow and query tasks).
SELECT * FROM baton_take_task_v1($1, $2, $3::boolean, $4::text)

-- name: take_workflow_task
-- A workflow poll's take (take_task's columns, prefixed t_) and, for a
-- workflow task, its run locked as lock_execution locks it (the namespace's
-- fence shared, then the run), in one round trip where they took two. A query
-- task locks nothing; a task whose run is gone comes with no run columns.
WITH t AS MATERIALIZED (SELECT * FROM baton_take_task_v1($1, $2, false, $3::text))
SELECT t.id AS t_id, t.kind AS t_kind, t.workflow_id AS t_workflow_id, t.run_id AS t_run_id,
       t.ref AS t_ref, t.attempt AS t_attempt, t.build_id AS t_build_id, t.more AS t_more, r.*
FROM t
LEFT JOIN LATERAL (
    SELECT e.*, n.regions AS ns_regions, n.active_region AS ns_active_region,
           n.failover_version AS ns_failover_version, n.state AS ns_state,
           n.retention_days AS ns_retention_days, n.deployments AS ns_deployments,
           sq.queue IS NOT NULL AS ns_sticky_closed, n.row_xmin AS x_ns_xmin
    FROM (SELECT (f.ns).name, (f.ns).regions, (f.ns).active_region,
                 (f.ns).failover_version, (f.ns).state, (f.ns).retention_days,
                 (f.ns).deployments, f.row_xmin
          FROM baton_namespace_shared_v1($1) f WHERE t.kind <> 'query') n
    JOIN executions e ON e.namespace = n.name
    LEFT JOIN sticky_queues sq ON sq.namespace = e.namespace AND sq.queue = e.sticky_queue
    WHERE e.workflow_id = t.workflow_id AND e.run_id = t.run_id
    FOR UPDATE OF e) r ON true

-- name: queue_has_task
-- Whether the queue holds a task take_task could take, without taking it
-- (baton_queue_has_task_v1): one round trip where an empty take costs three.
SELECT baton_queue_has_task_v1($1, $2, $3::boolean, $4::text)

-- name: workflow_task_view
-- The events and pending updates a workflow task carries, built as JSON by
-- the database in one round trip.
SELECT
  (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'event_id', h.event_id, 'event_type', h.event_type,
        'event_time', to_char(h.event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
        'version', h.version, 'attributes', h.attributes) ORDER BY h.event_id), '[]'::jsonb)
   FROM history_events h
   WHERE h.namespace = $1 AND h.workflow_id = $2 AND h.run_id = $3 AND h.event_id >= $4) AS events,
  (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'update_id', u.update_id, 'name', u.name, 'input', u.input) ORDER BY u.created_at),
        '[]'::jsonb)
   FROM workflow_updates u
   WHERE u.namespace = $1 AND u.workflow_id = $2 AND u.run_id = $3
     AND u.state = 'requested') AS updates,
  (SELECT h.version FROM history_events h
   WHERE h.namespace = $1 AND h.workflow_id = $2 AND h.run_id = $3
     AND h.event_id = $4 - 1) AS previous_version

-- name: event_version
-- The failover version one history event was written under.
SELECT version FROM history_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND event_id = $4

-- name: start_read
-- A start's namespace, its workflow id's current run and the run a request id
-- started, read without locks; the new run's write (baton_write_run_v5) is
-- refused if any of them changed since.
SELECT n.*, n.xmin::text::bigint AS x_ns_xmin,
  (SELECT r.run_id FROM request_ids r
   WHERE r.namespace = $1 AND r.workflow_id = $2 AND r.request_id = $3) AS request_run_id,
  c.run_id AS current_run_id, c.status AS current_status
FROM namespaces n
LEFT JOIN current_executions c ON c.namespace = n.name AND c.workflow_id = $2
WHERE n.name = $1

-- name: start_checks
-- Serialise starts of one workflow id, then read what the reuse policy needs
-- (after the lock: see baton_start_checks_v1).
SELECT * FROM baton_start_checks_v1($1, $2, $3)

-- name: cancel_request_of_run
-- The first cancel request a run recorded, with its reason (no row: none yet).
SELECT event_id, attributes->>'reason' AS reason FROM history_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
  AND event_type = 'WorkflowExecutionCancelRequested'
ORDER BY event_id
LIMIT 1

-- name: history_from
SELECT event_id, event_type, event_time, version, attributes FROM history_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND event_id >= $4
ORDER BY event_id
LIMIT $5

-- name: history_json
-- A page of history as JSON text built by PostgreSQL: a long history goes
-- to the client without a Python object per event on the server. Joined as
-- text (a third cheaper than json_agg of json_build_object): the numbers and
-- the time need no quoting rules, the type goes through to_json.
SELECT '[' || coalesce(string_agg(
        '{"event_id":' || h.event_id
        || ',"event_type":' || to_json(h.event_type)::text
        || ',"event_time":"'
        || to_char(h.event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
        || '","version":' || h.version
        || ',"attributes":' || h.attributes::text || '}',
        ',' ORDER BY h.event_id), '') || ']' AS events,
    count(*) AS n
FROM (SELECT event_id, event_type, event_time, version, attributes FROM history_events
      WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND event_id >= $4
      ORDER BY event_id
      LIMIT $5) h

-- name: pending_updates
SELECT update_id, name, input FROM workflow_updates
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND state = 'requested'
ORDER BY created_at

-- name: updates_in_flight
SELECT count(*) FROM workflow_updates
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND state IN ('requested', 'accepted')

-- name: get_update
-- Update ids are deduplicated per run: the same id in a later run is a new update.
SELECT * FROM workflow_updates
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $4 AND update_id = $3

-- name: update_accepted
-- Whether the run's history holds the update's acceptance (a run that closed
-- with it unfinished marks it rejected like one it never took).
SELECT EXISTS (
    SELECT 1 FROM history_events
    WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
      AND event_type = 'WorkflowExecutionUpdateAccepted' AND attributes->>'update_id' = $4)

-- name: insert_update
INSERT INTO workflow_updates (namespace, workflow_id, update_id, run_id, name, input, state)
VALUES ($1, $2, $3, $4, $5, $6, 'requested')

-- name: insert_reset_update
-- A reset's new run: an update requested again ('requested') or one its kept
-- history accepted and its code completes anew ('accepted').
INSERT INTO workflow_updates (namespace, workflow_id, update_id, run_id, name, input, state)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING

-- name: set_update_state
UPDATE workflow_updates SET state = $4, result = $5, failure = $6
WHERE namespace = $1 AND workflow_id = $2 AND update_id = $3 AND run_id = $7
RETURNING update_id

-- name: complete_update
-- An update the run's history shows accepted completes whatever this region
-- recorded of it (a region that took the namespace over derives its rows
-- from history, but a completion never depends on that).
INSERT INTO workflow_updates AS u (namespace, workflow_id, update_id, run_id, name, input, state,
                                   result, failure)
VALUES ($1, $2, $3, $4, '', '[]', 'completed', $5, $6)
ON CONFLICT (namespace, workflow_id, run_id, update_id) DO UPDATE
SET state = 'completed', result = EXCLUDED.result, failure = EXCLUDED.failure

-- name: notify_update
SELECT pg_notify('baton_updates_v1', $1)

-- name: notify_history
SELECT pg_notify('baton_history_v1', $1)

-- name: lock_activity
SELECT * FROM activities
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND scheduled_event_id = $4
FOR UPDATE

-- name: lock_activity_by_id
SELECT * FROM activities
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND activity_id = $4
FOR UPDATE

-- name: start_activity
-- Only while the namespace is active here: its fence held shared makes a
-- handover wait for this start (and a start after it see the handover).
-- In a namespace with deployments the run is held too, before the activity
-- (FOR KEY SHARE: an override, which locks the run for update, is waited for,
-- and so is every other write of the run, lock_execution being FOR UPDATE
-- too), and its routing comes back as it is once held (run_*): the take
-- checks that the task still routes to its poller. The held run's status and
-- pause flag are the ones that count: the run as the statement's snapshot saw
-- it (e) predates the wait, so a pause or close committed meanwhile is in r only.
WITH n AS MATERIALIZED (
    SELECT (f.ns).name, (f.ns).failover_version, (f.ns).deployments
    FROM baton_namespace_shared_v1($1) f
    WHERE (f.ns).active_region = $8 AND (f.ns).state = 'active'),
r AS MATERIALIZED (
    SELECT x.workflow_id, x.task_queue, x.deployment, x.build_id, x.versioning,
           x.status, x.paused
    FROM executions x
    WHERE x.namespace = (SELECT n.name FROM n WHERE n.deployments <> '{}'::jsonb)
      AND x.workflow_id = $2 AND x.run_id = $3
    FOR KEY SHARE)
UPDATE activities a SET state = 'started', started_time = $6, started_identity = $7
FROM executions e, n LEFT JOIN r ON true
WHERE a.namespace = $1 AND a.workflow_id = $2 AND a.run_id = $3 AND a.scheduled_event_id = $4
  AND a.attempt = $5 AND a.state = 'scheduled'
  AND e.namespace = a.namespace AND e.workflow_id = a.workflow_id AND e.run_id = a.run_id
  AND e.status = 'running' AND NOT e.paused AND NOT coalesce(a.paused, false)
  AND (r.workflow_id IS NULL OR (r.status = 'running' AND NOT r.paused))
  AND n.name = a.namespace
RETURNING a.*, e.workflow_type, n.failover_version AS ns_failover_version,
          n.deployments AS ns_deployments, r.workflow_id IS NOT NULL AS run_held,
          r.task_queue AS run_task_queue, r.deployment AS run_deployment,
          r.build_id AS run_build_id, r.versioning AS run_versioning

-- name: requeue_activity
-- A started attempt a take must not keep (the run routes its task to another
-- version now): scheduled again, its task for version $7 on queue $6.
WITH a AS (
    UPDATE activities SET state = 'scheduled', started_time = NULL, started_identity = NULL
    WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND scheduled_event_id = $4
      AND attempt = $5 AND state = 'started'
    RETURNING namespace)
INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, ref, attempt, build_id)
SELECT $1, $6, 'activity', $2, $3, $4::bigint::text, $5, $7 FROM a

-- name: delete_activity_timers
DELETE FROM timers
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND kind LIKE 'activity\_%' AND ref = $4

-- name: retry_activity
-- $7: the next attempt's number (1 after a reset)
UPDATE activities SET state = 'scheduled', attempt = $7, scheduled_time = $5,
    started_time = NULL, started_identity = NULL, last_failure = $6
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND scheduled_event_id = $4

-- name: heartbeat_activity
-- Accepted only while the namespace is active here under the token's version
-- (the fence shared: a handover waits for it, and refuses it after the drain).
WITH n AS MATERIALIZED (
    SELECT (f.ns).name FROM baton_namespace_shared_v1($1) f
    WHERE (f.ns).failover_version = $8 AND (f.ns).active_region = $9
      AND (f.ns).state = 'active')
UPDATE activities a
SET heartbeat_details = COALESCE($6, heartbeat_details), last_heartbeat_time = $7
FROM n
WHERE a.namespace = n.name AND a.workflow_id = $2 AND a.run_id = $3
  AND a.scheduled_event_id = $4 AND a.attempt = $5 AND a.state = 'started'
RETURNING a.cancel_requested, coalesce(a.paused, false) AS paused

-- name: request_cancel_activity
UPDATE activities SET cancel_requested = true
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND scheduled_event_id = $4

-- name: pending_activities
SELECT * FROM activities WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
ORDER BY scheduled_event_id

-- name: pending_user_timers
SELECT ref AS timer_id, fire_at FROM timers
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND kind = 'user'
ORDER BY fire_at

-- name: last_workflow_task_end
-- the latest WorkflowTaskFailed or -TimedOut of a run: why its next attempt comes
-- (and, on a standby, when: the retry is due a backoff after it)
SELECT event_id, event_type, event_time, attributes->'failure' AS failure,
       attributes->>'cause' AS cause
FROM history_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
  AND event_type IN ('WorkflowTaskFailed', 'WorkflowTaskTimedOut')
ORDER BY event_id DESC
LIMIT 1

-- name: workflow_task_retry_at
SELECT min(fire_at) FROM timers
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND kind = 'workflow_task_retry'

-- name: insert_query
INSERT INTO queries (id, namespace, workflow_id, run_id, name, input) VALUES ($1, $2, $3, $4, $5, $6)

-- name: insert_query_task
-- $6: the version that ran the run's last workflow task (it can replay it)
INSERT INTO tasks (namespace, workflow_id, run_id, kind, task_queue, ref, build_id)
VALUES ($1, $2, $3, 'query', $4, $5, $6)

-- name: get_query
SELECT * FROM queries WHERE id = $1

-- name: answer_query
UPDATE queries SET state = 'answered', result = $2, failure = $3
WHERE id = $1 AND state = 'pending'
RETURNING namespace

-- name: notify_query
SELECT pg_notify('baton_queries_v1', $1)

-- name: delete_query
WITH t AS (DELETE FROM tasks WHERE kind = 'query' AND ref = $1::uuid::text)
DELETE FROM queries WHERE id = $1::uuid

-- name: due_timers
SELECT t.id, t.namespace, t.workflow_id, t.run_id FROM timers t
JOIN namespaces n ON n.name = t.namespace
WHERE t.fire_at <= $1 AND n.active_region = $3 AND n.state = 'active'
ORDER BY t.fire_at LIMIT $2

-- name: next_timer
SELECT min(t.fire_at) FROM timers t JOIN namespaces n ON n.name = t.namespace
WHERE n.active_region = $1 AND n.state = 'active'

-- name: move_sticky_task
-- A workflow task no poller of the sticky queue took in time moves to the
-- run's own task queue (a poll that holds the row keeps it).
-- (delete and insert: the insert wakes that queue's pollers). $5 NULL: the
-- sticky queue was closed, and the run no longer names it; a task that landed
-- on it as it closed (after the close moved its tasks) is on no other queue.
WITH moved AS (
    DELETE FROM tasks
    WHERE id IN (SELECT id FROM tasks
                 WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND kind = 'workflow'
                   AND ref = $4 AND task_queue = coalesce($5, task_queue) AND task_queue <> $6
                 FOR UPDATE SKIP LOCKED)
    RETURNING *)
INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, ref, attempt, build_id)
SELECT namespace, $6, kind, workflow_id, run_id, ref, attempt, build_id FROM moved

-- name: hurry_workflow_task_retries
-- A worker new to task queue $2 polls: the workflow task retries of the
-- queue's runs that wait out a backoff are due at $3 (now). Rows another
-- transaction holds are left as they are: no wait, and no lock taken before
-- a run's (the order every writer keeps). Returns how many moved.
WITH due AS (
    SELECT t.id FROM timers t
    JOIN executions e ON e.namespace = t.namespace AND e.workflow_id = t.workflow_id
                     AND e.run_id = t.run_id
    WHERE t.namespace = $1 AND t.kind = 'workflow_task_retry' AND t.fire_at > $3
      AND e.task_queue = $2
    FOR UPDATE OF t SKIP LOCKED
), moved AS (
    UPDATE timers SET fire_at = $3 FROM due WHERE timers.id = due.id RETURNING 1
)
SELECT count(*) FROM moved

-- name: take_timer
-- Taken once the run is locked (the lock order of every writer).
DELETE FROM timers WHERE id = $1 RETURNING *

-- name: list_executions
SELECT * FROM executions
WHERE namespace = $1
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR workflow_type = $3)
  AND ($4::text IS NULL OR task_queue = $4)
  AND ($5::timestamptz IS NULL OR start_time >= $5)
  AND ($6::timestamptz IS NULL OR start_time < $6)
  AND ($7::text IS NULL OR workflow_id LIKE $7)
  AND ($8::timestamptz IS NULL OR (start_time, workflow_id, run_id) < ($8, $9, $10))
ORDER BY start_time DESC, workflow_id DESC, run_id DESC
LIMIT $11

-- name: count_executions
SELECT status, count(*) AS n FROM executions WHERE namespace = $1 GROUP BY status

-- name: write_run_v5
-- A run's write (store/run_write.py), also checked against a remembered
-- activity ($58, its xmin $59) and sticky queue ($60) unless those are NULL;
-- returns the view, the run's new xmin and size.
SELECT * FROM baton_write_run_v5($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
    $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32,
    $33, $34, $35, $36, $37, $38, $39, $40, $41, $42, $43, $44, $45, $46, $47, $48, $49, $50,
    $51, $52, $53, $54, $55, $56, $57, $58, $59, $60)

-- name: open_runs
SELECT workflow_id, run_id FROM executions WHERE namespace = $1 AND status = 'running'
ORDER BY workflow_id, run_id

-- name: move_namespace
-- The namespace moves to region $2 under failover version $3. This region
-- drops any pending work it held (tasks, timers, activity rows): as the new
-- active region it rebuilds them from history, as a standby it keeps none.
-- Nothing is dropped unless the namespace really moves (a data-modifying CTE
-- runs whatever the main statement matches, hence the EXISTS guards).
-- Task rows a poll holds are skipped (the poll then finds the namespace
-- moved and takes nothing); requested updates that no workflow task took
-- yet go too: their callers learn the move and retry in the new region.
-- The fence comes first, before the row, as for every change of a namespace:
-- the row's trigger takes it too, but only once the row is locked, and a
-- transaction holding the fence (an applier) that then needs the row would
-- wait for this one while this one waited for it. Its callers take the fence
-- in a statement before this one (replication.failover.move_namespace_here):
-- the deletes below read this statement's snapshot, taken before any wait
-- here, and would miss the rows of writes that committed meanwhile.
WITH fence AS MATERIALIZED (SELECT baton_namespace_exclusive_v1($1)), moved AS (
    UPDATE namespaces SET active_region = $2, failover_version = $3, state = 'active',
        updated_at = now()
    FROM fence
    WHERE name = $1 AND failover_version < $3
    RETURNING name
), ta AS (DELETE FROM tasks WHERE id IN (
        SELECT id FROM tasks WHERE namespace = $1 AND EXISTS (SELECT 1 FROM moved)
        FOR UPDATE SKIP LOCKED)),
   ti AS (DELETE FROM timers WHERE namespace = $1 AND EXISTS (SELECT 1 FROM moved)),
   ac AS (DELETE FROM activities WHERE namespace = $1 AND EXISTS (SELECT 1 FROM moved)),
   up AS (DELETE FROM workflow_updates
          WHERE namespace = $1 AND state = 'requested' AND EXISTS (SELECT 1 FROM moved))
SELECT name FROM moved

-- name: set_namespace_state
WITH fence AS MATERIALIZED (SELECT baton_namespace_exclusive_v1($1))
UPDATE namespaces SET state = $3, updated_at = now() FROM fence
WHERE name = $1 AND active_region = $2
RETURNING failover_version

-- name: try_advisory_lock
SELECT pg_try_advisory_lock($1)

-- name: metrics_executions
SELECT namespace, status, count(*) AS n FROM executions GROUP BY namespace, status

-- name: metrics_tasks
SELECT namespace, kind, count(*) AS n FROM tasks GROUP BY namespace, kind

-- name: metrics_timers
SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(fire_at)), 0) AS overdue_s
FROM timers

-- name: metrics_outbox
SELECT namespace, count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age_s
FROM outbox GROUP BY namespace

-- name: metrics_replication
SELECT source_region, sum(next_offset) AS applied_offsets,
       extract(epoch FROM now() - max(last_source_time)) AS since_last_applied_s
FROM replication_progress GROUP BY source_region

-- name: metrics_dead_letters
SELECT source_region, count(*) AS n FROM replication_dlq GROUP BY source_region

-- name: metrics_conflicts
SELECT namespace, kind, count(*) AS n FROM replication_conflicts GROUP BY namespace, kind

-- name: metrics_namespaces
SELECT name, failover_version, active_region, state FROM namespaces

-- name: expired_runs
-- Closed runs past their namespace's retention, oldest first.
SELECT e.namespace, e.workflow_id, e.run_id FROM executions e
JOIN namespaces n ON n.name = e.namespace
WHERE e.close_time IS NOT NULL
  AND e.close_time < now() - make_interval(days => n.retention_days)
ORDER BY e.close_time
LIMIT $1

-- name: delete_runs
-- Everything of the given runs: history, updates, inputs, progress, the row.
WITH keys AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[]) AS k(ns, wid, rid)
), h AS (
    DELETE FROM history_events t USING keys
    WHERE t.namespace = keys.ns AND t.workflow_id = keys.wid AND t.run_id = keys.rid
), u AS (
    DELETE FROM workflow_updates t USING keys
    WHERE t.namespace = keys.ns AND t.workflow_id = keys.wid AND t.run_id = keys.rid
), b AS (
    DELETE FROM buffered_events t USING keys
    WHERE t.namespace = keys.ns AND t.workflow_id = keys.wid AND t.run_id = keys.rid
), p AS (
    DELETE FROM activity_progress t USING keys
    WHERE t.namespace = keys.ns AND t.workflow_id = keys.wid AND t.run_id = keys.rid
), r AS (
    DELETE FROM replication_reapplied t USING keys
    WHERE t.namespace = keys.ns AND t.workflow_id = keys.wid AND t.run_id = keys.rid
), q AS (
    DELETE FROM request_ids t USING keys
    WHERE t.namespace = keys.ns AND t.workflow_id = keys.wid AND t.run_id = keys.rid
), c AS (
    DELETE FROM current_executions t USING keys
    WHERE t.namespace = keys.ns AND t.workflow_id = keys.wid AND t.run_id = keys.rid
)
DELETE FROM executions t USING keys
WHERE t.namespace = keys.ns AND t.workflow_id = keys.wid AND t.run_id = keys.rid
  AND t.close_time IS NOT NULL

-- name: expire_request_ids
DELETE FROM request_ids WHERE ctid = ANY(ARRAY(
    SELECT r.ctid FROM request_ids r JOIN namespaces n ON n.name = r.namespace
    WHERE r.created_at < now() - make_interval(days => n.retention_days)
    LIMIT $1))

-- name: expire_conflicts
DELETE FROM replication_conflicts WHERE ctid = ANY(ARRAY(
    SELECT c.ctid FROM replication_conflicts c JOIN namespaces n ON n.name = c.namespace
    WHERE c.created_at < now() - make_interval(days => n.retention_days)
    LIMIT $1))

-- name: expire_dead_letters
-- Dead letters of a namespace go with its retention; those of none after $2 days.
DELETE FROM replication_dlq WHERE ctid = ANY(ARRAY(
    SELECT d.ctid FROM replication_dlq d LEFT JOIN namespaces n ON n.name = d.namespace
    WHERE d.created_at < now() - make_interval(days => coalesce(n.retention_days, $2))
    LIMIT $1))

-- name: expire_queries
-- Queries whose caller is long gone (a server died while it waited).
DELETE FROM queries WHERE created_at < now() - interval '1 hour'

-- name: conflict_reapply_events
-- The clients' and operators' requests of one archived conflict (what the
-- winning side re-applies or lists), in the archive's order: the inputs that
-- waited behind a started workflow task (negative ids) come last, as they came.
SELECT coalesce(jsonb_agg(ev ORDER BY i), '[]')
FROM replication_conflicts c, jsonb_array_elements(c.events) WITH ORDINALITY AS x(ev, i)
WHERE c.namespace = $1 AND c.id = $2
  AND ev ->> 'event_type' IN ('WorkflowExecutionSignaled', 'WorkflowExecutionStarted',
      'WorkflowExecutionCancelRequested', 'WorkflowExecutionTerminated',
      'WorkflowExecutionUpdateAccepted', 'WorkflowExecutionUpdateCompleted',
      'WorkflowExecutionPaused', 'WorkflowExecutionUnpaused', 'WorkflowExecutionOptionsUpdated',
      'ActivityTaskPaused', 'ActivityTaskUnpaused', 'ActivityTaskReset')
GROUP BY c.id

-- name: close_sticky_queue
-- A worker that shuts down closes its sticky queue: its runs' next workflow
-- tasks go to their own task queues, and those waiting on it move there now.
WITH closed AS (
    INSERT INTO sticky_queues (namespace, queue) VALUES ($1, $2)
    ON CONFLICT DO NOTHING
), moved AS (
    DELETE FROM tasks
    WHERE id IN (SELECT id FROM tasks
                 WHERE namespace = $1 AND task_queue = $2 AND kind = 'workflow'
                 FOR UPDATE SKIP LOCKED)
    RETURNING *
)
INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, ref, attempt, build_id)
SELECT m.namespace, e.task_queue, m.kind, m.workflow_id, m.run_id, m.ref, m.attempt, m.build_id
FROM moved m JOIN executions e ON e.namespace = m.namespace AND e.workflow_id = m.workflow_id
                              AND e.run_id = m.run_id

-- name: expire_sticky_queues
DELETE FROM sticky_queues WHERE closed_at < now() - interval '1 day'

-- name: expire_version_pollers
-- Pollers gone for $1 days (stopped, or unseen since) but the last of each
-- version and task queue, which says when that version last polled it. Every
-- worker process adds rows of its own: without this each deploy's, each
-- restart's, stayed for ever (and in `deployment describe`).
DELETE FROM version_pollers p
WHERE greatest(p.last_seen, p.stopped_at) < now() - make_interval(days => $1)
  AND EXISTS (
    SELECT 1 FROM version_pollers q
    WHERE q.namespace = p.namespace AND q.deployment = p.deployment
      AND q.build_id = p.build_id AND q.task_queue = p.task_queue
      AND greatest(q.last_seen, q.stopped_at) > greatest(p.last_seen, p.stopped_at)
  )

-- name: batch_close_results
-- The closing events of completed batch job runs ($2, $3: workflow and run
-- ids side by side): their result says how the job ended (completed, stopped
-- or failed), which a run's status alone does not.
SELECT h.workflow_id, h.attributes FROM history_events h
JOIN unnest($2::text[], $3::uuid[]) AS r(workflow_id, run_id)
  ON h.workflow_id = r.workflow_id AND h.run_id = r.run_id
WHERE h.namespace = $1 AND h.event_type = 'WorkflowExecutionCompleted'

-- name: batch_start_inputs
-- The started events of batch job runs ($2, $3: workflow and run ids side by
-- side): their input is the job, with the operation as describe gives it.
SELECT h.workflow_id, h.attributes FROM history_events h
JOIN unnest($2::text[], $3::uuid[]) AS r(workflow_id, run_id)
  ON h.workflow_id = r.workflow_id AND h.run_id = r.run_id
WHERE h.namespace = $1 AND h.event_type = 'WorkflowExecutionStarted'

-- name: first_run_start_times
-- When the first runs of continue-as-new chains started ($2, $3: workflow
-- and first run ids side by side): a batch job started then.
SELECT e.workflow_id, e.start_time FROM executions e
JOIN unnest($2::text[], $3::uuid[]) AS r(workflow_id, run_id)
  ON e.workflow_id = r.workflow_id AND e.run_id = r.run_id
WHERE e.namespace = $1

-- name: list_by_query
-- A list page. {where}, {after} and {order} are filled only with fragments
-- store/visibility/query.py builds from its allow-list (values are $n
-- parameters); $1 is the namespace, the last parameter the page size.
SELECT e.*, {sort} AS _sort FROM executions e
WHERE e.namespace = $1 AND ({where}) AND ({after})
ORDER BY {order}
LIMIT {limit}

-- name: count_by_query
SELECT count(*) AS n FROM executions e WHERE e.namespace = $1 AND ({where})

-- name: count_by_query_grouped
-- The largest 1,000 groups; total counts the runs of every group (the window
-- sums before the LIMIT), so a count with more groups than that is whole.
SELECT {group} AS value, count(*) AS n, (sum(count(*)) OVER ())::bigint AS total
FROM executions e
WHERE e.namespace = $1 AND ({where})
GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1000

-- name: set_search_attributes
-- A run's custom attributes after an upsert, before the write that records
-- its event (the same transaction): the outbox row then carries them.
UPDATE executions SET search_attributes = $4
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3

-- name: set_memo
-- A run's memo after its workflow's upsert, in the transaction that records
-- the change's event.
UPDATE executions SET memo = $4
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3

-- name: set_namespace_search_attributes
WITH fence AS MATERIALIZED (SELECT baton_namespace_exclusive_v1($1))
UPDATE namespaces SET search_attributes = $2, updated_at = now() FROM fence WHERE name = $1
RETURNING namespaces.*

-- name: set_namespace_settings
-- `namespace update`: retention and description; replicated as any change.
WITH fence AS MATERIALIZED (SELECT baton_namespace_exclusive_v1($1))
UPDATE namespaces SET retention_days = $2, description = $3, updated_at = now()
FROM fence WHERE name = $1
RETURNING namespaces.*

-- name: lock_namespace_row
-- To change the namespace: its row, and its fence exclusively (the writes in
-- flight end first; the row's update would take the fence too, later).
WITH fence AS MATERIALIZED (SELECT baton_namespace_exclusive_v1($1))
SELECT n.* FROM fence, namespaces n WHERE n.name = $1 FOR UPDATE OF n

-- name: search_attribute_in_use
SELECT EXISTS (SELECT 1 FROM executions
               WHERE namespace = $1 AND search_attributes ? $2 AND close_time IS NULL)

-- name: restore_event_times
-- A reset run's copied events keep the times they had in the run they came from.
UPDATE history_events n SET event_time = o.event_time
FROM history_events o
WHERE n.namespace = $1 AND n.workflow_id = $2 AND n.run_id = $3 AND n.event_id <= $5
  AND o.namespace = $1 AND o.workflow_id = $2 AND o.run_id = $4 AND o.event_id = n.event_id

-- name: namespaces_with_open_system_runs
-- Namespaces active in region $1 with an open system workflow (batch job):
-- one index probe per namespace (executions_type_idx).
SELECT n.name FROM namespaces n
WHERE n.active_region = $1 AND EXISTS (
    SELECT 1 FROM executions e
    WHERE e.namespace = n.name AND e.workflow_type = ANY($2::text[]) AND e.status = 'running')

-- name: upsert_schedule_stats
-- A schedule's counters as it last reported them (metrics).
INSERT INTO schedule_stats (namespace, schedule_id, counters, running, paused)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (namespace, schedule_id) DO UPDATE
SET counters = EXCLUDED.counters, running = EXCLUDED.running, paused = EXCLUDED.paused,
    updated_at = now()

-- name: current_status_of
-- Status and pause of the current runs of workflow ids $2 (a schedule's running actions).
SELECT e.workflow_id, e.status, e.paused FROM current_executions c
JOIN executions e ON e.namespace = c.namespace AND e.workflow_id = c.workflow_id AND e.run_id = c.run_id
WHERE c.namespace = $1 AND c.workflow_id = ANY($2::text[])

-- name: signal_of_request
-- The signal of request id $4 that run $3 of workflow $2 took (a schedule's
-- trigger): in its history, or still buffered behind a started workflow task
-- (one statement, so one snapshot: a flush moves it from one to the other).
SELECT attributes FROM history_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
  AND event_type = 'WorkflowExecutionSignaled' AND attributes->>'request_id' = $4
UNION ALL
SELECT attributes FROM buffered_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
  AND event_type = 'WorkflowExecutionSignaled' AND attributes->>'request_id' = $4
LIMIT 1

-- name: signal_of_request_any_run
-- signal_of_request in any run of workflow $2 (a signal a continue-as-new
-- carried to the next run).
SELECT attributes FROM history_events
WHERE namespace = $1 AND workflow_id = $2
  AND event_type = 'WorkflowExecutionSignaled' AND attributes->>'request_id' = $3
UNION ALL
SELECT attributes FROM buffered_events
WHERE namespace = $1 AND workflow_id = $2
  AND event_type = 'WorkflowExecutionSignaled' AND attributes->>'request_id' = $3
LIMIT 1

-- name: delete_schedule_stats
DELETE FROM schedule_stats WHERE namespace = $1 AND schedule_id = $2

-- name: metrics_schedules
-- The counters of the open schedules of namespaces active in region $1. A
-- region's stats are its own (not replicated): a schedule deleted while another
-- region was active left its row here, so only a running schedule workflow counts.
SELECT s.namespace, s.schedule_id, s.counters, s.running, s.paused
FROM schedule_stats s JOIN namespaces n ON n.name = s.namespace
JOIN current_executions c
  ON c.namespace = s.namespace AND c.workflow_id = 'schedule/' || s.schedule_id
JOIN executions e
  ON e.namespace = c.namespace AND e.workflow_id = c.workflow_id AND e.run_id = c.run_id
WHERE n.active_region = $1 AND e.status = 'running'

-- name: touch_poller
-- A versioned poller of this region (throttled per server process).
INSERT INTO version_pollers (namespace, deployment, build_id, task_queue, identity)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (namespace, deployment, build_id, task_queue, identity)
DO UPDATE SET last_seen = now(), stopped_at = NULL

-- name: pollers_stopped
-- A worker that stops was seen then: its last poll is written at most every
-- few seconds (store/deployments.py), so it may read older.
UPDATE version_pollers SET stopped_at = now(), last_seen = now()
WHERE namespace = $1 AND deployment = $2 AND build_id = $3 AND identity = $4

-- name: pollers_of_deployment
-- $3: seconds since its last poll within which a poller counts as live
SELECT build_id, task_queue, identity, first_seen, last_seen, stopped_at,
       stopped_at IS NULL AND last_seen > now() - make_interval(secs => $3) AS live
FROM version_pollers WHERE namespace = $1 AND deployment = $2
ORDER BY build_id, task_queue, identity

-- name: set_namespace_deployments
WITH fence AS MATERIALIZED (SELECT baton_namespace_exclusive_v1($1))
UPDATE namespaces SET deployments = $2, updated_at = now() FROM fence WHERE name = $1

-- name: waiting_on_versions
-- Per version of deployment $2 (its tag), the open runs with a task that
-- waits for a poller of it on a task queue none of its live pollers polls
-- ($3: 'tag|queue' of each live version and queue): a workflow task, or an
-- activity attempt that is due. A paused run waits for an unpause, and a
-- paused activity for its own, not for a poller (a poll drops their rows). A
-- workflow task on a worker's sticky queue counts on the run's own queue,
-- where it goes back to if that worker is gone. One scan for all versions.
SELECT t.build_id AS tag, count(DISTINCT (t.workflow_id, t.run_id)) AS runs
FROM tasks t
JOIN executions e ON e.namespace = t.namespace AND e.workflow_id = t.workflow_id
                 AND e.run_id = t.run_id
WHERE t.namespace = $1 AND starts_with(t.build_id, $2 || ':')
  AND t.kind IN ('workflow', 'activity')
  AND e.status = 'running' AND NOT e.paused
  AND t.build_id || '|' || CASE WHEN t.kind = 'workflow' THEN e.task_queue ELSE t.task_queue END
      <> ALL($3::text[])
  AND (t.kind = 'workflow' OR EXISTS (
      SELECT 1 FROM activities a
      WHERE a.namespace = t.namespace AND a.workflow_id = t.workflow_id
        AND a.run_id = t.run_id AND a.scheduled_event_id = t.ref::bigint
        AND a.state = 'scheduled' AND NOT coalesce(a.paused, false)))
GROUP BY t.build_id

-- name: pinned_on_version
-- Drainage, read from the runs themselves (executions_pinned_idx): the open
-- runs pinned to the version and when the last pinned run closed.
SELECT
  (SELECT count(*) FROM executions
   WHERE namespace = $1 AND deployment = $2 AND build_id = $3
     AND versioning_behavior = 'pinned' AND close_time IS NULL) AS open_pinned,
  (SELECT max(close_time) FROM executions
   WHERE namespace = $1 AND deployment = $2 AND build_id = $3
     AND versioning_behavior = 'pinned' AND close_time IS NOT NULL) AS last_close

-- name: last_left_version
-- When a pinned run last left build $3 open, moved off by an override
-- (update_versioning records it in the run's versioning under "left").
SELECT max((versioning -> 'left' ->> $3::text)::timestamptz) FROM executions
WHERE namespace = $1 AND deployment = $2 AND versioning -> 'left' ? $3::text

-- name: routable_tasks
-- Tasks waiting for a poller whose run routes in deployment $2 (its own, or
-- its task queue's among $3), or only those of one run ($4, $5).
SELECT t.id, t.kind, t.task_queue, t.build_id AS tag, e.workflow_id, e.task_queue AS run_queue,
       e.deployment, e.build_id, e.versioning, e.versioning_behavior
FROM tasks t
JOIN executions e ON e.namespace = t.namespace AND e.workflow_id = t.workflow_id
                 AND e.run_id = t.run_id
WHERE t.namespace = $1 AND t.kind IN ('workflow', 'activity')
  AND ($4::text IS NULL OR (t.workflow_id = $4 AND t.run_id = $5))
  AND ($2::text IS NULL OR e.deployment = $2
       OR (e.deployment IS NULL AND e.task_queue = ANY($3::text[])))
FOR UPDATE OF t SKIP LOCKED

-- name: retries_of_deployment
-- Workflow task retries waiting out a backoff (due after $4, now) of the runs
-- that route in deployment $2 (its own, or its task queue's among $3). Rows
-- another transaction holds are left as they are (a run's lock comes first).
SELECT t.id, e.workflow_id, e.task_queue, e.deployment, e.build_id, e.versioning,
       e.versioning_behavior
FROM timers t
JOIN executions e ON e.namespace = t.namespace AND e.workflow_id = t.workflow_id
                 AND e.run_id = t.run_id
WHERE t.namespace = $1 AND t.kind = 'workflow_task_retry' AND t.fire_at > $4
  AND (e.deployment = $2 OR (e.deployment IS NULL AND e.task_queue = ANY($3::text[])))
FOR UPDATE OF t SKIP LOCKED

-- name: hurry_timers
UPDATE timers SET fire_at = $2 WHERE id = ANY($1::bigint[])

-- name: retag_tasks
-- Re-inserted rather than updated, so the insert trigger wakes the pollers
-- of the version they now go to.
WITH d AS (DELETE FROM tasks WHERE id = ANY($1::bigint[]) RETURNING *)
INSERT INTO tasks (namespace, task_queue, kind, workflow_id, run_id, ref, attempt, build_id)
SELECT d.namespace, r.queue, d.kind, d.workflow_id, d.run_id, d.ref, d.attempt, r.tag
FROM d JOIN unnest($1::bigint[], $2::text[], $3::text[]) AS r(id, tag, queue) ON r.id = d.id

-- name: set_pause_info
-- Before the write that records the pause or unpause event (the same
-- transaction): the outbox row then carries it.
UPDATE executions SET pause_info = $4 WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3

-- name: dispatchable_activities
-- Activities of a run waiting for an attempt that is due (not a retry still
-- backing off): at unpause each gets its task again.
SELECT scheduled_event_id, task_queue, attempt FROM activities
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND state = 'scheduled'
  AND scheduled_time <= $4

-- name: activity_by_id
SELECT * FROM activities
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND activity_id = $4
FOR UPDATE

-- name: set_activity_control
-- $5 paused, $6 control, and for a reset $7 the attempt, $8 heartbeat details
-- kept (false: cleared), $9 when the next attempt is due
UPDATE activities SET paused = $5, control = $6,
    attempt = coalesce($7, attempt),
    heartbeat_details = CASE WHEN $8::boolean THEN heartbeat_details ELSE NULL END,
    scheduled_time = coalesce($9, scheduled_time)
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND scheduled_event_id = $4

-- name: notify_timers
-- Wake the timer loops of the region (the test clock moved).
SELECT pg_notify('baton_timers_v1', '0')

-- name: touch_queue_poller
-- A worker polling a task queue (versioned or not), for `task-queue describe`:
-- kept in version_pollers under the empty deployment, its kind as the build id
-- (no version has an empty deployment name). Throttled per server process;
-- the queue's rows not seen for a day go as one is written.
WITH gone AS (
    DELETE FROM version_pollers
    WHERE namespace = $1 AND deployment = '' AND build_id = $2 AND task_queue = $3
      AND last_seen < now() - interval '1 day'
)
INSERT INTO version_pollers (namespace, deployment, build_id, task_queue, identity)
VALUES ($1, '', $2, $3, $4)
ON CONFLICT (namespace, deployment, build_id, task_queue, identity)
DO UPDATE SET last_seen = now(), stopped_at = NULL

-- name: queue_pollers_stopped
UPDATE version_pollers SET stopped_at = now()
WHERE namespace = $1 AND deployment = '' AND identity = $2 AND stopped_at IS NULL

-- name: pollers_of_queue
-- $3: seconds within which a poller counts as live; $4: seconds within which
-- it is listed at all. The version it polls as: its latest versioned row.
SELECT q.build_id AS kind, q.identity, q.first_seen, q.last_seen, q.stopped_at,
       q.stopped_at IS NULL AND q.last_seen > now() - make_interval(secs => $3) AS live,
       v.deployment, v.build_id
FROM version_pollers q
LEFT JOIN LATERAL (
    SELECT deployment, build_id FROM version_pollers v
    WHERE v.namespace = q.namespace AND v.deployment <> '' AND v.task_queue = q.task_queue
      AND v.identity = q.identity
    ORDER BY v.last_seen DESC LIMIT 1
) v ON true
WHERE q.namespace = $1 AND q.deployment = '' AND q.build_id IN ('workflow', 'activity')
  AND q.task_queue = $2 AND q.last_seen > now() - make_interval(secs => $4)
ORDER BY q.last_seen DESC, q.identity, q.build_id

-- name: backlog_of_queue
-- What waits for a poller of the queue, per kind (the take's index leads
-- with the task queue).
SELECT kind, count(*) AS n, extract(epoch FROM now() - min(created_at))::float8 AS oldest_s
FROM tasks WHERE task_queue = $2 AND namespace = $1 AND kind IN ('workflow', 'activity')
GROUP BY kind

-- name: run_started_attributes
-- A run's started event (its first): what a retry of the run starts again.
SELECT attributes FROM history_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND event_id = 1

-- name: fill_chain_columns
-- On a promotion: a run's chain options, from its started event, in a row a
-- standby inserted before it knew them.
UPDATE executions
SET execution_timeout_s = $4, execution_expiration_time = $5, retry_policy = $6,
    cron_schedule = $7
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3

-- name: activity_attempt_by_id
-- the attempt of a run's activity named by its id ($3 the run, or NULL: the
-- workflow's current run), to hand its task token to an async completion
SELECT a.run_id, a.scheduled_event_id, a.attempt, a.state
FROM activities a
WHERE a.namespace = $1 AND a.workflow_id = $2 AND a.activity_id = $4
  AND a.run_id = COALESCE(
    $3::uuid,
    (SELECT c.run_id FROM current_executions c WHERE c.namespace = $1 AND c.workflow_id = $2)
  )

-- name: schedule_list_events
-- What a schedule list folds of each schedule run ($2, $3: workflow ids and
-- run ids): its start, its last report ($4: the report activity's type; the
-- snapshot describe folds too) and its signals (a few), not its whole history.
SELECT x.workflow_id, h.event_id, h.event_type, h.event_time, h.attributes
FROM unnest($2::text[], $3::uuid[]) AS x(workflow_id, run_id)
CROSS JOIN LATERAL (
    SELECT event_id, event_type, event_time, attributes FROM history_events
    WHERE namespace = $1 AND workflow_id = x.workflow_id AND run_id = x.run_id
      AND (event_id = 1 OR event_type = 'WorkflowExecutionSignaled' OR event_id = (
          SELECT r.event_id FROM history_events r
          WHERE r.namespace = $1 AND r.workflow_id = x.workflow_id AND r.run_id = x.run_id
            AND r.event_type = 'ActivityTaskScheduled' AND r.attributes->>'activity_type' = $4
          ORDER BY r.event_id DESC LIMIT 1))
) h
ORDER BY x.workflow_id, h.event_id

-- name: schedule_list_buffered
-- Signals still waiting behind each schedule run's started workflow task.
SELECT b.workflow_id, b.event_type, b.attributes
FROM unnest($2::text[], $3::uuid[]) AS x(workflow_id, run_id)
JOIN buffered_events b
  ON b.namespace = $1 AND b.workflow_id = x.workflow_id AND b.run_id = x.run_id
WHERE b.event_type = 'WorkflowExecutionSignaled'
ORDER BY b.workflow_id, b.seq
