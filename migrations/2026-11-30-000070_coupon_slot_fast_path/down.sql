DROP FUNCTION try_coupon_slot(BIGINT);
