-- Use cases decided in the domain, one transaction each (issue 10) and partial refunds
-- (issue 13).

-- Idempotency-Key records are completed inside the transaction of the work. claim_id
-- names the request across retries (kept when a retry takes over a dead request's
-- claim, new when a key is reused after it expired): a charge remembers the claim that
-- opened it, so a retry settles or replays that charge instead of opening another.
ALTER TABLE idempotency_keys ADD COLUMN claim_id UUID NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE balance_charges ADD COLUMN claim_id UUID UNIQUE;

-- Partial refunds of paid orders.
CREATE TABLE refunds (
    id         BIGSERIAL PRIMARY KEY,
    order_id   BIGINT NOT NULL REFERENCES orders (id),
    amount     BIGINT NOT NULL CHECK (amount >= 0),
    reason     TEXT CHECK (char_length(reason) <= 200),
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX refunds_order_idx ON refunds (order_id, id);

CREATE TABLE refund_items (
    refund_id  BIGINT NOT NULL REFERENCES refunds (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    PRIMARY KEY (refund_id, product_id)
);

-- What the partial refunds of an order gave back: never more than its total.
ALTER TABLE orders ADD COLUMN refunded_total BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD CONSTRAINT orders_refunded_total_check CHECK (refunded_total BETWEEN 0 AND total);

-- Every payment and every refund writes its history row, also for an amount of 0 (an
-- order made free by a coupon). A PAYMENT is never positive, a CHARGE or REFUND never
-- negative, a CHARGE never 0.
ALTER TABLE balance_history DROP CONSTRAINT balance_history_amount_check;
ALTER TABLE balance_history DROP CONSTRAINT balance_history_check;
ALTER TABLE balance_history ADD CONSTRAINT balance_history_sign_check CHECK (
    (kind = 'PAYMENT' AND amount <= 0)
    OR (kind = 'REFUND' AND amount >= 0)
    OR (kind = 'CHARGE' AND amount > 0));
-- A REFUND row of a partial refund names it.
ALTER TABLE balance_history ADD COLUMN refund_id BIGINT REFERENCES refunds (id);
ALTER TABLE balance_history ADD CONSTRAINT balance_history_refund_check CHECK (refund_id IS NULL OR kind = 'REFUND');
-- An order is paid once; each partial refund is recorded once; a cancellation refunds once.
DROP INDEX balance_history_order_kind_key;
CREATE UNIQUE INDEX balance_history_payment_key ON balance_history (order_id) WHERE kind = 'PAYMENT';
CREATE UNIQUE INDEX balance_history_refund_key ON balance_history (refund_id) WHERE refund_id IS NOT NULL;
CREATE UNIQUE INDEX balance_history_cancel_refund_key ON balance_history (order_id)
    WHERE kind = 'REFUND' AND refund_id IS NULL;

ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_event_type_check;
ALTER TABLE outbox_events ADD CONSTRAINT outbox_events_event_type_check
    CHECK (event_type IN ('order.paid', 'order.cancelled', 'order.refunded'));

-- Admin order search, newest first, by status and by creation time (user: orders_user_idx).
CREATE INDEX orders_status_idx ON orders (status, id DESC);
CREATE INDEX orders_created_idx ON orders (created_at, id);
