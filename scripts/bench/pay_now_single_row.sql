-- FROZEN copy of the pay-now pgbench script, written by scripts/bench/pgbench_scripts.py
-- from crates/adapters/postgres/src/order.rs as of commit ed3afdc (before stock slots):
-- the SINGLE-ROW figure of issue 11 (every buyer locks the one product row). Keep it
-- as it is while order.rs changes; bench.sh runs it with every order for product 1.
-- A pay-now order of one line, quantity 1, as PgOrderStore::place runs it:
-- BEGIN; the snapshot statement; (the decision); the write statement; COMMIT.
-- Run time -D: first_user users first_product products nclients n=0 p_now
-- p_expires p_event_payload. Client c's k-th order: user and product
-- (c + k * nclients) modulo users / products, as the wrk script picks them.
\set n :n + 1
\set uid :first_user + (:client_id + :n * :nclients) % :users
\set pid :first_product + (:client_id + :n * :nclients) % :products
-- the bench's products cost 1000 + id (bench.sh checks it)
\set price 1000 + :pid
BEGIN;
WITH cart AS MATERIALIZED (
    SELECT product_id, quantity::int8 AS quantity FROM cart_items
     WHERE :p_from_cart::boolean AND user_id = :uid::int8 ORDER BY product_id
), p AS MATERIALIZED (
    SELECT id, name, price, stock FROM products
     WHERE id = ANY((ARRAY[:pid::int8])::int8[]) OR id IN (SELECT product_id FROM cart)
     ORDER BY id FOR NO KEY UPDATE
), uc AS MATERIALIZED (
    SELECT id, user_id, status, issued_at, used_at, order_id FROM user_coupons
     WHERE coupon_id = NULLIF(:p_null, 'NULL')::int8 AND user_id = :uid::int8 AND (SELECT count(*) FROM p) >= 0
       FOR NO KEY UPDATE
), b AS MATERIALIZED (
    SELECT balance FROM balances
     WHERE :p_pay_now::boolean AND user_id = :uid::int8 AND (SELECT count(*) FROM uc) >= 0
       FOR NO KEY UPDATE
)
SELECT ARRAY(SELECT product_id FROM cart) AS cart_products,
       ARRAY(SELECT quantity FROM cart) AS cart_quantities,
       ARRAY(SELECT id FROM p) AS product_ids,
       ARRAY(SELECT name FROM p) AS product_names,
       ARRAY(SELECT price FROM p) AS product_prices,
       ARRAY(SELECT stock FROM p) AS product_stocks,
       uc.id AS uc_id, uc.user_id AS uc_user_id, uc.status AS uc_status,
       uc.issued_at AS uc_issued_at, uc.used_at AS uc_used_at, uc.order_id AS uc_order_id,
       c.id AS c_id, c.name AS c_name, c.discount_type AS c_discount_type,
       c.discount_value AS c_discount_value, c.min_order_amount AS c_min_order_amount,
       c.total_quantity AS c_total_quantity, c.issued_quantity AS c_issued_quantity,
       c.valid_from AS c_valid_from, c.valid_until AS c_valid_until,
       c.max_discount AS c_max_discount, c.deactivated_at AS c_deactivated_at,
       (SELECT balance FROM b) AS balance,
       nextval('orders_id_seq') AS new_order_id,
       CASE WHEN :p_pay_now::boolean THEN nextval('payments_id_seq') ELSE 0 END AS new_payment_id
  FROM (SELECT 1) one
  LEFT JOIN uc ON true
  LEFT JOIN coupons c ON c.id = NULLIF(:p_null, 'NULL')::int8 \gset s_
-- the decision: debit the price
\set balance_after :s_balance - :price
\set history_amount 0 - :price
WITH ins_order AS (
    INSERT INTO orders (id, user_id, status, subtotal, discount, total, coupon_id, created_at,
                        expires_at, paid_at, cancelled_at, cancel_reason, refunded_total)
    SELECT :s_new_order_id::int8, :uid::int8, :p_status::text, :price::int8, :p_discount::int8, :price::int8, NULLIF(:p_null, 'NULL')::int8, :p_now::timestamptz,
           :p_expires::timestamptz, :p_now::timestamptz, NULLIF(:p_null, 'NULL')::timestamptz, NULLIF(:p_null, 'NULL')::text, :p_refunded_total::int8
     WHERE :p_is_new::boolean
 RETURNING id
), ins_lines AS (
    INSERT INTO order_lines (order_id, line_no, product_id, name, unit_price, quantity, subtotal)
    SELECT :s_new_order_id::int8, v.n, v.product_id, v.name, v.unit_price, v.quantity, v.subtotal
      FROM unnest(:s_product_ids::int8[], :s_product_names::text[], :s_product_prices::int8[],
                  :p_line_quantities::int4[], :s_product_prices::int8[])
           WITH ORDINALITY AS v(product_id, name, unit_price, quantity, subtotal, n)
     WHERE :p_is_new::boolean
), upd_order AS (
    UPDATE orders
       SET status = :p_status::text, paid_at = :p_now::timestamptz, cancelled_at = NULLIF(:p_null, 'NULL')::timestamptz,
           cancel_reason = NULLIF(:p_null, 'NULL')::text, refunded_total = :p_refunded_total::int8
     WHERE id = :s_new_order_id::int8 AND NOT :p_is_new::boolean AND status = NULLIF(:p_null, 'NULL')::text
 RETURNING id
), stock AS (
    UPDATE products AS p
       SET stock = p.stock + v.delta, updated_at = :p_now::timestamptz
      FROM unnest(:s_product_ids::int8[], :p_stock_deltas::int8[]) AS v(id, delta)
     WHERE p.id = v.id AND p.stock + v.delta >= 0
 RETURNING p.id
), coupon AS (
    UPDATE user_coupons
       SET status = :p_coupon_status::text, order_id = NULLIF(:p_null, 'NULL')::int8, used_at = NULLIF(:p_null, 'NULL')::timestamptz
     WHERE id = NULLIF(:p_null, 'NULL')::int8 AND status = :p_coupon_from::text
 RETURNING id
), balance AS (
    INSERT INTO balances (user_id, balance, updated_at)
    SELECT :uid::int8, :balance_after::int8, :p_now::timestamptz WHERE :p_has_balance::boolean
        ON CONFLICT (user_id) DO UPDATE
       SET balance = EXCLUDED.balance, updated_at = EXCLUDED.updated_at
     WHERE balances.balance = :s_balance::int8
 RETURNING user_id
), refund AS (
    INSERT INTO refunds (id, order_id, amount, reason, created_at)
    SELECT NULLIF(:p_null, 'NULL')::int8, :s_new_order_id::int8, :p_refund_amount::int8, NULLIF(:p_null, 'NULL')::text, :p_now::timestamptz
     WHERE NULLIF(:p_null, 'NULL')::int8 IS NOT NULL
 RETURNING id
), refund_items AS (
    INSERT INTO refund_items (refund_id, product_id, quantity)
    SELECT NULLIF(:p_null, 'NULL')::int8, v.product_id, v.quantity
      FROM unnest(:p_refund_products::int8[], :p_refund_quantities::int4[]) AS v(product_id, quantity)
     WHERE NULLIF(:p_null, 'NULL')::int8 IS NOT NULL
), history AS (
    INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, refund_id, created_at)
    SELECT :uid::int8, :p_history_kind::text, :history_amount::int8, :balance_after::int8, :s_new_order_id::int8, NULLIF(:p_null, 'NULL')::int8, :p_now::timestamptz
     WHERE :p_has_balance::boolean
), payment AS (
    INSERT INTO payments (id, order_id, user_id, amount, status, paid_at, refunded_at)
    SELECT :s_new_payment_id::int8, :s_new_order_id::int8, :uid::int8, :price::int8, :p_payment_status::text, :p_now::timestamptz,
           NULLIF(:p_null, 'NULL')::timestamptz
     WHERE :s_new_payment_id::int8 IS NOT NULL
        ON CONFLICT (order_id) DO UPDATE
       SET status = EXCLUDED.status, refunded_at = EXCLUDED.refunded_at
), sold AS (
    INSERT INTO product_sales (order_id, product_id, quantity, paid_at)
    SELECT :s_new_order_id::int8, v.product_id, v.quantity, :p_now::timestamptz
      FROM unnest(:s_product_ids::int8[], :p_sales_quantities::int4[]) AS v(product_id, quantity)
     WHERE v.quantity > 0
        ON CONFLICT (order_id, product_id) DO UPDATE SET quantity = EXCLUDED.quantity
), unsold AS (
    DELETE FROM product_sales
     WHERE order_id = :s_new_order_id::int8
       AND product_id IN (SELECT v.product_id
                            FROM unnest(:s_product_ids::int8[], :p_sales_quantities::int4[])
                                 AS v(product_id, quantity)
                           WHERE v.quantity = 0)
), cart AS (
    DELETE FROM cart_items WHERE user_id = :uid::int8 AND product_id = ANY(:s_product_ids::int8[])
), event AS (
    INSERT INTO outbox_events (event_id, event_type, order_id, payload, next_attempt_at, created_at)
    SELECT (gen_random_uuid())::uuid, :p_event_type::text, :s_new_order_id::int8, :p_event_payload::jsonb, :p_now::timestamptz, :p_now::timestamptz
     WHERE (gen_random_uuid())::uuid IS NOT NULL
), idempotency AS (
    UPDATE idempotency_keys
       SET status = 'COMPLETED', response_status = NULLIF(:p_null, 'NULL')::int2,
           response_headers = NULLIF(:p_null, 'NULL')::jsonb, response_body = NULLIF(:p_null, 'NULL')::bytea
     WHERE caller = NULLIF(:p_null, 'NULL')::text AND key = NULLIF(:p_null, 'NULL')::text AND claim_id = NULLIF(:p_null, 'NULL')::uuid
       AND status = 'IN_PROGRESS'
 RETURNING 1
)
SELECT (SELECT count(*) FROM ins_order) + (SELECT count(*) FROM upd_order) AS orders,
       (SELECT count(*) FROM stock) AS stock,
       (SELECT count(*) FROM coupon) AS coupons,
       (SELECT count(*) FROM balance) AS balances,
       (SELECT count(*) FROM idempotency) AS idempotency;
COMMIT;
