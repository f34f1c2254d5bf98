-- 0004: backfills of a region added to a namespace, resumable from a cursor.

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
