-- 0010: schedules. A schedule is a system workflow (its state is its history);
-- this region-local table only keeps each schedule's last reported counters
-- for the region's metrics (not replicated: the active region writes it).
CREATE TABLE schedule_stats (
    namespace    text        NOT NULL,
    schedule_id  text        NOT NULL,
    counters     jsonb       NOT NULL,
    running      integer     NOT NULL,
    paused       boolean     NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, schedule_id)
);
