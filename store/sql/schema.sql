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
    updated_at        timestamptz NOT NULL DEFAULT now()
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
    -- events that arrived while a workflow task was started; written after it
    buffered_events           jsonb       NOT NULL DEFAULT '[]',
    result                    jsonb,
    failure                   jsonb,
    build_id                  text,
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, workflow_id, run_id)
);

CREATE INDEX executions_list_idx ON executions (namespace, start_time DESC);
CREATE INDEX executions_status_idx ON executions (namespace, status, start_time DESC);

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

-- The dispatch queue: one row per workflow, activity or query task waiting
-- for a poller.
CREATE TABLE tasks (
    id           bigserial   PRIMARY KEY,
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

CREATE INDEX tasks_poll_idx ON tasks (namespace, task_queue, kind, id);
CREATE INDEX tasks_run_idx ON tasks (namespace, workflow_id, run_id);

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
    PRIMARY KEY (namespace, workflow_id, update_id)
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
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Wake long-polls only when the inserting transaction commits.
CREATE FUNCTION baton_notify_task_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- query tasks travel on the workflow-task long-poll
    PERFORM pg_notify('baton_tasks_v1', NEW.namespace || '/'
        || CASE WHEN NEW.kind = 'query' THEN 'workflow' ELSE NEW.kind END || '/' || NEW.task_queue);
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_notify_v1 AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION baton_notify_task_v1();

CREATE FUNCTION baton_notify_timer_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('baton_timers_v1', extract(epoch FROM NEW.fire_at)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER timers_notify_v1 AFTER INSERT ON timers
    FOR EACH ROW EXECUTE FUNCTION baton_notify_timer_v1();
