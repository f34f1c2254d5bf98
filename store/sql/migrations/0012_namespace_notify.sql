-- 0012: a namespace's notification also when it is created or its regions
-- change. The publisher keeps the names of the replicated namespaces (only
-- their writes leave outbox rows) and reads them again on this notification.
DROP TRIGGER namespaces_notify_v1 ON namespaces;

CREATE TRIGGER namespaces_notify_v1 AFTER UPDATE ON namespaces
    FOR EACH ROW WHEN (OLD.active_region IS DISTINCT FROM NEW.active_region
                       OR OLD.state IS DISTINCT FROM NEW.state
                       OR OLD.regions IS DISTINCT FROM NEW.regions)
    EXECUTE FUNCTION baton_notify_namespace_v1();

CREATE TRIGGER namespaces_notify_insert_v1 AFTER INSERT ON namespaces
    FOR EACH ROW EXECUTE FUNCTION baton_notify_namespace_v1();
