-- The data of `make bench`, on a freshly migrated database (ids start at 1).
--
-- The rows below are consistent by construction, so their foreign-key checks (one per
-- row, millions) are skipped when the user may: loading takes about half the time.
DO $$ BEGIN SET session_replication_role = replica;
EXCEPTION WHEN insufficient_privilege THEN NULL; END $$;
--
-- 1,000 products: product g costs 1000 + g won (the pgbench order script relies on
-- it) with 1,000,000,000 in stock (no bench run empties one): in products.stock before
-- stock slots (issue 11), in 8 slots of 125,000,000 after (stock::SLOTS, as the
-- migration and the admin endpoint make them).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
                WHERE table_name = 'products' AND column_name = 'stock') THEN
        INSERT INTO products (name, price, stock, created_at, updated_at)
        SELECT 'bench product ' || g, 1000 + g, 1000000000, now(), now()
          FROM generate_series(1, 1000) g;
    ELSE
        INSERT INTO products (name, price, created_at, updated_at)
        SELECT 'bench product ' || g, 1000 + g, now(), now() FROM generate_series(1, 1000) g;
        INSERT INTO stock_slots (product_id, slot, units)
        SELECT p.id, s, 125000000 FROM products p CROSS JOIN generate_series(0, 7) s;
    END IF;
END $$;

-- 1,000,000 orders over the last 60 days, ids in time order as in production (the
-- admin search's created range and its ORDER BY id DESC then disagree, the hard case),
-- users 1..5000 (200 orders each): 70% PAID, 10% CANCELLED after payment (refunded),
-- 20% PENDING. Pending orders expire tomorrow, so the server's expiry job leaves them
-- alone during the bench. One line each: 1,000,000 order lines, 700,000 sold.
INSERT INTO orders (user_id, status, subtotal, discount, total, created_at, expires_at,
                    paid_at, cancelled_at, cancel_reason)
SELECT 1 + g % 5000,
       CASE WHEN g % 10 < 7 THEN 'PAID' WHEN g % 10 = 7 THEN 'CANCELLED' ELSE 'PENDING' END,
       t.subtotal, 0, t.subtotal, t.at, now() + interval '1 day',
       CASE WHEN g % 10 < 8 THEN t.at END,
       CASE WHEN g % 10 = 7 THEN t.at + interval '1 hour' END,
       CASE WHEN g % 10 = 7 THEN 'USER_REQUEST' END
  FROM generate_series(1, 1000000) g,
       LATERAL (SELECT now() - interval '60 days' + g * interval '5184 milliseconds' AS at,
                       (1000 + ((g * 7 + 131) % 1000) + 1) * (1 + g % 3) AS subtotal) t;

INSERT INTO order_lines (order_id, line_no, product_id, name, unit_price, quantity, subtotal)
SELECT o.id, 1, p.id, p.name, p.price, 1 + o.id % 3, p.price * (1 + o.id % 3)
  FROM orders o JOIN products p ON p.id = ((o.id * 7 + 131) % 1000) + 1;

INSERT INTO payments (order_id, user_id, amount, status, paid_at, refunded_at)
SELECT id, user_id, total, CASE WHEN status = 'CANCELLED' THEN 'REFUNDED' ELSE 'PAID' END,
       paid_at, cancelled_at
  FROM orders WHERE paid_at IS NOT NULL;

INSERT INTO product_sales (order_id, product_id, quantity, paid_at)
SELECT l.order_id, l.product_id, l.quantity, o.paid_at
  FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.status = 'PAID';

-- The buyers of the order scenarios: users 1..10,000, each with a balance that no run
-- uses up (an order costs about 1,500).
INSERT INTO balances (user_id, balance, updated_at)
SELECT g, 1000000000, now() FROM generate_series(1, 10000) g;

-- Two FCFS coupons for the drop scenario (one for HTTP, one for pgbench), large enough
-- never to sell out during a run; after coupon slots (issue 11) `coupons` is a view
-- that takes the insert, and each coupon gets its 8 slots (coupon::SLOTS).
INSERT INTO coupons (name, discount_type, discount_value, total_quantity, valid_from,
                     valid_until, created_at)
SELECT 'bench drop ' || side, 'FIXED', 1000, 10000000, now() - interval '1 hour',
       now() + interval '1 day', now()
  FROM unnest(ARRAY['http', 'pgbench']) side;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.tables WHERE table_name = 'coupon_slots') THEN
        INSERT INTO coupon_slots (coupon_id, slot, issued, remaining, open)
        SELECT c.id, s, 0, 10000000 / 8, true FROM coupons c CROSS JOIN generate_series(0, 7) s;
    END IF;
END $$;

RESET session_replication_role;
VACUUM ANALYZE;
