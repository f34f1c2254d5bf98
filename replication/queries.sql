-- Named queries of replication. Each follows a `-- name: NAME` line.

-- name: outbox_batch
-- Outbox rows of settled transactions (older than every running one). Rows
-- are deleted once shipped, so a row that commits late is shipped later, never
-- skipped; one workflow's rows keep their order (its writes serialise on the
-- execution row), and a batch that overtakes an earlier one of its workflow is
-- a gap the applier fills from the source region. A history batch carries
-- the run's execution row as its write left it (outbox.execution; the row as
-- it is now for rows written before that column existed); progress carries
-- its pending activities, and 'buffered' its waiting inputs, as they are now
-- (rows of other namespaces are only acknowledged, so nothing is built for
-- them). A conflict carries only the events the winning side re-applies or
-- lists (clients' and operators' requests): the archive itself stays here. The execution row is
-- read only for a row without one (a subquery by key, never a join the
-- planner may turn into a scan of every run).
-- The same statement acknowledges the previous round's shipped rows ($2):
-- deletes them and moves region $3's ack level to $4 (they are still seen
-- here, so they are left out). NULL $4: nothing to acknowledge.
WITH d AS (DELETE FROM outbox WHERE id = ANY($2::bigint[])),
     ack AS (
        INSERT INTO replication_ack (region, last_outbox_id, updated_at)
        SELECT $3, $4, now() WHERE $4::bigint IS NOT NULL
        ON CONFLICT (region) DO UPDATE
        SET last_outbox_id = greatest(replication_ack.last_outbox_id, EXCLUDED.last_outbox_id),
            updated_at = now())
SELECT o.id, o.kind, o.ref, o.namespace, o.workflow_id, o.run_id, o.first_event_id,
       o.last_event_id, o.version, o.created_at, r.replicated,
       CASE WHEN r.replicated AND o.kind = 'history' THEN
       (SELECT jsonb_agg(jsonb_build_object(
                'event_id', h.event_id, 'event_type', h.event_type, 'event_time', h.event_time,
                'version', h.version, 'attributes', h.attributes) ORDER BY h.event_id)
        FROM history_events h
        WHERE h.namespace = o.namespace AND h.workflow_id = o.workflow_id
          AND h.run_id = o.run_id
          AND h.event_id BETWEEN o.first_event_id AND o.last_event_id) END AS events,
       CASE WHEN r.replicated THEN coalesce(o.execution, (
           SELECT to_jsonb(e) FROM executions e
           WHERE e.namespace = o.namespace AND e.workflow_id = o.workflow_id
             AND e.run_id = o.run_id)) END AS execution,
       CASE WHEN r.replicated AND o.kind IN ('history', 'progress') THEN
       (SELECT jsonb_agg(jsonb_build_object(
                'scheduled_event_id', a.scheduled_event_id, 'attempt', a.attempt,
                'state', a.state, 'heartbeat_details', a.heartbeat_details,
                'last_failure', a.last_failure, 'scheduled_time', a.scheduled_time)
                ORDER BY a.scheduled_event_id)
        FROM activities a
        WHERE a.namespace = o.namespace AND a.workflow_id = o.workflow_id
          AND a.run_id = o.run_id) END AS activities,
       CASE WHEN r.replicated AND o.kind = 'buffered' THEN
       (SELECT jsonb_agg(jsonb_build_object(
                'seq', b.seq, 'event_type', b.event_type, 'attributes', b.attributes)
                ORDER BY b.seq)
        FROM buffered_events b
        WHERE b.namespace = o.namespace AND b.workflow_id = o.workflow_id
          AND b.run_id = o.run_id) END AS buffered,
       CASE WHEN r.replicated AND o.kind = 'conflict' THEN
       (SELECT to_jsonb(c) || jsonb_build_object('events', (
                  SELECT coalesce(jsonb_agg(ev ORDER BY i), '[]')
                  FROM jsonb_array_elements(c.events) WITH ORDINALITY AS x(ev, i)
                  WHERE ev->>'event_type' IN ('WorkflowExecutionSignaled',
                                              'WorkflowExecutionStarted',
                                              'WorkflowExecutionCancelRequested',
                                              'WorkflowExecutionTerminated',
                                              'WorkflowExecutionUpdateAccepted',
                                              'WorkflowExecutionUpdateCompleted',
                                              'WorkflowExecutionPaused',
                                              'WorkflowExecutionUnpaused',
                                              'WorkflowExecutionOptionsUpdated',
                                              'ActivityTaskPaused',
                                              'ActivityTaskUnpaused',
                                              'ActivityTaskReset')))
        FROM replication_conflicts c WHERE c.id = o.ref) END AS conflict,
       to_jsonb(n) - 'create_request_id' AS ns
FROM outbox o
JOIN namespaces n ON n.name = o.namespace
CROSS JOIN LATERAL (SELECT cardinality(n.regions) > 1 AS replicated) AS r
WHERE o.txid < pg_snapshot_xmin(pg_current_snapshot()) AND o.id <> ALL($2::bigint[])
ORDER BY o.id
LIMIT $1

-- name: outbox_waiting
-- What a round of the publisher left in the outbox: 'ready' if outbox_batch
-- can ship some now (the transaction that held them ended since it read),
-- 'held' if rows wait for an older transaction still running, NULL if empty.
-- (The rows outbox_batch reads: those of existing namespaces.)
SELECT CASE WHEN bool_or(o.txid < s.xmin) THEN 'ready' WHEN count(*) > 0 THEN 'held' END
FROM outbox o
JOIN namespaces n ON n.name = o.namespace
CROSS JOIN (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) s

-- name: set_ack_level
-- The shipped rows ($3) acknowledged (deleted, the ack level moved), and what
-- the round left in the outbox as outbox_waiting tells it: the statement
-- still sees the rows it deletes, so they are left out. (Used when no next
-- round came to carry the acknowledgement in its outbox_batch.)
WITH d AS (DELETE FROM outbox WHERE id = ANY($3::bigint[])),
     ack AS (
        INSERT INTO replication_ack (region, last_outbox_id, updated_at) VALUES ($1, $2, now())
        ON CONFLICT (region) DO UPDATE
        SET last_outbox_id = greatest(replication_ack.last_outbox_id, EXCLUDED.last_outbox_id),
            updated_at = now())
SELECT CASE WHEN bool_or(o.txid < s.xmin) THEN 'ready' WHEN count(*) > 0 THEN 'held' END
FROM outbox o
JOIN namespaces n ON n.name = o.namespace
CROSS JOIN (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) s
WHERE o.id <> ALL($3::bigint[])

-- name: progress
SELECT kafka_partition, next_offset, last_source_time FROM replication_progress
WHERE source_region = $1 AND topic = $2

-- name: lock_progress
-- The next offset a partition's applier holds, its row locked for the rest
-- of the apply transaction (none: the partition's first records).
SELECT next_offset FROM replication_progress
WHERE source_region = $1 AND topic = $2 AND kafka_partition = $3
FOR UPDATE

-- name: create_progress
INSERT INTO replication_progress (source_region, topic, kafka_partition, next_offset)
VALUES ($1, $2, $3, 0)
ON CONFLICT DO NOTHING

-- name: set_progress
INSERT INTO replication_progress (source_region, topic, kafka_partition, next_offset,
                                  last_source_time, updated_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (source_region, topic, kafka_partition) DO UPDATE
SET next_offset = greatest(replication_progress.next_offset, EXCLUDED.next_offset),
    last_source_time = coalesce(EXCLUDED.last_source_time, replication_progress.last_source_time),
    updated_at = now()

-- name: lock_local_execution
-- The run's next event id and the version of its last event.
SELECT e.next_event_id, e.buffered_flushed_seq,
       (SELECT h.version FROM history_events h
        WHERE h.namespace = e.namespace AND h.workflow_id = e.workflow_id
          AND h.run_id = e.run_id
        ORDER BY h.event_id DESC LIMIT 1) AS last_version
FROM executions e
WHERE e.namespace = $1 AND e.workflow_id = $2 AND e.run_id = $3
FOR UPDATE OF e

-- name: replace_namespace
-- Only a newer row wins: a higher failover version, or the same version
-- changed later (regions added or removed, handover state). The row keeps
-- the source's updated_at, its revision.
INSERT INTO namespaces SELECT * FROM jsonb_populate_record(NULL::namespaces,
    '{"search_attributes": {}, "deployments": {}}'::jsonb || $1::jsonb)
ON CONFLICT (name) DO UPDATE SET regions = EXCLUDED.regions,
    active_region = EXCLUDED.active_region, failover_version = EXCLUDED.failover_version,
    state = EXCLUDED.state, retention_days = EXCLUDED.retention_days,
    description = EXCLUDED.description, updated_at = EXCLUDED.updated_at,
    search_attributes = EXCLUDED.search_attributes, deployments = EXCLUDED.deployments
WHERE (namespaces.failover_version, namespaces.updated_at)
      < (EXCLUDED.failover_version, EXCLUDED.updated_at)

-- name: derive_updates
-- Updates a replicated batch accepted or completed, recorded as the active
-- region records them: a region that takes the namespace over then knows
-- every update in flight (a completion, a retried request by its id).
INSERT INTO workflow_updates AS u (namespace, workflow_id, update_id, run_id, name, input, state,
                                   result, failure)
SELECT $1, $2, e.attributes ->> 'update_id', $3,
       coalesce(max(e.attributes ->> 'name'), ''),
       coalesce((array_agg(e.attributes -> 'input') FILTER (
           WHERE e.event_type = 'WorkflowExecutionUpdateAccepted'))[1], '[]'),
       CASE WHEN bool_or(e.event_type = 'WorkflowExecutionUpdateCompleted') THEN 'completed'
            ELSE 'accepted' END,
       (array_agg(e.attributes -> 'result') FILTER (
           WHERE e.event_type = 'WorkflowExecutionUpdateCompleted'))[1],
       (array_agg(e.attributes -> 'failure') FILTER (
           WHERE e.event_type = 'WorkflowExecutionUpdateCompleted'))[1]
FROM jsonb_to_recordset($4::jsonb) AS e(event_type text, attributes jsonb)
WHERE e.event_type IN ('WorkflowExecutionUpdateAccepted', 'WorkflowExecutionUpdateCompleted')
GROUP BY e.attributes ->> 'update_id'
ON CONFLICT (namespace, workflow_id, run_id, update_id) DO UPDATE
SET state = CASE WHEN u.state = 'completed' THEN u.state ELSE EXCLUDED.state END,
    result = CASE WHEN u.state = 'completed' THEN u.result ELSE EXCLUDED.result END,
    failure = CASE WHEN u.state = 'completed' THEN u.failure ELSE EXCLUDED.failure END,
    name = CASE WHEN u.name = '' THEN EXCLUDED.name ELSE u.name END,
    input = CASE WHEN u.state = 'requested' OR u.input = '[]' THEN EXCLUDED.input
                 ELSE u.input END

-- name: derive_request_ids
-- Request ids of the starts, signals, cancels and terminates a batch carries.
INSERT INTO request_ids (namespace, workflow_id, request_id, run_id, kind)
SELECT $1, $2, e.attributes ->> 'request_id', $3,
       CASE e.event_type WHEN 'WorkflowExecutionStarted' THEN 'start'
                         WHEN 'WorkflowExecutionSignaled' THEN 'signal'
                         WHEN 'WorkflowExecutionCancelRequested' THEN 'cancel'
                         ELSE 'terminate' END
FROM jsonb_to_recordset($4::jsonb) AS e(event_type text, attributes jsonb)
WHERE e.event_type IN ('WorkflowExecutionStarted', 'WorkflowExecutionSignaled',
                       'WorkflowExecutionCancelRequested', 'WorkflowExecutionTerminated')
  AND coalesce(e.attributes ->> 'request_id', '') <> ''
ON CONFLICT DO NOTHING

-- name: apply_events
INSERT INTO history_events (namespace, workflow_id, run_id, event_id, event_type, event_time,
                            version, attributes)
SELECT $1, $2, $3, e.event_id, e.event_type, e.event_time, e.version, e.attributes
FROM jsonb_to_recordset($4::jsonb) AS e(event_id bigint, event_type text,
                                        event_time timestamptz, version bigint,
                                        attributes jsonb)

-- name: delete_execution
DELETE FROM executions WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3

-- name: upsert_execution_json
-- The execution row as the source region shipped it. An update in place,
-- never delete and insert: a concurrent locker of the row must still find it.
INSERT INTO executions SELECT * FROM jsonb_populate_record(NULL::executions,
    '{"search_attributes": {}}'::jsonb || $1::jsonb)
ON CONFLICT (namespace, workflow_id, run_id) DO UPDATE SET (
    workflow_type, task_queue, status, paused,
    next_event_id, last_write_version, start_time, close_time,
    request_id, first_run_id, continued_from_run_id, continued_to_run_id,
    task_timeout_s, run_timeout_s, memo, wt_scheduled_event_id,
    wt_started_event_id, wt_attempt, wt_started_at, wt_identity,
    last_completed_wt_started, pending_updates, result,
    failure, build_id, updated_at, buffered_seq, buffered_flushed_seq, signal_count,
    history_size_bytes, sticky_queue, sticky_timeout_s, search_attributes,
    deployment, versioning_behavior, versioning, pause_info
) = (
    EXCLUDED.workflow_type, EXCLUDED.task_queue, EXCLUDED.status, EXCLUDED.paused,
    EXCLUDED.next_event_id, EXCLUDED.last_write_version, EXCLUDED.start_time, EXCLUDED.close_time,
    EXCLUDED.request_id, EXCLUDED.first_run_id, EXCLUDED.continued_from_run_id, EXCLUDED.continued_to_run_id,
    EXCLUDED.task_timeout_s, EXCLUDED.run_timeout_s, EXCLUDED.memo, EXCLUDED.wt_scheduled_event_id,
    EXCLUDED.wt_started_event_id, EXCLUDED.wt_attempt, EXCLUDED.wt_started_at, EXCLUDED.wt_identity,
    EXCLUDED.last_completed_wt_started, EXCLUDED.pending_updates, EXCLUDED.result,
    EXCLUDED.failure, EXCLUDED.build_id, EXCLUDED.updated_at,
    greatest(executions.buffered_seq, EXCLUDED.buffered_seq), EXCLUDED.buffered_flushed_seq,
    EXCLUDED.signal_count, EXCLUDED.history_size_bytes, NULL, NULL,
    EXCLUDED.search_attributes,
    EXCLUDED.deployment, EXCLUDED.versioning_behavior, EXCLUDED.versioning,
    EXCLUDED.pause_info
)

-- name: replace_current
-- The current run only moves forward (by start time): batches of two runs of
-- one workflow may arrive in either order.
INSERT INTO current_executions AS c (namespace, workflow_id, run_id, status)
VALUES ($1, $2, $3, $4)
ON CONFLICT (namespace, workflow_id) DO UPDATE SET run_id = EXCLUDED.run_id,
    status = EXCLUDED.status
WHERE c.run_id = EXCLUDED.run_id
   OR (SELECT start_time FROM executions e
       WHERE e.namespace = c.namespace AND e.workflow_id = c.workflow_id
         AND e.run_id = c.run_id)
      <= (SELECT start_time FROM executions e
          WHERE e.namespace = EXCLUDED.namespace AND e.workflow_id = EXCLUDED.workflow_id
            AND e.run_id = EXCLUDED.run_id)
   OR NOT EXISTS (SELECT 1 FROM executions e
                  WHERE e.namespace = c.namespace AND e.workflow_id = c.workflow_id
                    AND e.run_id = c.run_id)

-- name: try_failover_lock
-- The session lock a graceful failover holds on the source region's database
-- from its handover to its end. A second failover of the namespace finds it
-- taken and stops; a handover whose failover died (the lock went with its
-- connection) can be taken over by a new one.
SELECT pg_try_advisory_lock(hashtextextended('baton-failover:' || $1, 0))

-- name: revert_handover
-- Only a namespace still in handover here goes back; a finished move stays.
WITH fence AS MATERIALIZED (SELECT baton_namespace_exclusive_v1($1))
UPDATE namespaces SET state = 'active', updated_at = now() FROM fence
WHERE name = $1 AND active_region = $2 AND state = 'handover'

-- name: notify_applied
-- Long-polls on a standby (history, result) wake for replicated events too.
SELECT pg_notify('baton_history_v1', $1), pg_notify('baton_closed_v1', $1) WHERE $2
UNION ALL
SELECT pg_notify('baton_history_v1', $1), NULL WHERE NOT $2

-- name: drop_pending_work
-- A region deposed by a higher failover version keeps no pending work (nor
-- updates no workflow task took: their callers retry where it moved).
WITH ta AS (DELETE FROM tasks WHERE id IN (
        SELECT id FROM tasks WHERE namespace = $1 FOR UPDATE SKIP LOCKED)),
     ti AS (DELETE FROM timers WHERE namespace = $1),
     ac AS (DELETE FROM activities WHERE namespace = $1),
     up AS (DELETE FROM workflow_updates WHERE namespace = $1 AND state = 'requested')
SELECT 1

-- name: drop_waiting_inputs
-- A standby's copies of the inputs waiting in the namespace's old active region.
DELETE FROM buffered_events WHERE namespace = $1

-- name: local_event_versions
SELECT event_id, version FROM history_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND event_id BETWEEN $4 AND $5
ORDER BY event_id

-- name: local_events_from
SELECT event_id, event_type, event_time, version, attributes FROM history_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND event_id >= $4
ORDER BY event_id

-- name: delete_events_from
DELETE FROM history_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND event_id >= $4

-- name: delete_run_work
-- The pending work and unshipped outbox rows of one run (its tail was archived).
WITH ta AS (DELETE FROM tasks WHERE id IN (
        SELECT id FROM tasks WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
        FOR UPDATE SKIP LOCKED)),
     ti AS (DELETE FROM timers WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3),
     ac AS (DELETE FROM activities WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3)
DELETE FROM outbox
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
  AND (kind IN ('progress', 'buffered') OR (kind = 'history' AND last_event_id >= $4))
RETURNING id

-- name: current_run
SELECT c.run_id, c.status, e.last_write_version FROM current_executions c
JOIN executions e ON e.namespace = c.namespace AND e.workflow_id = c.workflow_id
                 AND e.run_id = c.run_id
WHERE c.namespace = $1 AND c.workflow_id = $2
FOR UPDATE OF c

-- name: delete_current
DELETE FROM current_executions WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3

-- name: insert_conflict
INSERT INTO replication_conflicts (namespace, workflow_id, run_id, kind, source_region,
    first_event_id, last_event_id, losing_version, winning_version, events)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING id

-- name: set_conflict_reapplied
UPDATE replication_conflicts SET reapplied = $2 WHERE id = $1

-- name: outbox_conflict
INSERT INTO outbox (namespace, workflow_id, run_id, first_event_id, last_event_id, version,
                    kind, ref)
SELECT $1, $2, $3, $4, $5, $6, 'conflict', $7
FROM namespaces n WHERE n.name = $1 AND cardinality(n.regions) > 1

-- name: claim_reapply
INSERT INTO replication_reapplied (namespace, workflow_id, run_id, event_id, version)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING
RETURNING event_id

-- name: store_activity_progress
-- The run's pending activities as the active region has them now: others go,
-- these are written (keeping the details held here where the message had to
-- leave them behind for size).
WITH incoming AS (
    SELECT * FROM jsonb_to_recordset($4::jsonb) AS a(
        scheduled_event_id bigint, attempt int, state text, heartbeat_details jsonb,
        last_failure jsonb, scheduled_time timestamptz, details_dropped boolean)
), gone AS (
    DELETE FROM activity_progress p
    WHERE p.namespace = $1 AND p.workflow_id = $2 AND p.run_id = $3
      AND p.scheduled_event_id NOT IN (SELECT scheduled_event_id FROM incoming)
)
INSERT INTO activity_progress AS p (namespace, workflow_id, run_id, scheduled_event_id, attempt,
                                    state, heartbeat_details, last_failure, scheduled_time)
SELECT $1, $2, $3, a.scheduled_event_id, a.attempt, a.state, a.heartbeat_details,
       a.last_failure, a.scheduled_time
FROM incoming a
ON CONFLICT (namespace, workflow_id, run_id, scheduled_event_id) DO UPDATE
SET attempt = EXCLUDED.attempt, state = EXCLUDED.state, scheduled_time = EXCLUDED.scheduled_time,
    heartbeat_details = CASE WHEN (SELECT i.details_dropped FROM incoming i
                                   WHERE i.scheduled_event_id = p.scheduled_event_id)
                             THEN p.heartbeat_details ELSE EXCLUDED.heartbeat_details END,
    last_failure = CASE WHEN (SELECT i.details_dropped FROM incoming i
                              WHERE i.scheduled_event_id = p.scheduled_event_id)
                        THEN p.last_failure ELSE EXCLUDED.last_failure END,
    updated_at = now()

-- name: run_fields_from_history
-- A run's first event's attributes, its workflow's memo upserts in order and
-- its last event (for a row shipped without memo, result and failure).
SELECT (SELECT attributes FROM history_events
        WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND event_id = 1) AS started,
       (SELECT jsonb_agg(attributes -> 'upserted_memo' ORDER BY event_id) FROM history_events
        WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
          AND event_type = 'WorkflowPropertiesModified') AS memo_changes,
       l.event_type AS last_type, l.attributes AS last_attributes
FROM (SELECT event_type, attributes FROM history_events
      WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
      ORDER BY event_id DESC LIMIT 1) AS l

-- name: insert_dead_letter
INSERT INTO replication_dlq (source_region, topic, kafka_partition, kafka_offset, namespace,
                             workflow_id, message, error, attempts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (topic, kafka_partition, kafka_offset) DO UPDATE
SET error = EXCLUDED.error, attempts = replication_dlq.attempts + EXCLUDED.attempts

-- name: run_checksums
-- One checksum per run over every event's id, type, time, version and attributes.
SELECT workflow_id, run_id, count(*) AS events, max(event_id) AS last_event_id,
       md5(string_agg(event_id::text || ':' || event_type || ':'
                      || extract(epoch FROM event_time)::text || ':' || version::text || ':'
                      || attributes::text, '|' ORDER BY event_id)) AS checksum
FROM history_events
WHERE namespace = $1
GROUP BY workflow_id, run_id

-- name: list_conflicts
SELECT id, namespace, workflow_id, run_id, kind, source_region, first_event_id, last_event_id,
       losing_version, winning_version, jsonb_array_length(events) AS events, reapplied,
       created_at
FROM replication_conflicts
WHERE ($1::text IS NULL OR namespace = $1)
ORDER BY id
LIMIT $2

-- name: list_dead_letters
SELECT id, source_region, topic, kafka_partition, kafka_offset, namespace, workflow_id,
       message ->> 'type' AS type, error, attempts, created_at
FROM replication_dlq
ORDER BY id

-- name: get_dead_letter
SELECT * FROM replication_dlq WHERE id = $1 FOR UPDATE

-- name: get_dead_letter_row
SELECT * FROM replication_dlq WHERE id = $1

-- name: delete_dead_letter
DELETE FROM replication_dlq WHERE id = $1

-- name: purge_dead_letters
DELETE FROM replication_dlq WHERE ($1::bigint IS NULL OR id = $1) RETURNING id

-- name: backfill_row
SELECT * FROM namespace_backfills WHERE namespace = $1 AND region = $2 FOR UPDATE

-- name: backfill_runs_total
-- Runs a new region receives: every open one, and closed ones within retention.
SELECT count(*) FROM executions e JOIN namespaces n ON n.name = e.namespace
WHERE e.namespace = $1
  AND (e.status = 'running' OR e.close_time > now() - make_interval(days => n.retention_days))

-- name: insert_backfill
INSERT INTO namespace_backfills (namespace, region, state, total) VALUES ($1, $2, 'enqueueing', $3)
ON CONFLICT (namespace, region) DO NOTHING

-- name: add_namespace_region
WITH fence AS MATERIALIZED (SELECT baton_namespace_exclusive_v1($1))
UPDATE namespaces SET regions = array_append(regions, $2), updated_at = now() FROM fence
WHERE name = $1 AND NOT ($2 = ANY(regions))
RETURNING regions

-- name: remove_namespace_region
WITH fence AS MATERIALIZED (SELECT baton_namespace_exclusive_v1($1))
UPDATE namespaces SET regions = array_remove(regions, $2), updated_at = now() FROM fence
WHERE name = $1 AND $2 = ANY(regions) AND active_region <> $2
RETURNING regions

-- name: enqueue_backfill_chunk
-- The next runs after the cursor, as history batches of their whole history
-- on this region's outbox (the same stream as live writes). Returns how many
-- runs it took and the last one (the next cursor).
WITH runs AS (
    SELECT e.workflow_id, e.run_id, e.next_event_id, e.last_write_version
    FROM executions e JOIN namespaces n ON n.name = e.namespace
    WHERE e.namespace = $1 AND (e.workflow_id, e.run_id) > ($2, $3)
      AND (e.status = 'running'
           OR e.close_time > now() - make_interval(days => n.retention_days))
    ORDER BY e.workflow_id, e.run_id
    LIMIT $4
), ins AS (
    INSERT INTO outbox (namespace, workflow_id, run_id, first_event_id, last_event_id, version)
    SELECT $1, workflow_id, run_id, 1, next_event_id - 1, last_write_version
    FROM runs WHERE next_event_id > 1
)
SELECT count(*) AS runs,
       (array_agg(workflow_id ORDER BY workflow_id DESC, run_id DESC))[1] AS last_workflow_id,
       (array_agg(run_id ORDER BY workflow_id DESC, run_id DESC))[1] AS last_run_id
FROM runs

-- name: advance_backfill
UPDATE namespace_backfills SET cursor_workflow_id = $3, cursor_run_id = $4,
    enqueued = enqueued + $5, updated_at = now()
WHERE namespace = $1 AND region = $2

-- name: set_backfill_state
UPDATE namespace_backfills SET state = $3, updated_at = now()
WHERE namespace = $1 AND region = $2

-- name: count_runs
SELECT count(*) FROM executions WHERE namespace = $1

-- name: delete_backfill
DELETE FROM namespace_backfills WHERE namespace = $1 AND region = $2

-- name: dead_letter_failed_again
UPDATE replication_dlq SET attempts = attempts + 1, error = $2 WHERE id = $1

-- name: outbox_backlog_of
SELECT count(*) FROM outbox WHERE ($1::text IS NULL OR namespace = $1)

-- name: local_namespace_full
SELECT regions, active_region, failover_version, state, retention_days, description,
       search_attributes, deployments, updated_at
FROM namespaces WHERE name = $1

-- name: lock_namespaces_for_apply
-- Appliers hold their namespaces shared for a transaction; a promotion holds
-- its namespace exclusively, so its rebuild never interleaves with an applier
-- transaction locking the same runs in another order. A namespace whose row
-- a message carries newer than the one here ($2, $3: each message's failover
-- version and updated_at, NULL if none) is held exclusively from the start:
-- replacing the row takes the lock exclusively, and two transactions that
-- both held it shared would each wait for the other. In name order, so every
-- transaction locks in the same order.
SELECT count(CASE WHEN c.newer THEN baton_namespace_exclusive_v1(c.n)
                  ELSE pg_advisory_xact_lock_shared(hashtextextended('baton-ns:' || c.n, 0)) END)
FROM (SELECT t.n, bool_or(t.v IS NOT NULL AND NOT EXISTS (
                      SELECT 1 FROM namespaces x
                      WHERE x.name = t.n AND (x.failover_version, x.updated_at) >= (t.v, t.u)))
                  AS newer
      FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS t(n, v, u)
      GROUP BY t.n ORDER BY t.n) AS c

-- name: lock_namespace_for_promotion
-- The namespace's fence, exclusively, before a move of it (a promotion, or the
-- old region's side of one): a statement of its own, so the move's statement
-- starts with a snapshot that sees what the writes it waited for committed.
SELECT baton_namespace_exclusive_v1($1)

-- name: backfill_state
SELECT state FROM namespace_backfills WHERE namespace = $1 AND region = $2

-- name: dead_letters_of_namespace
SELECT count(*) FROM replication_dlq WHERE namespace = $1

-- name: advance_execution
UPDATE executions SET next_event_id = $4, last_write_version = $5, updated_at = now()
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3

-- name: take_buffered_of_run
DELETE FROM buffered_events WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
RETURNING seq, event_type, attributes, created_at

-- name: drop_flushed_buffered
-- Buffered inputs the applied history wrote as events (or dropped).
DELETE FROM buffered_events
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND seq <= $4

-- name: apply_buffered
-- Inputs waiting behind a started workflow task in the active region, kept
-- until the history that writes them arrives (those already flushed here are
-- not stored again). Returns the run's flushed seq here (none: no run yet).
WITH run AS (
    SELECT buffered_flushed_seq FROM executions
    WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 FOR UPDATE
), ins AS (
    INSERT INTO buffered_events (namespace, workflow_id, run_id, seq, event_type, attributes)
    SELECT $1, $2, $3, b.seq, b.event_type, b.attributes
    FROM jsonb_to_recordset($4::jsonb) AS b(seq bigint, event_type text, attributes jsonb), run
    WHERE b.seq > run.buffered_flushed_seq
    ON CONFLICT DO NOTHING
    RETURNING seq
), bump AS (
    UPDATE executions SET buffered_seq = greatest(buffered_seq, (SELECT max(seq) FROM ins))
    WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
      AND EXISTS (SELECT 1 FROM ins)
)
SELECT buffered_flushed_seq FROM run

-- name: first_progress_at
-- Epoch seconds of the first task a namespace completed under a failover version.
SELECT extract(epoch FROM min(event_time)) FROM history_events
WHERE namespace = $1 AND version = $2
  AND event_type IN ('ActivityTaskCompleted', 'WorkflowTaskCompleted')

-- name: runs_by_status_with_prefix
SELECT status, count(*) AS n FROM executions
WHERE namespace = $1 AND workflow_id LIKE $2 || '%'
GROUP BY status

-- name: completed_under_region
-- Runs (workflow id prefix $2) that completed under a failover version of the
-- region with initial version $3 (increment $4).
SELECT count(*) FROM history_events
WHERE namespace = $1 AND workflow_id LIKE $2 || '%'
  AND event_type = 'WorkflowExecutionCompleted' AND version % $4 = $3 % $4

-- name: replicated_namespaces
-- Namespaces of more than one region, as this region knows them.
SELECT name, regions, active_region, failover_version FROM namespaces
WHERE cardinality(regions) > 1

-- name: outbox_backlog_by_namespace
SELECT namespace, count(*) AS n FROM outbox GROUP BY namespace

-- name: dead_letters_by_source_and_namespace
SELECT source_region, namespace, count(*) AS n FROM replication_dlq
GROUP BY source_region, namespace


-- name: apply_plain
-- How many of the messages ($2), from the first, were applied in one round
-- trip: the next one, if any, is for the applier's rules (0017).
SELECT baton_apply_plain_v1($1, $2, 0)


-- name: apply_batch
-- A partition's batch in one statement: how many of its records are done
-- (skipped, or applied with the offset after them stored); the rest, from
-- the first message for the rules, are the applier's to apply. The applier
-- sends the batch's notifications once it committed (0031).
WITH later AS MATERIALIZED (SELECT set_config('baton.notify_after_commit', 'on', true))
SELECT baton_apply_batch_v1($1, $2, $3, $4, $5, $6) FROM later


-- name: namespaces_active_here
-- Replicated namespaces this region holds itself active for (or handing over).
SELECT name, regions, failover_version FROM namespaces
WHERE active_region = $1 AND cardinality(regions) > 1

-- name: namespaces_standby_here
-- Replicated namespaces this region is a standby of.
SELECT name, active_region, failover_version FROM namespaces
WHERE $1 = ANY(regions) AND active_region <> $1

-- name: leave_namespace
-- Take this region ($2) out of its own row of namespace $1, which its active
-- region no longer lists it in, unless batches of the namespace wait in its
-- outbox (they ship first). (The fence is taken in a statement before this one.)
UPDATE namespaces SET regions = array_remove(regions, $2), updated_at = now()
WHERE name = $1 AND $2 = ANY(regions) AND active_region <> $2
  AND NOT EXISTS (SELECT 1 FROM outbox WHERE namespace = $1)
RETURNING regions

-- name: depose_namespace
-- A peer region holds namespace $1 active in $3 under the higher failover
-- version $4, and this region ($2) missed the move (it was away when a forced
-- failover promoted $3, and the stream has not told it yet): it becomes a
-- standby and drops the pending work it held, as move_namespace does. The
-- row keeps its updated_at, so the stream's copy of the new row, changed
-- there after the promotion under the same version, still replaces it.
-- (The fence is taken in a statement before this one.)
WITH moved AS (
    UPDATE namespaces SET active_region = $3, failover_version = $4, state = 'active'
    WHERE name = $1 AND active_region = $2 AND failover_version < $4
    RETURNING name
), ta AS (DELETE FROM tasks WHERE id IN (
        SELECT id FROM tasks WHERE namespace = $1 AND EXISTS (SELECT 1 FROM moved)
        FOR UPDATE SKIP LOCKED)),
   ti AS (DELETE FROM timers WHERE namespace = $1 AND EXISTS (SELECT 1 FROM moved)),
   ac AS (DELETE FROM activities WHERE namespace = $1 AND EXISTS (SELECT 1 FROM moved)),
   up AS (DELETE FROM workflow_updates
          WHERE namespace = $1 AND state = 'requested' AND EXISTS (SELECT 1 FROM moved))
SELECT name FROM moved

-- name: reapplied_start_of_run
-- The run a start of a losing branch's run was re-applied as here, if one was.
SELECT (o ->> 'run_id')::uuid
FROM replication_conflicts c, jsonb_array_elements(c.reapplied) o
WHERE c.namespace = $1 AND c.workflow_id = $2 AND c.run_id = $3
  AND o ->> 'event_type' = 'WorkflowExecutionStarted'
  AND o ->> 'run_id' IS NOT NULL
ORDER BY c.id DESC
LIMIT 1

-- name: reapplied_of
-- Which of these (negated) event ids of a run's branch under version $5 were
-- re-applied here already.
SELECT array_agg(event_id) FROM replication_reapplied
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND event_id = ANY($4::bigint[])
  AND version = $5

-- name: update_state_here
-- The state of an update of this id of the run here, if it was asked here.
SELECT state FROM workflow_updates
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3 AND update_id = $4
