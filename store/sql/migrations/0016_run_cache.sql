-- 0016: a write against a run this server process remembers. A server keeps
-- the runs it wrote last (store/run_cache.py) and writes them again without
-- reading them first: the write is refused (serialization_failure) when the
-- run's row or its namespace's row changed since the remembered write (their
-- xmin, as for a write after an unlocked read), when the remembered activity
-- an activity completion acts on changed since it was inserted (its xmin),
-- or when the run's sticky queue was closed since (a worker shut down). The
-- caller then reads the run and writes again. baton_write_run_v5 returns the
-- xmin and history size the write left on the run, which the server keeps.
-- Servers of the previous release keep calling baton_write_run_v4.
CREATE FUNCTION baton_write_run_v5(
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
) LANGUAGE plpgsql AS $$
BEGIN
    IF p_act_check IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM activities
            WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid
              AND scheduled_event_id = p_act_check AND xmin::text::bigint = p_act_xmin) THEN
        RAISE EXCEPTION 'activity % of % changed since it was written', p_act_check, p_wid
            USING ERRCODE = 'serialization_failure';
    END IF;
    IF p_sticky_check IS NOT NULL AND EXISTS (
            SELECT 1 FROM sticky_queues WHERE namespace = p_ns AND queue = p_sticky_check) THEN
        RAISE EXCEPTION 'sticky queue % was closed', p_sticky_check
            USING ERRCODE = 'serialization_failure';
    END IF;
    view := baton_write_run_v4(p_ns, p_wid, p_rid, p_event_ids, p_event_types, p_time, p_version,
        p_event_attrs, p_timer_del_kinds, p_timer_del_refs, p_timer_kinds, p_timer_refs,
        p_timer_attempts, p_timer_fire, p_task_kinds, p_task_queues, p_task_refs,
        p_task_attempts, p_task_builds, p_status, p_paused, p_next_event_id,
        p_last_write_version, p_close_time, p_continued_to, p_wt_scheduled, p_wt_started,
        p_wt_attempt, p_wt_started_at, p_wt_identity, p_last_completed_wt, p_result, p_failure,
        p_upsert_current, p_notify_key, p_closed, p_activity_deletes, p_closing,
        p_activity_inserts, p_is_new, p_pending_updates, p_replicated, p_buffer_inserts,
        p_buffered_seq, p_buffered_flushed_seq, p_buffer_delete_upto, p_request_ids,
        p_request_kinds, p_signal_count, p_sticky_queue, p_sticky_timeout_s, p_new_execution,
        p_versioning, p_expect_xmin, p_ns_xmin, p_fail_updates, p_view_since);
    SELECT e.xmin::text::bigint, e.history_size_bytes INTO run_xmin, history_size
    FROM executions e
    WHERE e.namespace = p_ns AND e.workflow_id = p_wid AND e.run_id = p_rid;
END;
$$;
