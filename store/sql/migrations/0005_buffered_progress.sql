-- 0005: inputs buffered behind a running workflow task (a signal, a cancel
-- request) change the execution row but write no event. For a namespace
-- with standbys such a change rides the outbox as a 'progress' row, so a
-- region that takes the namespace over has them too.

CREATE FUNCTION baton_outbox_buffered_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (namespace, workflow_id, run_id, first_event_id, last_event_id,
                        version, kind)
    SELECT NEW.namespace, NEW.workflow_id, NEW.run_id, 0, 0, n.failover_version, 'progress'
    FROM namespaces n
    WHERE n.name = NEW.namespace AND cardinality(n.regions) > 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER executions_buffered_v1 AFTER UPDATE ON executions
    FOR EACH ROW WHEN (OLD.next_event_id = NEW.next_event_id
                       AND OLD.buffered_events IS DISTINCT FROM NEW.buffered_events)
    EXECUTE FUNCTION baton_outbox_buffered_v1();
