-- Baton region database: the canonical schema.
--
-- Every migration under migrations/ applied in order to an empty database must
-- give exactly this schema (tests/integration/test_migrations.py checks it).
-- Every table that holds workflow state is keyed by (namespace, workflow_id)
-- first, so a region can later spread executions over several databases.

CREATE TABLE baton_schema (
    version     integer     NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE namespaces (
    name              text        PRIMARY KEY,
    regions           text[]      NOT NULL,
    active_region     text        NOT NULL,
    failover_version  bigint      NOT NULL,
    state             text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'handover')),
    retention_days    integer     NOT NULL DEFAULT 7,
    description       text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- custom search attributes this namespace registers: name -> type
    search_attributes jsonb       NOT NULL DEFAULT '{}',
    -- worker deployments: name -> current, ramping, revision, versions
    deployments       jsonb       NOT NULL DEFAULT '{}',
    -- the request id of the create that made it (a retried create answers
    -- with it); not replicated
    create_request_id text
);

CREATE TABLE executions (
    namespace                 text        NOT NULL,
    workflow_id               text        NOT NULL,
    run_id                    uuid        NOT NULL,
    workflow_type             text        NOT NULL,
    task_queue                text        NOT NULL,
    status                    text        NOT NULL,
    paused                    boolean     NOT NULL DEFAULT false,
    next_event_id             bigint      NOT NULL,
    last_write_version        bigint      NOT NULL,
    start_time                timestamptz NOT NULL,
    close_time                timestamptz,
    request_id                text,
    first_run_id              uuid        NOT NULL,
    continued_from_run_id     uuid,
    continued_to_run_id       uuid,
    task_timeout_s            double precision NOT NULL,
    run_timeout_s             double precision,
    memo                      jsonb       NOT NULL DEFAULT '{}',
    -- the workflow task: at most one scheduled or started at a time
    wt_scheduled_event_id     bigint,
    wt_started_event_id       bigint,
    wt_attempt                integer     NOT NULL DEFAULT 1,
    wt_started_at             timestamptz,
    wt_identity               text,
    last_completed_wt_started bigint      NOT NULL DEFAULT 0,
    -- updates wait in workflow_updates; this flag lives on the locked row so a
    -- completion that waited for the lock sees it (a subquery would not)
    pending_updates           boolean     NOT NULL DEFAULT false,
    result                    jsonb,
    failure                   jsonb,
    build_id                  text,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    -- inputs that arrived while a workflow task was started wait in
    -- buffered_events (seq 1, 2, ...): those up to buffered_flushed_seq are
    -- written as events (or dropped with the run), the rest still wait
    buffered_seq              bigint      NOT NULL DEFAULT 0,
    buffered_flushed_seq      bigint      NOT NULL DEFAULT 0,
    -- counters the per-run limits check
    signal_count              integer     NOT NULL DEFAULT 0,
    history_size_bytes        bigint      NOT NULL DEFAULT 0,
    -- the worker that caches the run polls this queue: its next workflow
    -- task goes there first, and to task_queue after sticky_timeout_s
    sticky_queue              text,
    sticky_timeout_s          double precision,
    -- custom search attributes (name -> canonical value), see store/visibility
    search_attributes         jsonb       NOT NULL DEFAULT '{}',
    -- worker versioning: the run's deployment (build_id is the build it is
    -- on), its effective behaviour, and its state (behaviour, pin, override)
    deployment                text,
    versioning_behavior       text,
    versioning                jsonb,
    -- a paused run: reason, identity, since, request_id
    pause_info                jsonb,
    -- the chain's options (0028): its execution timeout and the deadline it
    -- sets, and its retry policy; set at a run's start, never changed
    execution_timeout_s       double precision,
    execution_expiration_time timestamptz,
    retry_policy              jsonb,
    -- the chain's cron schedule (0030): each run closes into the next at
    -- the next cron time
    cron_schedule             text,
    PRIMARY KEY (namespace, workflow_id, run_id)
) WITH (fillfactor = 80);

CREATE INDEX executions_closed_idx ON executions (close_time) WHERE close_time IS NOT NULL;

-- Inputs (signals, activity results, timer firings, cancel requests) that
-- arrived while a workflow task was started; written as events after it.
CREATE TABLE buffered_events (
    namespace    text        NOT NULL,
    workflow_id  text        NOT NULL,
    run_id       uuid        NOT NULL,
    seq          bigint      NOT NULL,
    event_type   text        NOT NULL,
    attributes   jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, workflow_id, run_id, seq)
);

-- Request ids of the starts, signals, cancels and terminates a workflow id
-- saw, kept for the namespace's retention period: a retried request, or one
-- re-applied after a forced failover, finds its id and does nothing.
CREATE TABLE request_ids (
    namespace    text        NOT NULL,
    workflow_id  text        NOT NULL,
    request_id   text        NOT NULL,
    run_id       uuid        NOT NULL,
    kind         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, workflow_id, request_id)
);

CREATE INDEX request_ids_created_idx ON request_ids (created_at);

-- Sticky queues of workers that shut down: a run whose sticky queue is here
-- gets its next workflow task on its own task queue at once.
CREATE TABLE sticky_queues (
    namespace    text        NOT NULL,
    queue        text        NOT NULL,
    closed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, queue)
);

CREATE INDEX executions_list_idx ON executions (namespace, start_time DESC);
CREATE INDEX executions_status_idx ON executions (namespace, status, start_time DESC);
CREATE INDEX executions_type_idx ON executions (namespace, workflow_type, start_time DESC);
CREATE INDEX executions_queue_idx ON executions (namespace, task_queue, start_time DESC);
CREATE INDEX executions_close_idx ON executions (namespace, close_time DESC)
    WHERE close_time IS NOT NULL;
CREATE INDEX executions_duration_idx ON executions (namespace, (close_time - start_time))
    WHERE close_time IS NOT NULL;
CREATE INDEX executions_run_idx ON executions (namespace, run_id);
CREATE INDEX executions_wid_prefix_idx ON executions (namespace, workflow_id text_pattern_ops);
CREATE INDEX executions_paused_idx ON executions (namespace, start_time DESC) WHERE paused;
CREATE INDEX executions_build_idx ON executions (namespace, build_id, start_time DESC)
    WHERE build_id IS NOT NULL;
CREATE INDEX executions_pinned_idx ON executions (namespace, deployment, build_id, close_time)
    WHERE versioning_behavior = 'pinned';
CREATE INDEX executions_deployment_idx ON executions (namespace, deployment, start_time DESC)
    WHERE deployment IS NOT NULL;
CREATE INDEX executions_attrs_idx ON executions USING gin (search_attributes jsonb_path_ops);

CREATE TABLE current_executions (
    namespace    text NOT NULL,
    workflow_id  text NOT NULL,
    run_id       uuid NOT NULL,
    status       text NOT NULL,
    PRIMARY KEY (namespace, workflow_id)
);

CREATE TABLE history_events (
    namespace    text        NOT NULL,
    workflow_id  text        NOT NULL,
    run_id       uuid        NOT NULL,
    event_id     bigint      NOT NULL,
    event_type   text        NOT NULL,
    event_time   timestamptz NOT NULL,
    version      bigint      NOT NULL,
    attributes   jsonb       NOT NULL,
    PRIMARY KEY (namespace, workflow_id, run_id, event_id)
);

-- Pending activities: the mutable part of an activity between its
-- ActivityTaskScheduled event and its closing event.
CREATE TABLE activities (
    namespace             text        NOT NULL,
    workflow_id           text        NOT NULL,
    run_id                uuid        NOT NULL,
    scheduled_event_id    bigint      NOT NULL,
    activity_id           text        NOT NULL,
    activity_type         text        NOT NULL,
    task_queue            text        NOT NULL,
    input                 jsonb       NOT NULL,
    state                 text        NOT NULL CHECK (state IN ('scheduled', 'started')),
    attempt               integer     NOT NULL DEFAULT 1,
    first_scheduled_time  timestamptz NOT NULL,
    scheduled_time        timestamptz NOT NULL,
    started_time          timestamptz,
    started_identity      text,
    schedule_to_close_s   double precision,
    schedule_to_start_s   double precision,
    start_to_close_s      double precision,
    heartbeat_s           double precision,
    retry_policy          jsonb       NOT NULL,
    heartbeat_details     jsonb,
    last_heartbeat_time   timestamptz,
    last_failure          jsonb,
    cancel_requested      boolean     NOT NULL DEFAULT false,
    -- paused by an operator or by its retry policy: no attempt starts until
    -- unpause; control: pause reason, who, since; a reset waiting for the
    -- running attempt to end
    paused                boolean,
    control               jsonb,
    PRIMARY KEY (namespace, workflow_id, run_id, scheduled_event_id),
    UNIQUE (namespace, workflow_id, run_id, activity_id)
);

-- Durable timers: user timers and every server-side timeout and retry.
CREATE TABLE timers (
    id           bigserial   PRIMARY KEY,
    namespace    text        NOT NULL,
    workflow_id  text        NOT NULL,
    run_id       uuid        NOT NULL,
    kind         text        NOT NULL,
    ref          text        NOT NULL,
    attempt      integer     NOT NULL DEFAULT 0,
    fire_at      timestamptz NOT NULL
);

CREATE INDEX timers_fire_idx ON timers (fire_at);
CREATE INDEX timers_run_idx ON timers (namespace, workflow_id, run_id, kind, ref);
-- the workflow task retries waiting out a backoff (a new worker makes them due)
CREATE INDEX timers_wt_retry_idx ON timers (namespace) WHERE kind = 'workflow_task_retry';

-- The dispatch queue: one row per workflow, activity or query task waiting
-- for a poller.
CREATE TABLE tasks (
    id           bigserial,
    namespace    text        NOT NULL,
    task_queue   text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('workflow', 'activity', 'query')),
    workflow_id  text        NOT NULL,
    run_id       uuid        NOT NULL,
    ref          text        NOT NULL,
    attempt      integer     NOT NULL DEFAULT 1,
    build_id     text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- A poll takes activity tasks, or workflow and query tasks: one index walk in
-- id order. Only this index can be bounded by a take (it alone leads with the
-- task queue) and only tasks_run_idx by a run's lookup (it alone leads with
-- the workflow id), and no btree walks ids in order besides the take's: so
-- even a generic plan made from statistics of an empty table keeps to them
-- (0020). Ids are looked up by hash.
CREATE INDEX tasks_take_idx
    ON tasks (task_queue, namespace, (kind = 'activity'), (coalesce(build_id, '')), id);
CREATE INDEX tasks_run_idx ON tasks (workflow_id, run_id, namespace);
CREATE INDEX tasks_id_idx ON tasks USING hash (id);
-- a query's task, deleted by its query id when the query ends untaken
CREATE INDEX tasks_query_idx ON tasks (ref) WHERE kind = 'query';

-- Pollers of each worker version in this region (not replicated).
CREATE TABLE version_pollers (
    namespace    text        NOT NULL,
    deployment   text        NOT NULL,
    build_id     text        NOT NULL,
    task_queue   text        NOT NULL,
    identity     text        NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz,
    PRIMARY KEY (namespace, deployment, build_id, task_queue, identity)
);

-- Each schedule's last reported counters, for this region's metrics (0010;
-- not replicated: the active region writes it).
CREATE TABLE schedule_stats (
    namespace    text        NOT NULL,
    schedule_id  text        NOT NULL,
    counters     jsonb       NOT NULL,
    running      integer     NOT NULL,
    paused       boolean     NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, schedule_id)
);

CREATE TABLE workflow_updates (
    namespace    text        NOT NULL,
    workflow_id  text        NOT NULL,
    update_id    text        NOT NULL,
    run_id       uuid        NOT NULL,
    name         text        NOT NULL,
    input        jsonb       NOT NULL,
    state        text        NOT NULL CHECK (state IN ('requested', 'accepted', 'rejected', 'completed')),
    result       jsonb,
    failure      jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- per run, as Temporal dedupes update ids: a new run takes an id again
    PRIMARY KEY (namespace, workflow_id, run_id, update_id)
);

CREATE TABLE queries (
    id           uuid        PRIMARY KEY,
    namespace    text        NOT NULL,
    workflow_id  text        NOT NULL,
    run_id       uuid        NOT NULL,
    name         text        NOT NULL,
    input        jsonb       NOT NULL,
    state        text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'answered')),
    result       jsonb,
    failure      jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per committed history batch, written in the same transaction as
-- the events; the replication publisher ships them in commit order.
CREATE TABLE outbox (
    id              bigserial   PRIMARY KEY,
    namespace       text        NOT NULL,
    workflow_id     text        NOT NULL,
    run_id          uuid        NOT NULL,
    first_event_id  bigint      NOT NULL,
    last_event_id   bigint      NOT NULL,
    version         bigint      NOT NULL,
    txid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- 'history' batches; 'progress' of an activity (ref = its scheduled event);
    -- 'namespace' changes; 'conflict' archives (ref = replication_conflicts.id)
    kind            text        NOT NULL DEFAULT 'history'
        CONSTRAINT outbox_kind_check
        CHECK (kind IN ('history', 'progress', 'namespace', 'conflict', 'buffered')),
    ref             bigint,
    -- a history write's execution row as that write left it (replicated
    -- namespaces only): the standby's row then matches its history
    execution       jsonb
);

-- Wake long-polls only when the inserting transaction commits.
CREATE FUNCTION baton_notify_task_v2() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- query tasks travel on the workflow-task long-poll; a versioned task
    -- wakes only pollers of its version (kind@deployment:build)
    PERFORM pg_notify('baton_tasks_v1', NEW.namespace || '/'
        || CASE WHEN NEW.kind = 'query' THEN 'workflow' ELSE NEW.kind END
        || coalesce('@' || NEW.build_id, '') || '/' || NEW.task_queue);
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_notify_v2 AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION baton_notify_task_v2();

CREATE FUNCTION baton_notify_timer_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('baton_timers_v1', extract(epoch FROM NEW.fire_at)::text);
    RETURN NULL;
END;
$$;

-- Only timers due soon wake the timer loop; it looks again at least every
-- few seconds anyway (store/timers.py MAX_SLEEP), so most timeouts, which are
-- deleted long before they are due, cost no notification at all.
CREATE TRIGGER timers_notify_v1 AFTER INSERT ON timers
    FOR EACH ROW WHEN (NEW.fire_at < now() + interval '3 seconds')
    EXECUTE FUNCTION baton_notify_timer_v1();

-- One history write to one run, in one round trip: only the parts a write
-- needs run, each as a statement that uses its table's key index.
CREATE FUNCTION baton_write_run_v3(
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
    p_new_execution jsonb, p_versioning jsonb
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_bytes bigint := coalesce((SELECT sum(pg_column_size(a)) FROM unnest(p_event_attrs) AS a), 0);
BEGIN
    IF cardinality(p_event_ids) > 0 THEN
        INSERT INTO history_events (namespace, workflow_id, run_id, event_id, event_type,
                                    event_time, version, attributes)
        SELECT p_ns, p_wid, p_rid, e.id, e.type, p_time, p_version, e.attrs
        FROM unnest(p_event_ids, p_event_types, p_event_attrs) AS e(id, type, attrs);
        PERFORM pg_notify('baton_history_v1', p_notify_key);
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
        -- activity gone once it gets the run: never wait for it here.
        DELETE FROM tasks WHERE id IN (
            SELECT id FROM tasks
            WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid
              AND kind = 'activity' AND ref = ANY(p_activity_deletes::text[])
            FOR UPDATE SKIP LOCKED);
    END IF;
    IF p_closing THEN
        DELETE FROM activities WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid;
        DELETE FROM timers WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid;
        DELETE FROM tasks WHERE id IN (
            SELECT id FROM tasks
            WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid AND kind <> 'query'
            FOR UPDATE SKIP LOCKED);
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
            || jsonb_build_object('history_size_bytes', v_bytes, 'updated_at', now()));
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
        WHERE namespace = p_ns AND workflow_id = p_wid AND run_id = p_rid;
    END IF;
    -- The outbox row of a replicated history write carries the execution row
    -- as this write left it: the standby's row then matches its history.
    IF p_replicated AND cardinality(p_event_ids) > 0 THEN
        INSERT INTO outbox (namespace, workflow_id, run_id, first_event_id, last_event_id,
                            version, execution)
        SELECT p_ns, p_wid, p_rid, p_event_ids[1], p_event_ids[cardinality(p_event_ids)],
               p_version, to_jsonb(e)
        FROM executions e
        WHERE e.namespace = p_ns AND e.workflow_id = p_wid AND e.run_id = p_rid;
    END IF;
    IF p_upsert_current THEN
        INSERT INTO current_executions (namespace, workflow_id, run_id, status)
        VALUES (p_ns, p_wid, p_rid, p_status)
        ON CONFLICT (namespace, workflow_id) DO UPDATE SET run_id = EXCLUDED.run_id,
            status = EXCLUDED.status;
    END IF;
    IF p_closed THEN
        PERFORM pg_notify('baton_closed_v1', p_notify_key);
    END IF;
END;
$$;

-- The checks of a start, read after its workflow id's lock is held: each
-- statement of a function reads with a snapshot of its own, so a start that
-- waited for another start of the id sees the run that one committed.
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

-- A run's write, whole: optionally unlocked (checked against the rows' xmin,
-- or for a new run against the id's current run and request ids), also
-- refused if a remembered run's activity or sticky queue changed since
-- (store/run_cache.py); rejects a closing run's updates; returns the view of
-- a started task and the xmin and history size the write left on the run.
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

-- A poll's take: the oldest free task of a queue, and whether the queue holds
-- more (taken or not): only then does the poller that took it wake another
-- one. p_activity is true for an activity poll, false for a workflow poll
-- (workflow and query tasks): written so, it matches tasks_take_idx column
-- for column, ids in order. The row locked is deleted by its ctid. The "more"
-- look-up asks for the lowest other id rather than EXISTS. No sequential scan
-- here or in baton_write_run_v5: a queue table's statistics may say it is
-- empty while it holds a backlog (0020).
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

CREATE FUNCTION baton_take_task_v1(
    p_ns text, p_queue text, p_activity boolean, p_build text,
    OUT id bigint, OUT kind text, OUT workflow_id text, OUT run_id uuid, OUT ref text,
    OUT attempt integer, OUT build_id text, OUT more boolean
) RETURNS SETOF record LANGUAGE plpgsql SET enable_seqscan = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH t AS (
        DELETE FROM tasks WHERE ctid = (
            SELECT f.ctid FROM tasks f
            WHERE f.task_queue = p_queue AND f.namespace = p_ns
              AND (f.kind = 'activity') = p_activity
              AND coalesce(f.build_id, '') = coalesce(p_build, '')
            ORDER BY f.id LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING *)
    SELECT t.id, t.kind, t.workflow_id, t.run_id, t.ref, t.attempt, t.build_id, (
        SELECT o.id FROM tasks o
        WHERE o.task_queue = p_queue AND o.namespace = p_ns
          AND (o.kind = 'activity') = p_activity
          AND coalesce(o.build_id, '') = coalesce(p_build, '') AND o.id <> t.id
        ORDER BY o.id LIMIT 1) IS NOT NULL
    FROM t;
END;
$$;


-- The write as servers of an earlier release call it.
CREATE FUNCTION baton_write_run_v4(
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
    p_expect_xmin bigint, p_ns_xmin bigint, p_fail_updates jsonb, p_view_since bigint
) RETURNS jsonb LANGUAGE sql AS $$
    SELECT f.view FROM baton_write_run_v5(p_ns, p_wid, p_rid, p_event_ids, p_event_types,
        p_time, p_version, p_event_attrs, p_timer_del_kinds, p_timer_del_refs, p_timer_kinds,
        p_timer_refs, p_timer_attempts, p_timer_fire, p_task_kinds, p_task_queues, p_task_refs,
        p_task_attempts, p_task_builds, p_status, p_paused, p_next_event_id,
        p_last_write_version, p_close_time, p_continued_to, p_wt_scheduled, p_wt_started,
        p_wt_attempt, p_wt_started_at, p_wt_identity, p_last_completed_wt, p_result, p_failure,
        p_upsert_current, p_notify_key, p_closed, p_activity_deletes, p_closing,
        p_activity_inserts, p_is_new, p_pending_updates, p_replicated, p_buffer_inserts,
        p_buffered_seq, p_buffered_flushed_seq, p_buffer_delete_upto, p_request_ids,
        p_request_kinds, p_signal_count, p_sticky_queue, p_sticky_timeout_s, p_new_execution,
        p_versioning, p_expect_xmin, p_ns_xmin, p_fail_updates, p_view_since, NULL, NULL,
        NULL) f
$$;

-- Queue-like tables churn: vacuum them early so scans never wade through
-- dead rows, and never truncate them, so a table vacuumed nearly empty keeps
-- the size it grows to and no plan takes a sequential scan of it for cheap
-- (0020).
ALTER TABLE tasks SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500,
                       autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 500,
                       vacuum_truncate = false);
ALTER TABLE timers SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 500,
                        autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 500,
                        vacuum_truncate = false);
ALTER TABLE activities SET (autovacuum_vacuum_scale_factor = 0,
                            autovacuum_vacuum_threshold = 500,
                            autovacuum_analyze_scale_factor = 0,
                            autovacuum_analyze_threshold = 500,
                            vacuum_truncate = false);
ALTER TABLE outbox SET (vacuum_truncate = false);

-- Replication: the publisher's ack level and the applier's per-partition
-- progress, each written in the same transaction as the work it records.
CREATE TABLE replication_ack (
    region          text        PRIMARY KEY,
    last_outbox_id  bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE replication_progress (
    source_region     text        NOT NULL,
    topic             text        NOT NULL,
    kafka_partition   integer     NOT NULL,
    next_offset       bigint      NOT NULL,
    last_source_time  timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_region, topic, kafka_partition)
);

-- Servers end their long-polls when a namespace changes (a failover), so
-- workers learn at once that they must follow it to its new region; the
-- publisher reads again which namespaces are replicated (created, or a region
-- added or removed).
CREATE FUNCTION baton_notify_namespace_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('baton_namespaces_v1', NEW.name);
    RETURN NULL;
END;
$$;

CREATE TRIGGER namespaces_notify_v1 AFTER UPDATE ON namespaces
    FOR EACH ROW WHEN (OLD.active_region IS DISTINCT FROM NEW.active_region
                       OR OLD.state IS DISTINCT FROM NEW.state
                       OR OLD.regions IS DISTINCT FROM NEW.regions)
    EXECUTE FUNCTION baton_notify_namespace_v1();

CREATE TRIGGER namespaces_notify_insert_v1 AFTER INSERT ON namespaces
    FOR EACH ROW EXECUTE FUNCTION baton_notify_namespace_v1();

-- The namespace fence (0023): a write to a run of a namespace holds the
-- namespace's advisory lock shared until it commits; a change to the
-- namespace's row takes it exclusively (the trigger below), so a failover
-- waits for the writes in flight and a write after it reads the changed
-- row. The key is the one appliers (shared) and a promotion (exclusive)
-- take. Unlike a row lock, the shared lock writes nothing: no WAL record,
-- no multixact for writes side by side.
CREATE FUNCTION baton_namespace_shared_v1(p_name text)
RETURNS TABLE (ns namespaces, row_xmin bigint) LANGUAGE plpgsql ROWS 1 AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('baton-ns:' || p_name, 0));
    -- a statement of its own: its snapshot is taken once the lock is granted,
    -- so a change that committed while this waited is seen
    RETURN QUERY SELECT n, n.xmin::text::bigint FROM namespaces n WHERE n.name = p_name;
END;
$$;

-- The exclusive lock, taken by every change of a namespace before its row
-- (0024): the trigger runs on the row already locked, too late to keep the
-- order "fence, then row"; it takes it again as a guard.
CREATE FUNCTION baton_namespace_exclusive_v1(p_name text) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtextextended('baton-ns:' || p_name, 0))
$$;

CREATE FUNCTION baton_namespace_fence_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM baton_namespace_exclusive_v1(OLD.name);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER namespaces_fence_v1 BEFORE UPDATE OR DELETE ON namespaces
    FOR EACH ROW EXECUTE FUNCTION baton_namespace_fence_v1();

-- What a new active region needs besides history, and what replication
-- could not apply (0003).

CREATE TABLE activity_progress (
    namespace           text        NOT NULL,
    workflow_id         text        NOT NULL,
    run_id              uuid        NOT NULL,
    scheduled_event_id  bigint      NOT NULL,
    attempt             integer     NOT NULL,
    state               text        NOT NULL,
    heartbeat_details   jsonb,
    last_failure        jsonb,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- when the next attempt is due (a retry waiting out its backoff)
    scheduled_time      timestamptz,
    PRIMARY KEY (namespace, workflow_id, run_id, scheduled_event_id)
) WITH (vacuum_truncate = false);

CREATE TABLE replication_conflicts (
    id                bigserial   PRIMARY KEY,
    namespace         text        NOT NULL,
    workflow_id       text        NOT NULL,
    run_id            uuid        NOT NULL,
    -- 'local_tail': this region's events that lost to a higher version;
    -- 'rejected_batch': a deposed region's batch this active region refused
    kind              text        NOT NULL CHECK (kind IN ('local_tail', 'rejected_batch')),
    source_region     text        NOT NULL,
    first_event_id    bigint      NOT NULL,
    last_event_id     bigint      NOT NULL,
    losing_version    bigint      NOT NULL,
    winning_version   bigint      NOT NULL,
    events            jsonb       NOT NULL,
    -- signals and starts of the losing branch, and what became of each
    reapplied         jsonb       NOT NULL DEFAULT '[]',
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX replication_conflicts_ns_idx ON replication_conflicts (namespace, created_at);

-- Losing-branch events already re-applied here, so a batch seen twice (or
-- once as a batch and once in an archive) is re-applied once.
CREATE TABLE replication_reapplied (
    namespace    text   NOT NULL,
    workflow_id  text   NOT NULL,
    run_id       uuid   NOT NULL,
    event_id     bigint NOT NULL,
    version      bigint NOT NULL,
    PRIMARY KEY (namespace, workflow_id, run_id, event_id, version)
);

CREATE TABLE replication_dlq (
    id               bigserial   PRIMARY KEY,
    source_region    text        NOT NULL,
    topic            text        NOT NULL,
    kafka_partition  integer     NOT NULL,
    kafka_offset     bigint      NOT NULL,
    namespace        text,
    workflow_id      text,
    message          jsonb       NOT NULL,
    error            text        NOT NULL,
    attempts         integer     NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, kafka_partition, kafka_offset)
);

CREATE INDEX replication_dlq_created_idx ON replication_dlq (created_at);

-- Activity progress (a retry's attempt, a heartbeat's details) changes no
-- history; for a namespace with standbys it rides the outbox too.
CREATE FUNCTION baton_outbox_activity_progress_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (namespace, workflow_id, run_id, first_event_id, last_event_id,
                        version, kind, ref)
    SELECT NEW.namespace, NEW.workflow_id, NEW.run_id, 0, 0, n.failover_version, 'progress',
           NEW.scheduled_event_id
    FROM namespaces n
    WHERE n.name = NEW.namespace AND cardinality(n.regions) > 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER activities_progress_v1 AFTER UPDATE ON activities
    FOR EACH ROW WHEN (OLD.attempt IS DISTINCT FROM NEW.attempt
                       OR OLD.heartbeat_details IS DISTINCT FROM NEW.heartbeat_details)
    EXECUTE FUNCTION baton_outbox_activity_progress_v1();

-- Backfills of a region added to a namespace, resumable from a cursor (0004).

CREATE TABLE namespace_backfills (
    namespace           text        NOT NULL,
    region              text        NOT NULL,
    state               text        NOT NULL CHECK (state IN ('enqueueing', 'shipping', 'done')),
    cursor_workflow_id  text        NOT NULL DEFAULT '',
    cursor_run_id       uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    enqueued            bigint      NOT NULL DEFAULT 0,
    total               bigint      NOT NULL,
    started_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, region)
);

-- The applier's plain messages in one round trip (0017): each message none of
-- the failover-version rules concern, up to the first that one does.
CREATE FUNCTION baton_apply_plain_v1(p_region text, p_msgs jsonb, p_skip int)
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

-- A partition's Kafka batch in one statement (its own transaction): the
-- partition's progress row locked (and created on its first batch), the
-- records below its stored offset skipped, the namespaces of the rest held
-- shared (lock_namespaces_for_apply), the fresh messages applied by
-- baton_apply_plain_v1 up to the first that is for the applier's rules, and
-- the offset after the last one applied stored with them. Returns how many
-- of the records are done (skipped or applied): the applier takes the rest
-- in a transaction of its own, message by message where it must. p_offsets
-- are the records' offsets, ascending.
CREATE FUNCTION baton_apply_batch_v1(p_region text, p_source text, p_topic text,
                                     p_partition int, p_offsets bigint[], p_msgs jsonb)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    stored bigint;
    skip int;
    done int;
BEGIN
    SELECT next_offset INTO stored FROM replication_progress
    WHERE source_region = p_source AND topic = p_topic AND kafka_partition = p_partition
    FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO replication_progress (source_region, topic, kafka_partition, next_offset)
        VALUES (p_source, p_topic, p_partition, 0)
        ON CONFLICT DO NOTHING;
        SELECT next_offset INTO stored FROM replication_progress
        WHERE source_region = p_source AND topic = p_topic AND kafka_partition = p_partition
        FOR UPDATE;
    END IF;
    SELECT count(*) INTO skip FROM unnest(p_offsets) AS o WHERE o < stored;
    IF skip = cardinality(p_offsets) THEN
        RETURN skip;  -- another applier got there first, or this one reads again
    END IF;
    PERFORM count(pg_advisory_xact_lock_shared(hashtextextended('baton-ns:' || ns.n, 0)))
    FROM (SELECT DISTINCT coalesce(t.value ->> 'namespace', '') AS n
          FROM jsonb_array_elements(p_msgs) WITH ORDINALITY AS t(value, i)
          WHERE t.i > skip ORDER BY 1) AS ns;
    done := skip + baton_apply_plain_v1(p_region, p_msgs, skip);
    IF done > skip THEN
        INSERT INTO replication_progress (source_region, topic, kafka_partition, next_offset,
                                          last_source_time, updated_at)
        VALUES (p_source, p_topic, p_partition, p_offsets[done] + 1,
                (p_msgs -> (done - 1) ->> 'source_time')::timestamptz, now())
        ON CONFLICT (source_region, topic, kafka_partition) DO UPDATE
        SET next_offset = greatest(replication_progress.next_offset, EXCLUDED.next_offset),
            last_source_time = coalesce(EXCLUDED.last_source_time,
                                        replication_progress.last_source_time),
            updated_at = now();
    END IF;
    RETURN done;
END;
$$;
