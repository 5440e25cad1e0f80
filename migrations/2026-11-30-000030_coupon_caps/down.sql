ALTER TABLE coupons
    DROP CONSTRAINT coupons_max_discount_percent_only,
    DROP COLUMN deactivated_at,
    DROP COLUMN max_discount;
