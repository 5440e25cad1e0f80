-- Delivery (issue 12): order.refunded events, a log of every delivery attempt kept with
-- its event, DELIVERED events that show when they were delivered instead of the claim's
-- lease, and an index for the retention job.
ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_event_type_check;
ALTER TABLE outbox_events ADD CONSTRAINT outbox_events_event_type_check
    CHECK (event_type IN ('order.paid', 'order.cancelled', 'order.refunded'));

-- One row per delivery attempt, written with the attempt's outcome. The attempt number
-- an operator sees is the row's rank within its event (ids only grow), so it keeps
-- counting across operator retries. Deleted with the event (retention).
CREATE TABLE outbox_attempts (
    id          BIGSERIAL PRIMARY KEY,
    outbox_id   BIGINT NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
    started_at  TIMESTAMPTZ NOT NULL,
    duration_ms BIGINT NOT NULL CHECK (duration_ms >= 0),
    -- null: no answer (timeout, refused connection)
    status_code INTEGER CHECK (status_code BETWEEN 100 AND 599),
    -- null: acknowledged
    error       TEXT
);
CREATE INDEX outbox_attempts_event_idx ON outbox_attempts (outbox_id, id);

-- A DELIVERED event's next_attempt_at is its delivery time, not the lease of the claim
-- that delivered it.
UPDATE outbox_events SET next_attempt_at = delivered_at
 WHERE status = 'DELIVERED' AND next_attempt_at > delivered_at;

-- The retention job finds old DELIVERED events without reading the others.
CREATE INDEX outbox_events_delivered_idx ON outbox_events (delivered_at) WHERE status = 'DELIVERED';
