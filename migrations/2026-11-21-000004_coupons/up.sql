-- Coupons, the users who own them, and the users' notification inbox.

CREATE TABLE coupons (
    id               BIGSERIAL PRIMARY KEY,
    name             TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    discount_type    TEXT NOT NULL CHECK (discount_type IN ('FIXED', 'PERCENT')),
    -- won off (FIXED) or percent off (PERCENT)
    discount_value   BIGINT NOT NULL,
    min_order_amount BIGINT NOT NULL DEFAULT 0 CHECK (min_order_amount >= 0),
    -- NULL: unlimited
    total_quantity   BIGINT CHECK (total_quantity >= 1),
    -- owners so far (first come first served and admin issue_to alike)
    issued_quantity  BIGINT NOT NULL DEFAULT 0 CHECK (issued_quantity >= 0),
    -- usable when valid_from <= now < valid_until
    valid_from       TIMESTAMPTZ NOT NULL,
    valid_until      TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    CHECK (valid_from < valid_until),
    -- passes when total_quantity IS NULL (unlimited)
    CHECK (issued_quantity <= total_quantity),
    CHECK ((discount_type = 'FIXED' AND discount_value BETWEEN 1 AND 100000000)
        OR (discount_type = 'PERCENT' AND discount_value BETWEEN 1 AND 100))
);

CREATE TABLE user_coupons (
    id        BIGSERIAL PRIMARY KEY,
    coupon_id BIGINT NOT NULL REFERENCES coupons (id),
    user_id   BIGINT NOT NULL CHECK (user_id > 0),
    -- EXPIRED is derived from the coupon's window when read, never stored
    status    TEXT NOT NULL CHECK (status IN ('AVAILABLE', 'USED')),
    issued_at TIMESTAMPTZ NOT NULL,
    used_at   TIMESTAMPTZ,
    -- the order that uses it (no FK: orders live in their own slice)
    order_id  BIGINT CHECK (order_id > 0),
    -- a user owns a coupon at most once
    UNIQUE (coupon_id, user_id),
    CHECK ((status = 'USED') = (order_id IS NOT NULL)),
    CHECK ((status = 'USED') = (used_at IS NOT NULL))
);
-- one order uses at most one coupon
CREATE UNIQUE INDEX user_coupons_order_key ON user_coupons (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX user_coupons_user_idx ON user_coupons (user_id, id DESC);

-- The inbox: the row IS the notification. A future sender (push, e-mail) relays rows
-- after they are committed; nothing outside the database runs in the writing transaction.
CREATE TABLE notifications (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL CHECK (user_id > 0),
    kind       TEXT NOT NULL CHECK (kind IN ('COUPON_ISSUED')),
    message    TEXT NOT NULL,
    coupon_id  BIGINT REFERENCES coupons (id),
    created_at TIMESTAMPTZ NOT NULL,
    read_at    TIMESTAMPTZ,
    CHECK ((kind = 'COUPON_ISSUED') = (coupon_id IS NOT NULL))
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
-- a user is told about one issued coupon once
CREATE UNIQUE INDEX notifications_coupon_issued_key ON notifications (user_id, coupon_id)
    WHERE kind = 'COUPON_ISSUED';
