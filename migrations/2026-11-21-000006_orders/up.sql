-- Orders, their lines (priced when placed) and payments from the balance.
CREATE TABLE orders (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT NOT NULL CHECK (user_id > 0),
    status        TEXT NOT NULL CHECK (status IN ('PENDING', 'PAID', 'CANCELLED')),
    subtotal      BIGINT NOT NULL CHECK (subtotal >= 0),
    discount      BIGINT NOT NULL CHECK (discount >= 0 AND discount <= subtotal),
    total         BIGINT NOT NULL CHECK (total = subtotal - discount),
    coupon_id     BIGINT,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    paid_at       TIMESTAMPTZ,
    cancelled_at  TIMESTAMPTZ,
    cancel_reason TEXT CHECK (cancel_reason IN ('USER_REQUEST', 'EXPIRED')),
    CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL)),
    CHECK ((cancelled_at IS NULL) = (cancel_reason IS NULL)),
    CHECK (status <> 'PAID' OR paid_at IS NOT NULL)
);
CREATE INDEX orders_user_idx ON orders (user_id, id DESC);
-- the expiry sweep
CREATE INDEX orders_pending_expiry_idx ON orders (expires_at) WHERE status = 'PENDING';
-- popular products: paid orders by payment time
CREATE INDEX orders_paid_at_idx ON orders (paid_at) INCLUDE (id) WHERE status = 'PAID';

CREATE TABLE order_lines (
    order_id   BIGINT NOT NULL REFERENCES orders (id),
    line_no    SMALLINT NOT NULL CHECK (line_no BETWEEN 1 AND 50),
    product_id BIGINT NOT NULL REFERENCES products (id),
    name       TEXT NOT NULL,
    unit_price BIGINT NOT NULL CHECK (unit_price > 0),
    quantity   INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    subtotal   BIGINT NOT NULL CHECK (subtotal = unit_price * quantity),
    PRIMARY KEY (order_id, line_no) INCLUDE (product_id, quantity),
    UNIQUE (order_id, product_id)
);

CREATE TABLE payments (
    id          BIGSERIAL PRIMARY KEY,
    -- an order is paid at most once
    order_id    BIGINT NOT NULL UNIQUE REFERENCES orders (id),
    user_id     BIGINT NOT NULL CHECK (user_id > 0),
    amount      BIGINT NOT NULL CHECK (amount >= 0),
    status      TEXT NOT NULL CHECK (status IN ('PAID', 'REFUNDED')),
    paid_at     TIMESTAMPTZ NOT NULL,
    refunded_at TIMESTAMPTZ,
    CHECK ((status = 'REFUNDED') = (refunded_at IS NOT NULL))
);
