DROP TRIGGER outbox_events_notify ON outbox_events;
CREATE TRIGGER outbox_events_notify
    AFTER INSERT OR UPDATE OF status ON outbox_events
    FOR EACH ROW WHEN (NEW.status = 'PENDING')
    EXECUTE FUNCTION outbox_events_notify();
