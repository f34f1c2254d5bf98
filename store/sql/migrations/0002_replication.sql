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
