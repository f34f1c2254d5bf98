-- 0026: a namespace remembers the request id that created it, so a create the
-- client sent again (its answer lost to a dropped connection, then retried)
-- answers with the namespace it made instead of NAMESPACE_ALREADY_EXISTS.
-- Kept in the active region only: replication messages leave it out.
ALTER TABLE namespaces ADD COLUMN create_request_id text;
