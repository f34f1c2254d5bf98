-- Named queries of replication. Each follows a `-- name: NAME` line.

-- name: outbox_batch
-- Outbox rows of settled transactions (older than every running one). Rows
-- are deleted once shipped, so a row that commits late is shipped later, never
-- skipped; one workflow's rows keep their order (its writes serialise on the
-- execution row), and a batch that overtakes an earlier one of its workflow is
-- a gap the applier fills from the source region.
SELECT o.id, o.namespace, o.workflow_id, o.run_id, o.first_event_id, o.last_event_id,
       o.version, o.created_at,
       cardinality(n.regions) > 1 AS replicated,
       (SELECT jsonb_agg(jsonb_build_object(
                'event_id', h.event_id, 'event_type', h.event_type, 'event_time', h.event_time,
                'version', h.version, 'attributes', h.attributes) ORDER BY h.event_id)
        FROM history_events h
        WHERE h.namespace = o.namespace AND h.workflow_id = o.workflow_id
          AND h.run_id = o.run_id
          AND h.event_id BETWEEN o.first_event_id AND o.last_event_id) AS events,
       to_jsonb(e) AS execution,
       to_jsonb(n) AS ns
FROM outbox o
JOIN executions e ON e.namespace = o.namespace AND e.workflow_id = o.workflow_id
                 AND e.run_id = o.run_id
JOIN namespaces n ON n.name = o.namespace
WHERE o.txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY o.id
LIMIT $1

-- name: set_ack_level
WITH d AS (DELETE FROM outbox WHERE id = ANY($3::bigint[]))
INSERT INTO replication_ack (region, last_outbox_id, updated_at) VALUES ($1, $2, now())
ON CONFLICT (region) DO UPDATE
SET last_outbox_id = greatest(replication_ack.last_outbox_id, EXCLUDED.last_outbox_id),
    updated_at = now()

-- name: outbox_backlog
SELECT count(*) FROM outbox

-- name: progress
SELECT kafka_partition, next_offset FROM replication_progress
WHERE source_region = $1 AND topic = $2

-- name: set_progress
INSERT INTO replication_progress (source_region, topic, kafka_partition, next_offset,
                                  last_source_time, updated_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (source_region, topic, kafka_partition) DO UPDATE
SET next_offset = EXCLUDED.next_offset, last_source_time = EXCLUDED.last_source_time,
    updated_at = now()

-- name: lock_local_execution
SELECT next_event_id FROM executions
WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3
FOR UPDATE

-- name: local_namespace
SELECT failover_version FROM namespaces WHERE name = $1

-- name: replace_namespace
-- Never moves a namespace back to an older failover version.
INSERT INTO namespaces SELECT * FROM jsonb_populate_record(NULL::namespaces, $1::jsonb)
ON CONFLICT (name) DO UPDATE SET regions = EXCLUDED.regions,
    active_region = EXCLUDED.active_region, failover_version = EXCLUDED.failover_version,
    state = EXCLUDED.state, retention_days = EXCLUDED.retention_days,
    description = EXCLUDED.description, updated_at = now()
WHERE namespaces.failover_version <= EXCLUDED.failover_version

-- name: apply_events
INSERT INTO history_events (namespace, workflow_id, run_id, event_id, event_type, event_time,
                            version, attributes)
SELECT $1, $2, $3, e.event_id, e.event_type, e.event_time, e.version, e.attributes
FROM jsonb_to_recordset($4::jsonb) AS e(event_id bigint, event_type text,
                                        event_time timestamptz, version bigint,
                                        attributes jsonb)

-- name: delete_execution
DELETE FROM executions WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3

-- name: insert_execution_json
INSERT INTO executions SELECT * FROM jsonb_populate_record(NULL::executions, $1::jsonb)

-- name: replace_current
INSERT INTO current_executions (namespace, workflow_id, run_id, status)
VALUES ($1, $2, $3, $4)
ON CONFLICT (namespace, workflow_id) DO UPDATE SET run_id = EXCLUDED.run_id,
    status = EXCLUDED.status

-- name: progress_detail
SELECT kafka_partition, next_offset, last_source_time FROM replication_progress
WHERE source_region = $1 AND topic = $2

-- name: namespace_outbox_backlog
SELECT count(*) FROM outbox WHERE namespace = $1

-- name: revert_handover
-- Only a namespace still in handover here goes back; a finished move stays.
UPDATE namespaces SET state = 'active', updated_at = now()
WHERE name = $1 AND active_region = $2 AND state = 'handover'

-- name: notify_applied
-- Long-polls on a standby (history, result) wake for replicated events too.
SELECT pg_notify('baton_history_v1', $1), pg_notify('baton_closed_v1', $1) WHERE $2
UNION ALL
SELECT pg_notify('baton_history_v1', $1), NULL WHERE NOT $2
