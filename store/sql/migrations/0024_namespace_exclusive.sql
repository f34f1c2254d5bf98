-- 0024: the namespace fence's exclusive lock, defined once. Every change of
-- a namespace takes it before it touches the namespace's row (the
-- statements of queries.sql, in a CTE of their own; a promotion; an applier
-- taking a newer row): the row's trigger runs on the row already locked, so
-- the lock it takes comes too late to keep the order "fence, then row" that
-- every writer keeps. The trigger still takes it, a lock already held, as a
-- guard for a path that would not.
CREATE FUNCTION baton_namespace_exclusive_v1(p_name text) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtextextended('baton-ns:' || p_name, 0))
$$;

CREATE OR REPLACE FUNCTION baton_namespace_fence_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM baton_namespace_exclusive_v1(OLD.name);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;
