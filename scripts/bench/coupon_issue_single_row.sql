-- FROZEN copy of the coupon-issue pgbench script, written by scripts/bench/pgbench_scripts.py
-- from crates/adapters/postgres/src/coupon.rs (ISSUE_SQL) as of commit ed3afdc (before
-- coupon slots): the SINGLE-ROW figure of issue 11 (every issue updates the one counter
-- row). Keep it as it is. Once `coupons` is a view over coupon_definitions, bench.sh
-- runs it on coupon_definitions with a temporary issued_quantity column.
-- First-come-first-served issuing of one coupon, one statement (autocommit),
-- each transaction for a user never seen before: first_user + client + k * nclients.
\set n :n + 1
\set uid :first_user + :client_id + :n * :nclients
WITH claimed AS (
    UPDATE coupons
       SET issued_quantity = issued_quantity + 1
     WHERE id = :coupon::int8
       AND (total_quantity IS NULL OR issued_quantity < total_quantity)
       AND valid_from <= :p_now::timestamptz AND :p_now::timestamptz < valid_until
       AND deactivated_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM user_coupons WHERE coupon_id = :coupon::int8 AND user_id = :uid::int8)
 RETURNING id, name, discount_type, discount_value, min_order_amount, total_quantity,
           issued_quantity, valid_from, valid_until, max_discount, deactivated_at
), owned AS (
    INSERT INTO user_coupons (coupon_id, user_id, status, issued_at)
    SELECT id, :uid::int8, 'AVAILABLE', :p_now::timestamptz FROM claimed
 RETURNING id AS user_coupon_id, issued_at
)
SELECT claimed.*, owned.user_coupon_id, owned.issued_at FROM claimed, owned;
