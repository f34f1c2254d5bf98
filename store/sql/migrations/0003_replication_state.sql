-- 0003: what a new active region needs besides history, and what replication
-- could not apply.
--
-- * The outbox carries namespace changes and activity progress as well as
--   history batches, so a standby learns of a namespace the moment it is
--   created or moved, and an activity in flight is retried after a failover
--   with its last attempt number and heartbeat details.
-- * A standby keeps the progress of pending activities in activity_progress.
-- * A divergent branch (after a forced failover) is archived, never dropped.
-- * A message that keeps failing to apply goes to the dead-letter table.

ALTER TABLE outbox
    ADD COLUMN kind text NOT NULL DEFAULT 'history'
        CHECK (kind IN ('history', 'progress', 'namespace', 'conflict')),
    ADD COLUMN ref bigint;

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
    PRIMARY KEY (namespace, workflow_id, run_id, scheduled_event_id)
);

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
