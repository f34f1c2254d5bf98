-- 0002: replication through Kafka: the publisher's ack level and the
-- applier's per-partition progress, each written in the same transaction as
-- the work it records.

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
-- workers learn at once that they must follow it to its new region.
CREATE FUNCTION baton_notify_namespace_v1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('baton_namespaces_v1', NEW.name);
    RETURN NULL;
END;
$$;

CREATE TRIGGER namespaces_notify_v1 AFTER UPDATE ON namespaces
    FOR EACH ROW WHEN (OLD.active_region IS DISTINCT FROM NEW.active_region
                       OR OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION baton_notify_namespace_v1();
