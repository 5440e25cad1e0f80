-- Coupon caps and deactivation (issue 13).
--
-- max_discount: the most won a PERCENT coupon takes off (NULL: no cap); a FIXED coupon
-- has none. deactivated_at: when an admin deactivated the coupon (NULL: active); a
-- deactivated coupon is neither issued nor used again. Both are NULL for every
-- existing coupon, which keeps its meaning.
ALTER TABLE coupons
    ADD COLUMN max_discount BIGINT CHECK (max_discount BETWEEN 1 AND 100000000),
    ADD COLUMN deactivated_at TIMESTAMPTZ,
    ADD CONSTRAINT coupons_max_discount_percent_only
        CHECK (max_discount IS NULL OR discount_type = 'PERCENT');

-- notifications.read_at (the read flag) exists since 2026-11-21-000004_coupons.
