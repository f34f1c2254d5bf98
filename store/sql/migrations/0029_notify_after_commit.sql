-- 0029: a write may leave its notifications to its caller, sent once the
-- write committed (a NULL p_notify_key). A NOTIFY inside the transaction takes
-- PostgreSQL's cluster-wide notify lock from pre-commit until the commit's WAL
-- flush is done, so the commits of every notifying transaction ran one at a
-- time, each waiting for the last one's flush. A server of an earlier release
-- passes the key, and its writes notify as before.
CREATE OR REPLACE FUNCTION baton_write_run_v5(
    p_ns text, p_wid text, p_rid uuid,
    p_event_ids bigint[], p_event_types text[], p_time timestamptz, p_version bigint,
    p_event_attrs jsonb[],
    p_timer_del_kinds text[], p_timer_del_refs text[],
    p_timer_kinds text[], p_timer_refs text[], p_timer_attempts int[], p_timer_fire timestamptz[],
    p_task_kinds text[], p_task_queues text[], p_task_refs text[], p_task_attempts int[],
    p_task_builds text[],
    p_status text, p_paused boolean, p_next_event_id bigint, p_last_write_version bigint,
    p_close_time timestamptz, p_continued_to uuid, p_wt_scheduled bigint, p_wt_started bigint,
    p_wt_attempt int, p_wt_started_at timestamptz, p_wt_identity text,
    p_last_completed_wt bigint, p_result jsonb, p_failure jsonb,
    p_upsert_current boolean, p_notify_key text, p_closed boolean,
    p_activity_deletes bigint[], p_closing boolean, p_activity_inserts jsonb, p_is_new boolean,
    p_pending_updates boolean,
    p_replicated boolean,
    p_buffer_inserts jsonb, p_buffered_seq bigint, p_buffered_flushed_seq bigint,
    p_buffer_delete_upto bigint,
    p_request_ids text[], p_request_kinds text[],
    p_signal_count int, p_sticky_queue text, p_sticky_timeout_s double precision,
    p_new_execution jsonb, p_versioning jsonb,
    p_expect_xmin bigint, p_ns_xmin bigint, p_fail_updates jsonb, p_view_since bigint,
    p_act_check bigint, p_act_xmin bigint, p_sticky_check text,
    OUT view jsonb, OUT run_xmin bigint, OUT history_size bigint
) LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    v_bytes bigint := coalesce((SELECT sum(pg_column_size(a)) FROM unnest(p_event_attrs) AS a), 0);
    -- the row as this write leaves it, for the outbox (a replicated history write)
    v_ship boolean := p_replicated AND cardinality(p_event_ids) > 0;
    v_row jsonb;
    v_task tid;
BEGIN
    IF p_act_check IS NOT NULL THEN
        PERFORM 1 FROM activities
        WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid
          AND scheduled_event_id = p_act_check AND xmin::text::bigint = p_act_xmin;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'activity % of % changed since it was written', p_act_check, p_wid
                USING ERRCODE = 'serialization_failure';
        END IF;
    END IF;
    IF p_sticky_check IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM sticky_queues
                   WHERE namespace = p_ns AND queue = p_sticky_check) THEN
            RAISE EXCEPTION 'sticky queue % was closed', p_sticky_check
                USING ERRCODE = 'serialization_failure';
        END IF;
    END IF;
    IF p_expect_xmin IS NOT NULL THEN
        -- An unlocked write: the caller read the run and its namespace without
        -- locks. The namespace's shared lock makes a handover wait for this
        -- write (as a locked write's does); either row changed since the read
        -- (another write, a failover) and the caller reads again and retries.
        -- The row is read by a statement of its own, after the lock is granted
        -- (its snapshot sees a change that committed while this one waited).
        PERFORM pg_advisory_xact_lock_shared(hashtextextended('baton-ns:' || p_ns, 0));
        PERFORM 1 FROM namespaces WHERE name = p_ns AND xmin::text::bigint = p_ns_xmin;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'namespace % changed since the run was read', p_ns
                USING ERRCODE = 'serialization_failure';
        END IF;
        IF p_is_new THEN
            -- An unlocked start: the caller read the id's current run
            -- (p_new_execution's expect_current_run_id) and the run of its
            -- request id (a new run records at most its start's) without
            -- locks. The locked start's checks take the id's lock and read
            -- again, seeing what a start before this one committed.
            IF EXISTS (SELECT 1 FROM baton_start_checks_v1(p_ns, p_wid, p_request_ids[1]) s
                       WHERE s.current_run_id IS DISTINCT FROM
                                 (p_new_execution ->> 'expect_current_run_id')::uuid
                          OR s.request_run_id IS NOT NULL) THEN
                RAISE EXCEPTION 'workflow % was started since it was read', p_wid
                    USING ERRCODE = 'serialization_failure';
            END IF;
        ELSE
            PERFORM 1 FROM executions
            WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid
              AND xmin::text::bigint = p_expect_xmin
            FOR UPDATE;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'run % of % was written since it was read', p_rid, p_wid
                    USING ERRCODE = 'serialization_failure';
            END IF;
        END IF;
    END IF;
    IF cardinality(p_event_ids) > 0 THEN
        INSERT INTO history_events (namespace, workflow_id, run_id, event_id, event_type,
                                    event_time, version, attributes)
        SELECT p_ns, p_wid, p_rid, e.id, e.type, p_time, p_version, e.attrs
        FROM unnest(p_event_ids, p_event_types, p_event_attrs) AS e(id, type, attrs);
        -- a NULL key: the caller notifies once the write committed (a NOTIFY
        -- here holds PostgreSQL's cluster-wide notify lock through the
        -- commit's WAL flush, so every notifying commit waited for the last)
        IF p_notify_key IS NOT NULL THEN
            PERFORM pg_notify('baton_history_v1', p_notify_key);
        END IF;
    END IF;
    IF cardinality(p_timer_del_kinds) > 0 THEN
        DELETE FROM timers t
        WHERE t.namespace = p_ns AND t.workflow_id = p_wid AND t.run_id = p_rid
          AND t.kind = ANY(p_timer_del_kinds) AND t.ref = ANY(p_timer_del_refs)
          AND (t.kind, t.ref) IN (SELECT * FROM unnest(p_timer_del_kinds, p_timer_del_refs));
    END IF;
    IF cardinality(p_activity_deletes) > 0 THEN
        DELETE FROM activities
        WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid
          AND scheduled_event_id = ANY(p_activity_deletes);
        DELETE FROM timers
        WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid
          AND kind IN ('activity_retry', 'activity_schedule_to_start',
                       'activity_schedule_to_close', 'activity_start_to_close',
                       'activity_heartbeat')
          AND ref = ANY(p_activity_deletes::text[]);
        -- A poll holding one of these rows takes it anyway and finds the
        -- activity gone once it gets the run: never wait for it here. Each
        -- row goes by its ctid, a plan no statistics can turn into a join.
        FOR v_task IN
            SELECT ctid FROM tasks
            WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid
              AND kind = 'activity' AND ref = ANY(p_activity_deletes::text[])
            FOR UPDATE SKIP LOCKED
        LOOP
            DELETE FROM tasks WHERE ctid = v_task;
        END LOOP;
    END IF;
    IF p_closing THEN
        DELETE FROM activities WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid;
        DELETE FROM timers WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid;
        FOR v_task IN
            SELECT ctid FROM tasks
            WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid AND kind <> 'query'
            FOR UPDATE SKIP LOCKED
        LOOP
            DELETE FROM tasks WHERE ctid = v_task;
        END LOOP;
        IF p_fail_updates IS NOT NULL THEN
            -- updates the closing run will never complete
            UPDATE workflow_updates SET state = 'rejected', failure = p_fail_updates
            WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid
              AND state IN ('requested', 'accepted');
        END IF;
    ELSE
        IF cardinality(p_timer_kinds) > 0 THEN
            INSERT INTO timers (namespace, workflow_id, run_id, kind, ref, attempt, fire_at)
            SELECT p_ns, p_wid, p_rid, t.kind, t.ref, t.attempt, t.fire_at
            FROM unnest(p_timer_kinds, p_timer_refs, p_timer_attempts, p_timer_fire)
                AS t(kind, ref, attempt, fire_at);
        END IF;
        IF cardinality(p_task_kinds) > 0 THEN
            INSERT INTO tasks (namespace, workflow_id, run_id, kind, task_queue, ref, attempt,
                               build_id)
            SELECT p_ns, p_wid, p_rid, t.kind, t.queue, t.ref, t.attempt, t.build
            FROM unnest(p_task_kinds, p_task_queues, p_task_refs, p_task_attempts, p_task_builds)
                AS t(kind, queue, ref, attempt, build);
        END IF;
        IF jsonb_array_length(p_activity_inserts) > 0 THEN
            INSERT INTO activities
            SELECT * FROM jsonb_populate_recordset(NULL::activities, p_activity_inserts);
        END IF;
    END IF;
    -- Buffered inputs: new ones are added, flushed ones (written as events,
    -- or dropped with a closing run) go.
    IF jsonb_array_length(p_buffer_inserts) > 0 THEN
        INSERT INTO buffered_events (namespace, workflow_id, run_id, seq, event_type, attributes)
        SELECT p_ns, p_wid, p_rid, b.seq, b.event_type, b.attributes
        FROM jsonb_to_recordset(p_buffer_inserts) AS b(seq bigint, event_type text,
                                                       attributes jsonb);
        IF p_replicated THEN
            INSERT INTO outbox (namespace, workflow_id, run_id, first_event_id, last_event_id,
                                version, kind, ref)
            VALUES (p_ns, p_wid, p_rid, 0, 0, p_version, 'buffered', p_buffered_seq);
        END IF;
    END IF;
    IF p_buffer_delete_upto > 0 THEN
        DELETE FROM buffered_events
        WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid
          AND seq <= p_buffer_delete_upto;
    END IF;
    IF cardinality(p_request_ids) > 0 THEN
        INSERT INTO request_ids (namespace, workflow_id, request_id, run_id, kind)
        SELECT p_ns, p_wid, r.id, p_rid, r.kind
        FROM unnest(p_request_ids, p_request_kinds) AS r(id, kind)
        ON CONFLICT DO NOTHING;
    END IF;
    IF p_is_new THEN
        -- a new run's row, whole (the other p_ values repeat what it holds)
        INSERT INTO executions
        SELECT * FROM jsonb_populate_record(NULL::executions, p_new_execution
            || jsonb_build_object('history_size_bytes', v_bytes, 'updated_at', now()))
        RETURNING xmin::text::bigint, history_size_bytes,
            CASE WHEN v_ship THEN to_jsonb(executions.*) END
            INTO run_xmin, history_size, v_row;
    ELSE
        UPDATE executions SET status = p_status, paused = p_paused,
            next_event_id = p_next_event_id, last_write_version = p_last_write_version,
            close_time = p_close_time, continued_to_run_id = p_continued_to,
            wt_scheduled_event_id = p_wt_scheduled, wt_started_event_id = p_wt_started,
            wt_attempt = p_wt_attempt, wt_started_at = p_wt_started_at,
            wt_identity = p_wt_identity, last_completed_wt_started = p_last_completed_wt,
            result = p_result, failure = p_failure,
            pending_updates = p_pending_updates, buffered_seq = p_buffered_seq,
            buffered_flushed_seq = p_buffered_flushed_seq, signal_count = p_signal_count,
            sticky_queue = p_sticky_queue, sticky_timeout_s = p_sticky_timeout_s,
            history_size_bytes = history_size_bytes + v_bytes, updated_at = now(),
            -- versioning changes rarely: NULL keeps what the row has
            deployment = CASE WHEN p_versioning IS NULL THEN deployment
                              ELSE p_versioning ->> 'deployment' END,
            build_id = CASE WHEN p_versioning IS NULL THEN build_id
                            ELSE p_versioning ->> 'build_id' END,
            versioning_behavior = CASE WHEN p_versioning IS NULL THEN versioning_behavior
                                       ELSE p_versioning ->> 'versioning_behavior' END,
            versioning = CASE WHEN p_versioning IS NULL THEN versioning
                              ELSE p_versioning -> 'versioning' END
        WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid
        RETURNING xmin::text::bigint, history_size_bytes,
            CASE WHEN v_ship THEN to_jsonb(executions.*) END
            INTO run_xmin, history_size, v_row;
    END IF;
    -- The outbox row of a replicated history write carries the execution row
    -- as this write left it: the standby's row then matches its history.
    IF v_row IS NOT NULL THEN
        INSERT INTO outbox (namespace, workflow_id, run_id, first_event_id, last_event_id,
                            version, execution)
        VALUES (p_ns, p_wid, p_rid, p_event_ids[1], p_event_ids[cardinality(p_event_ids)],
                p_version, v_row);
    END IF;
    IF p_upsert_current THEN
        INSERT INTO current_executions (namespace, workflow_id, run_id, status)
        VALUES (p_ns, p_wid, p_rid, p_status)
        ON CONFLICT (namespace, workflow_id) DO UPDATE SET run_id = EXCLUDED.run_id,
            status = EXCLUDED.status;
    END IF;
    IF p_closed AND p_notify_key IS NOT NULL THEN
        PERFORM pg_notify('baton_closed_v1', p_notify_key);
    END IF;
    IF p_view_since IS NULL THEN
        RETURN;
    END IF;
    -- The workflow task this write started, as its worker gets it: the
    -- events from p_view_since and the updates waiting.
    view := jsonb_build_object(
        'events', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'event_id', h.event_id, 'event_type', h.event_type,
                'event_time', to_char(h.event_time AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
                'version', h.version, 'attributes', h.attributes) ORDER BY h.event_id),
                '[]'::jsonb)
            FROM history_events h
            WHERE h.namespace = p_ns AND h.workflow_id = p_wid AND h.run_id = p_rid
              AND h.event_id >= p_view_since),
        'updates', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'update_id', u.update_id, 'name', u.name, 'input', u.input)
                ORDER BY u.created_at), '[]'::jsonb)
            FROM workflow_updates u
            WHERE u.namespace = p_ns AND u.workflow_id = p_wid AND u.run_id = p_rid
              AND u.state = 'requested'),
        'previous_version', (SELECT h.version FROM history_events h
            WHERE h.namespace = p_ns AND h.workflow_id = p_wid AND h.run_id = p_rid
              AND h.event_id = p_view_since - 1));
END;
$$;
