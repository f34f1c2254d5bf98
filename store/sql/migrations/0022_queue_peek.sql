-- 0022: whether a queue holds a task a poller could take, read without
-- taking or locking one. A take opens a transaction (BEGIN, the take,
-- COMMIT: three round trips) because the task it deletes must go in the same
-- commit as the run's write; at low rates most polls arrive at an empty
-- queue (their tasks come handed over in memory), and paid the three for
-- nothing. A poll of a queue this process last found empty asks this first
-- (one round trip), and takes only if it says yes. Same predicate and the
-- same index as baton_take_task_v1, with sequential scans off for the same
-- reason (0020); PL/pgSQL, so its plan is made once per session.
CREATE FUNCTION baton_queue_has_task_v1(
    p_ns text, p_queue text, p_activity boolean, p_build text
) RETURNS boolean LANGUAGE plpgsql STABLE SET enable_seqscan = off AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM tasks f
        WHERE f.task_queue = p_queue AND f.namespace = p_ns
          AND (f.kind = 'activity') = p_activity
          AND coalesce(f.build_id, '') = coalesce(p_build, ''));
END;
$$;
