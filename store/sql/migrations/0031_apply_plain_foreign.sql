-- 0031: baton_apply_plain_v1 passes the messages of a namespace this region
-- is not one of (neither the message nor the region's row of the namespace,
-- as new as the message's, lists it), where it stopped at each and the
-- applier took it statement by statement only to find nothing to apply: a
-- region added to a stack reads every topic from its start, and a
-- namespace's backfill waited behind every such message of the others.
-- It also leaves the notifications of the applier's one-statement batch to
-- its caller, sent once the batch committed (baton.notify_after_commit set for
-- the transaction), as a run's writes do since 0029: a NOTIFY inside the
-- transaction holds PostgreSQL's cluster-wide notify lock through the
-- commit's WAL flush. An applier of an earlier release sets nothing and its
-- batches notify as before.
CREATE OR REPLACE FUNCTION baton_apply_plain_v1(p_region text, p_msgs jsonb, p_skip int)
RETURNS int LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    m jsonb;
    applied int := 0;
    v_kind text;
    v_info jsonb;
    v_ns text;
    v_wid text;
    v_rid uuid;
    v_events jsonb;
    v_exec jsonb;
    v_acts jsonb;
    v_first bigint;
    v_last bigint;
    v_version bigint;
    v_flushed bigint;
    n record;
    run record;
    cur record;
BEGIN
    FOR m IN SELECT t.value FROM jsonb_array_elements(p_msgs) WITH ORDINALITY AS t(value, i)
             WHERE t.i > p_skip ORDER BY t.i LOOP
        v_kind := m ->> 'type';
        v_info := m -> 'namespace_info';
        v_ns := m ->> 'namespace';
        v_wid := m ->> 'workflow_id';
        EXIT WHEN coalesce(v_kind, '') NOT IN ('history_v1', 'progress_v1')
            OR jsonb_typeof(v_info) IS DISTINCT FROM 'object' OR v_ns IS NULL OR v_wid IS NULL
            OR v_info ->> 'name' IS DISTINCT FROM v_ns;
        v_rid := (m ->> 'run_id')::uuid;
        v_events := m -> 'events';
        v_exec := m -> 'execution';
        v_acts := m -> 'activities';
        -- The namespace row here is as new as the message's, or holds what it
        -- says (nothing to take: apply_namespace_txn), and this region is one
        -- of its standbys.
        SELECT * INTO n FROM namespaces WHERE name = v_ns;
        -- A namespace this region is not one of, in the message and in its
        -- row here, as new as the message's: the rules would take nothing
        -- (0031), so a region that is no member of busy namespaces (one just
        -- added, reading every topic from its start) passes their messages
        -- here rather than one by one.
        IF FOUND AND NOT coalesce(v_info -> 'regions' ? p_region, false)
           AND NOT (p_region = ANY (n.regions))
           AND (n.failover_version, n.updated_at)
               >= ((v_info ->> 'failover_version')::bigint,
                   (v_info ->> 'updated_at')::timestamptz) THEN
            applied := applied + 1;
            CONTINUE;
        END IF;
        EXIT WHEN NOT FOUND OR v_rid IS NULL
            OR (coalesce((n.failover_version, n.updated_at)
                         < ((v_info ->> 'failover_version')::bigint,
                            (v_info ->> 'updated_at')::timestamptz), true)
                AND jsonb_build_object(
                        'regions', n.regions, 'active_region', n.active_region,
                        'failover_version', n.failover_version, 'state', n.state,
                        'retention_days', n.retention_days, 'description', n.description,
                        'search_attributes', n.search_attributes,
                        'deployments', n.deployments)
                    IS DISTINCT FROM jsonb_build_object(
                        'regions', v_info -> 'regions',
                        'active_region', v_info -> 'active_region',
                        'failover_version', v_info -> 'failover_version',
                        'state', v_info -> 'state',
                        'retention_days', v_info -> 'retention_days',
                        'description', v_info -> 'description',
                        'search_attributes', v_info -> 'search_attributes',
                        'deployments', v_info -> 'deployments'))
            OR n.active_region = p_region
            OR NOT coalesce(v_info -> 'regions' ? p_region, false)
            -- an execution row without its status (apply.py refuses it)
            OR (jsonb_typeof(v_exec) = 'object' AND v_exec <> '{}' AND NOT v_exec ? 'status');
        IF v_kind = 'history_v1' THEN
            -- A batch that continues its run here, under a version no older
            -- than the namespace's or the run's, with its whole execution row.
            EXIT WHEN coalesce((m ->> 'events_by_reference')::boolean, false)
                OR coalesce((m ->> 'execution_fields_from_history')::boolean, false)
                OR m ? 'held_by_active' OR m ? 'active_holds_runs'
                OR jsonb_typeof(v_events) IS DISTINCT FROM 'array'
                OR jsonb_array_length(v_events) = 0
                OR jsonb_typeof(v_exec) IS DISTINCT FROM 'object'
                OR NOT v_exec ?& ARRAY['buffered_seq', 'buffered_flushed_seq', 'signal_count',
                                       'history_size_bytes']
                OR v_exec ->> 'status' IS NULL OR v_exec ->> 'next_event_id' IS NULL;
            v_first := (m ->> 'first_event_id')::bigint;
            v_last := (m ->> 'last_event_id')::bigint;
            v_version := (v_events -> -1 ->> 'version')::bigint;
            EXIT WHEN v_first IS NULL OR v_last IS NULL OR v_version IS NULL
                OR (v_events -> 0 ->> 'event_id')::bigint IS DISTINCT FROM v_first
                OR (v_events -> -1 ->> 'event_id')::bigint IS DISTINCT FROM v_last
                OR v_version < n.failover_version
                OR EXISTS (SELECT 1 FROM jsonb_array_elements(v_events) AS e
                           WHERE e ->> 'event_type' IN ('WorkflowExecutionUpdateAccepted',
                                                        'WorkflowExecutionUpdateCompleted'));
            -- lock_local_execution
            SELECT e.next_event_id, e.buffered_flushed_seq,
                   (SELECT h.version FROM history_events h
                    WHERE h.namespace = e.namespace AND h.workflow_id = e.workflow_id
                      AND h.run_id = e.run_id
                    ORDER BY h.event_id DESC LIMIT 1) AS last_version
            INTO run
            FROM executions e
            WHERE e.namespace = v_ns AND e.workflow_id = v_wid AND e.run_id = v_rid
            FOR UPDATE OF e;
            IF FOUND THEN
                EXIT WHEN v_first <> run.next_event_id
                    OR (run.last_version IS NOT NULL AND v_version < run.last_version)
                    OR (v_exec ->> 'next_event_id')::bigint > v_last + 1;
            ELSE
                EXIT WHEN v_first <> 1;
                -- current_run: one written under an older version may have lost
                SELECT c.run_id, e.last_write_version INTO cur
                FROM current_executions c
                JOIN executions e ON e.namespace = c.namespace AND e.workflow_id = c.workflow_id
                                 AND e.run_id = c.run_id
                WHERE c.namespace = v_ns AND c.workflow_id = v_wid
                FOR UPDATE OF c;
                EXIT WHEN FOUND AND cur.run_id <> v_rid AND cur.last_write_version < v_version;
            END IF;
            -- apply_events
            INSERT INTO history_events (namespace, workflow_id, run_id, event_id, event_type,
                                        event_time, version, attributes)
            SELECT v_ns, v_wid, v_rid, e.event_id, e.event_type, e.event_time, e.version,
                   e.attributes
            FROM jsonb_to_recordset(v_events) AS e(event_id bigint, event_type text,
                                                   event_time timestamptz, version bigint,
                                                   attributes jsonb);
            -- derive_request_ids
            INSERT INTO request_ids (namespace, workflow_id, request_id, run_id, kind)
            SELECT v_ns, v_wid, e.attributes ->> 'request_id', v_rid,
                   CASE e.event_type WHEN 'WorkflowExecutionStarted' THEN 'start'
                                     WHEN 'WorkflowExecutionSignaled' THEN 'signal'
                                     WHEN 'WorkflowExecutionCancelRequested' THEN 'cancel'
                                     ELSE 'terminate' END
            FROM jsonb_to_recordset(v_events) AS e(event_type text, attributes jsonb)
            WHERE e.event_type IN ('WorkflowExecutionStarted', 'WorkflowExecutionSignaled',
                                   'WorkflowExecutionCancelRequested',
                                   'WorkflowExecutionTerminated')
              AND coalesce(e.attributes ->> 'request_id', '') <> ''
            ON CONFLICT DO NOTHING;
            -- upsert_execution_json, its next event id never past the events
            v_exec := v_exec || jsonb_build_object(
                'next_event_id', least((v_exec ->> 'next_event_id')::bigint, v_last + 1));
            INSERT INTO executions SELECT * FROM jsonb_populate_record(NULL::executions,
                '{"search_attributes": {}}'::jsonb || v_exec)
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
                EXCLUDED.next_event_id, EXCLUDED.last_write_version, EXCLUDED.start_time,
                EXCLUDED.close_time, EXCLUDED.request_id, EXCLUDED.first_run_id,
                EXCLUDED.continued_from_run_id, EXCLUDED.continued_to_run_id,
                EXCLUDED.task_timeout_s, EXCLUDED.run_timeout_s, EXCLUDED.memo,
                EXCLUDED.wt_scheduled_event_id, EXCLUDED.wt_started_event_id,
                EXCLUDED.wt_attempt, EXCLUDED.wt_started_at, EXCLUDED.wt_identity,
                EXCLUDED.last_completed_wt_started, EXCLUDED.pending_updates, EXCLUDED.result,
                EXCLUDED.failure, EXCLUDED.build_id, EXCLUDED.updated_at,
                greatest(executions.buffered_seq, EXCLUDED.buffered_seq),
                EXCLUDED.buffered_flushed_seq, EXCLUDED.signal_count,
                EXCLUDED.history_size_bytes, NULL, NULL, EXCLUDED.search_attributes,
                EXCLUDED.deployment, EXCLUDED.versioning_behavior, EXCLUDED.versioning,
                EXCLUDED.pause_info
            );
            -- drop_flushed_buffered
            v_flushed := coalesce((v_exec ->> 'buffered_flushed_seq')::bigint, 0);
            IF v_flushed > coalesce(run.buffered_flushed_seq, 0) THEN
                DELETE FROM buffered_events
                WHERE namespace = v_ns AND workflow_id = v_wid AND run_id = v_rid
                  AND seq <= v_flushed;
            END IF;
            -- replace_current (a row that would not change is not written)
            IF v_exec ->> 'status' = 'running' OR v_exec ->> 'continued_to_run_id' IS NULL THEN
                INSERT INTO current_executions AS c (namespace, workflow_id, run_id, status)
                VALUES (v_ns, v_wid, v_rid, v_exec ->> 'status')
                ON CONFLICT (namespace, workflow_id) DO UPDATE SET run_id = EXCLUDED.run_id,
                    status = EXCLUDED.status
                WHERE (c.run_id, c.status) IS DISTINCT FROM (EXCLUDED.run_id, EXCLUDED.status)
                  AND (c.run_id = EXCLUDED.run_id
                   OR (SELECT start_time FROM executions e
                       WHERE e.namespace = c.namespace AND e.workflow_id = c.workflow_id
                         AND e.run_id = c.run_id)
                      <= (SELECT start_time FROM executions e
                          WHERE e.namespace = EXCLUDED.namespace
                            AND e.workflow_id = EXCLUDED.workflow_id
                            AND e.run_id = EXCLUDED.run_id)
                   OR NOT EXISTS (SELECT 1 FROM executions e
                                  WHERE e.namespace = c.namespace
                                    AND e.workflow_id = c.workflow_id
                                    AND e.run_id = c.run_id));
            END IF;
        END IF;
        -- _store_progress: the run's pending activities as the active region
        -- has them now (none unless the run is running), keeping the details
        -- held here of those the message left behind for size.
        IF coalesce(v_exec ->> 'status', '') <> 'running'
           OR jsonb_typeof(v_acts) IS DISTINCT FROM 'array'
           OR jsonb_array_length(v_acts) = 0 THEN
            DELETE FROM activity_progress
            WHERE namespace = v_ns AND workflow_id = v_wid AND run_id = v_rid;
        ELSE
            WITH incoming AS (
                SELECT a.*, coalesce(m -> 'details_dropped', '[]') @> to_jsonb(a.scheduled_event_id)
                            AS details_dropped
                FROM jsonb_to_recordset(v_acts) AS a(
                    scheduled_event_id bigint, attempt int, state text,
                    heartbeat_details jsonb, last_failure jsonb, scheduled_time timestamptz)
            ), gone AS (
                DELETE FROM activity_progress p
                WHERE p.namespace = v_ns AND p.workflow_id = v_wid AND p.run_id = v_rid
                  AND p.scheduled_event_id NOT IN (SELECT scheduled_event_id FROM incoming)
            )
            INSERT INTO activity_progress AS p (namespace, workflow_id, run_id,
                                                scheduled_event_id, attempt, state,
                                                heartbeat_details, last_failure, scheduled_time)
            SELECT v_ns, v_wid, v_rid, a.scheduled_event_id, a.attempt, a.state,
                   a.heartbeat_details, a.last_failure, a.scheduled_time
            FROM incoming a
            ON CONFLICT (namespace, workflow_id, run_id, scheduled_event_id) DO UPDATE
            SET attempt = EXCLUDED.attempt, state = EXCLUDED.state,
                scheduled_time = EXCLUDED.scheduled_time,
                heartbeat_details = CASE WHEN (SELECT i.details_dropped FROM incoming i
                                               WHERE i.scheduled_event_id = p.scheduled_event_id)
                                         THEN p.heartbeat_details
                                         ELSE EXCLUDED.heartbeat_details END,
                last_failure = CASE WHEN (SELECT i.details_dropped FROM incoming i
                                          WHERE i.scheduled_event_id = p.scheduled_event_id)
                                    THEN p.last_failure ELSE EXCLUDED.last_failure END,
                updated_at = now();
        END IF;
        -- notify_applied, unless the caller notifies once the batch committed
        -- (0031: baton.notify_after_commit set for the transaction)
        IF v_kind = 'history_v1'
           AND current_setting('baton.notify_after_commit', true) IS DISTINCT FROM 'on' THEN
            PERFORM pg_notify('baton_history_v1', v_ns || '/' || v_wid);
            IF v_exec ->> 'status' <> 'running' THEN
                PERFORM pg_notify('baton_closed_v1', v_ns || '/' || v_wid);
            END IF;
        END IF;
        applied := applied + 1;
    END LOOP;
    RETURN applied;
END;
$$;
