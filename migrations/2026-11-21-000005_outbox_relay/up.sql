-- Wakes the outbox relays (LISTEN outbox_events) when an event becomes PENDING: written
-- by an order transaction (delivered on its commit) or sent again by an operator.
-- Notifications are only a hint: relays also poll, so a lost one delays, never loses.
CREATE FUNCTION outbox_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_events_notify
    AFTER INSERT OR UPDATE OF status ON outbox_events
    FOR EACH ROW WHEN (NEW.status = 'PENDING')
    EXECUTE FUNCTION outbox_events_notify();
