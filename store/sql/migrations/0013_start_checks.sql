-- 0013: the checks of a start, read after its workflow id's lock is held.
-- The start_checks query took the advisory lock and read current_executions
-- in one statement, whose snapshot predates the lock's wait: a start that
-- waited for another start of the same id did not see the run it committed,
-- and both ran. In a function, each statement reads with a snapshot of its own.
CREATE FUNCTION baton_start_checks_v1(p_ns text, p_wid text, p_request_id text)
RETURNS TABLE (request_run_id uuid, current_run_id uuid, current_status text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_ns || '/' || p_wid, 0));
    RETURN QUERY
    SELECT (SELECT r.run_id FROM request_ids r
            WHERE r.namespace = p_ns AND r.workflow_id = p_wid
              AND r.request_id = p_request_id),
           c.run_id, c.status
    FROM (SELECT 1) AS one
    LEFT JOIN current_executions c ON c.namespace = p_ns AND c.workflow_id = p_wid;
END;
$$;
