-- Foundation: balances (points), their history, charges through the payment gateway,
-- and the idempotency keys every state-changing POST goes through.

-- Rows of append-only tables can be inserted, never changed or removed.
CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TABLE balances (
    user_id        BIGINT PRIMARY KEY CHECK (user_id > 0),
    balance        BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    -- charges opened but not settled; counted against the charge limit
    pending_credit BIGINT NOT NULL DEFAULT 0 CHECK (pending_credit >= 0),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE balance_charges (
    id                     BIGSERIAL PRIMARY KEY,
    user_id                BIGINT NOT NULL CHECK (user_id > 0),
    amount                 BIGINT NOT NULL CHECK (amount BETWEEN 1 AND 10000000),
    payment_method         TEXT NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('PENDING', 'APPROVED', 'DECLINED')),
    gateway_transaction_id TEXT,
    decline_reason         TEXT,
    balance_after          BIGINT,
    created_at             TIMESTAMPTZ NOT NULL,
    settled_at             TIMESTAMPTZ,
    CHECK ((status = 'APPROVED') = (gateway_transaction_id IS NOT NULL AND balance_after IS NOT NULL)),
    CHECK ((status = 'PENDING') = (settled_at IS NULL))
);
CREATE INDEX balance_charges_pending_idx ON balance_charges (created_at) WHERE status = 'PENDING';

CREATE TABLE balance_history (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT NOT NULL CHECK (user_id > 0),
    kind          TEXT NOT NULL CHECK (kind IN ('CHARGE', 'PAYMENT', 'REFUND')),
    -- signed change: + for CHARGE and REFUND, - for PAYMENT
    amount        BIGINT NOT NULL CHECK (amount <> 0),
    balance_after BIGINT NOT NULL CHECK (balance_after >= 0),
    order_id      BIGINT,
    charge_id     BIGINT UNIQUE REFERENCES balance_charges (id),
    created_at    TIMESTAMPTZ NOT NULL,
    CHECK ((kind = 'PAYMENT') = (amount < 0)),
    CHECK ((kind = 'CHARGE') = (charge_id IS NOT NULL)),
    CHECK ((kind = 'CHARGE') OR (order_id IS NOT NULL))
);
CREATE INDEX balance_history_user_idx ON balance_history (user_id, id DESC);
-- an order is paid at most once and refunded at most once
CREATE UNIQUE INDEX balance_history_order_kind_key ON balance_history (order_id, kind) WHERE order_id IS NOT NULL;
CREATE TRIGGER balance_history_append_only BEFORE UPDATE OR DELETE ON balance_history
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

CREATE TABLE idempotency_keys (
    caller           TEXT NOT NULL,
    key              TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('IN_PROGRESS', 'COMPLETED')),
    response_status  SMALLINT,
    response_headers JSONB,
    response_body    BYTEA,
    -- an IN_PROGRESS row whose lease ran out (its request died) may be taken over
    locked_until     TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (caller, key),
    CHECK ((status = 'COMPLETED') = (response_status IS NOT NULL))
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
