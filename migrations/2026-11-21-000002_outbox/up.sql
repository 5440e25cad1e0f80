-- The transactional outbox: events for the external data platform, written in the same
-- transaction as the order change that caused them, delivered later by the relay.
CREATE TABLE outbox_events (
    -- write order; events of one order are delivered in this order
    id              BIGSERIAL PRIMARY KEY,
    event_id        UUID NOT NULL UNIQUE,
    event_type      TEXT NOT NULL CHECK (event_type IN ('order.paid', 'order.cancelled')),
    order_id        BIGINT NOT NULL,
    -- the exact body POSTed to the platform
    payload         JSONB NOT NULL,
    status          TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DELIVERED', 'DEAD')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      TEXT,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ,
    CHECK ((status = 'DELIVERED') = (delivered_at IS NOT NULL))
);
CREATE INDEX outbox_events_due_idx ON outbox_events (next_attempt_at, id) WHERE status = 'PENDING';
CREATE INDEX outbox_events_order_idx ON outbox_events (order_id, id);
CREATE INDEX outbox_events_status_idx ON outbox_events (status, id);
