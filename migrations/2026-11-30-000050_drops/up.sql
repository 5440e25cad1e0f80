-- Drops (issue 11): a product's stock split over slot rows, so concurrent buyers of one
-- product lock different rows (ADR 0009); purchase limits per user.

-- The stock of a product, in slots. `stock` of the API is the exact sum of its slots.
-- A slot may pass 1,000,000,000 only by units given back (API.md); never below zero.
CREATE TABLE stock_slots (
    product_id BIGINT NOT NULL REFERENCES products (id),
    slot       SMALLINT NOT NULL CHECK (slot >= 0),
    units      BIGINT NOT NULL CHECK (units >= 0),
    PRIMARY KEY (product_id, slot)
) WITH (fillfactor = 70);

-- 8 slots a product (stock::SLOTS), the units spread evenly, the first slots taking the rest
INSERT INTO stock_slots (product_id, slot, units)
SELECT p.id, s, p.stock / 8 + CASE WHEN s < p.stock % 8 THEN 1 ELSE 0 END
  FROM products p CROSS JOIN generate_series(0, 7) AS s;

ALTER TABLE products DROP COLUMN stock;

-- The purchase limit: the units one user may hold in PENDING and PAID orders.
ALTER TABLE products ADD COLUMN max_per_user INTEGER CHECK (max_per_user BETWEEN 1 AND 1000);

-- Holds, for each product (ascending id, as the caller passes them), slots covering the
-- quantity, and returns them with their units:
--   1. one slot that covers it and nobody holds (SKIP LOCKED: buyers spread out);
--   2. else one slot that covered it a moment ago, waiting for it (every such slot is
--      busy), if it still covers it once held;
--   3. else slots in slot order until they cover it (no slot covers it alone: they are
--      combined), or all of them, whose sum is then the product's exact stock.
-- No caller waits for a slot while holding another slot of the same product out of
-- slot order: a row that step 1 locked and could not use (it changed under the lock)
-- is released by rolling its subtransaction back before step 2, step 2 holds at most
-- the one row it waits for (released the same way when it does not cover), and step 3
-- locks in slot order, as admin changes do. Products go in ascending id. So callers do
-- not deadlock. PL/pgSQL on purpose: each query takes a fresh snapshot, so units read
-- after a wait are current. A product without slots returns nothing.
CREATE FUNCTION take_stock_slots(p_products BIGINT[], p_quantities BIGINT[])
RETURNS TABLE (product_id BIGINT, slot SMALLINT, units BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    i INTEGER;
    picked RECORD;
    target SMALLINT;
    covered BIGINT;
    found_one BOOLEAN;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_products, 1), 0) LOOP
        found_one := false;
        BEGIN
            SELECT s.slot, s.units INTO picked FROM stock_slots s
             WHERE s.product_id = p_products[i] AND s.units >= p_quantities[i]
             ORDER BY random() LIMIT 1
               FOR NO KEY UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no free slot covers the quantity' USING ERRCODE = 'P0001';
            END IF;
            found_one := true;
        EXCEPTION WHEN raise_exception THEN
            found_one := false;
        END;
        IF NOT found_one THEN
            BEGIN
                SELECT s.slot INTO target FROM stock_slots s
                 WHERE s.product_id = p_products[i] AND s.units >= p_quantities[i]
                 ORDER BY random() LIMIT 1;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'no slot covers the quantity' USING ERRCODE = 'P0001';
                END IF;
                SELECT s.slot, s.units INTO picked FROM stock_slots s
                 WHERE s.product_id = p_products[i] AND s.slot = target
                   FOR NO KEY UPDATE;
                IF NOT FOUND OR picked.units < p_quantities[i] THEN
                    RAISE EXCEPTION 'the slot no longer covers the quantity' USING ERRCODE = 'P0001';
                END IF;
                found_one := true;
            EXCEPTION WHEN raise_exception OR deadlock_detected THEN
                found_one := false;
            END;
        END IF;
        IF found_one THEN
            product_id := p_products[i];
            slot := picked.slot;
            units := picked.units;
            RETURN NEXT;
        ELSE
            covered := 0;
            FOR target IN
                SELECT s.slot FROM stock_slots s WHERE s.product_id = p_products[i] ORDER BY s.slot
            LOOP
                SELECT s.slot, s.units INTO picked FROM stock_slots s
                 WHERE s.product_id = p_products[i] AND s.slot = target
                   FOR NO KEY UPDATE;
                product_id := p_products[i];
                slot := picked.slot;
                units := picked.units;
                RETURN NEXT;
                covered := covered + picked.units;
                EXIT WHEN covered >= p_quantities[i];
            END LOOP;
        END IF;
    END LOOP;
END
$$;

-- Holds one slot of each product (ascending id) to give units back into: one nobody
-- holds, else waiting for one.
CREATE FUNCTION give_stock_slots(p_products BIGINT[])
RETURNS TABLE (product_id BIGINT, slot SMALLINT, units BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    i INTEGER;
    picked RECORD;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_products, 1), 0) LOOP
        SELECT s.slot, s.units INTO picked FROM stock_slots s
         WHERE s.product_id = p_products[i]
         ORDER BY random() LIMIT 1
           FOR NO KEY UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            SELECT s.slot, s.units INTO picked FROM stock_slots s
             WHERE s.product_id = p_products[i]
             ORDER BY random() LIMIT 1
               FOR NO KEY UPDATE;
        END IF;
        IF FOUND THEN
            product_id := p_products[i];
            slot := picked.slot;
            units := picked.units;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;

-- The units of `p_products` the user holds in PENDING and PAID orders, refunded units
-- left out. First takes a transaction lock on the user (advisory), so the orders of one
-- user with a limited product are serialised across instances, and then counts with a
-- fresh snapshot, which sees every order of the user committed before the lock.
CREATE FUNCTION held_units(p_user BIGINT, p_products BIGINT[])
RETURNS TABLE (product_id BIGINT, units BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1668247917, (p_user % 2147483647)::INTEGER);
    RETURN QUERY
        SELECT x.product_id, sum(x.units)::BIGINT FROM (
            SELECT l.product_id, l.quantity::BIGINT AS units
              FROM orders o JOIN order_lines l ON l.order_id = o.id
             WHERE o.user_id = p_user AND o.status IN ('PENDING', 'PAID')
               AND l.product_id = ANY (p_products)
            UNION ALL
            SELECT ri.product_id, -ri.quantity::BIGINT
              FROM orders o JOIN refunds r ON r.order_id = o.id
                   JOIN refund_items ri ON ri.refund_id = r.id
             WHERE o.user_id = p_user AND o.status IN ('PENDING', 'PAID')
               AND ri.product_id = ANY (p_products)
        ) x
        GROUP BY x.product_id;
END
$$;

-- FCFS coupon issuing beyond one counter row: a coupon's units in slot rows
-- (coupon::SLOTS), an issue taking from a slot nobody holds (ADR 0009). `issued` counts
-- the owners each slot gave out (admin `issue_to` included, in slot 0); `remaining` is
-- what a slot may still give (NULL: unlimited). `open` is false once the coupon is
-- deactivated: an issue re-checks it on the slot it holds, so none lands after a
-- deactivation commits.
CREATE TABLE coupon_slots (
    coupon_id BIGINT NOT NULL REFERENCES coupons (id),
    slot      SMALLINT NOT NULL CHECK (slot >= 0),
    issued    BIGINT NOT NULL DEFAULT 0 CHECK (issued >= 0),
    remaining BIGINT CHECK (remaining >= 0),
    open      BOOLEAN NOT NULL DEFAULT true,
    PRIMARY KEY (coupon_id, slot)
) WITH (fillfactor = 70);

INSERT INTO coupon_slots (coupon_id, slot, issued, remaining, open)
SELECT c.id, s,
       CASE WHEN s = 0 THEN c.issued_quantity ELSE 0 END,
       CASE WHEN c.total_quantity IS NULL THEN NULL
            ELSE (c.total_quantity - c.issued_quantity) / 8
                 + CASE WHEN s < (c.total_quantity - c.issued_quantity) % 8 THEN 1 ELSE 0 END
       END,
       c.deactivated_at IS NULL
  FROM coupons c CROSS JOIN generate_series(0, 7) AS s;

-- The definition keeps its table; `coupons` becomes a view that adds issued_quantity,
-- the sum of the slots (inserts and updates of the other columns go through it).
ALTER TABLE coupons RENAME TO coupon_definitions;
ALTER TABLE coupon_definitions DROP COLUMN issued_quantity;
CREATE VIEW coupons AS
SELECT d.*,
       (SELECT coalesce(sum(s.issued), 0) FROM coupon_slots s WHERE s.coupon_id = d.id)::BIGINT
           AS issued_quantity
  FROM coupon_definitions d;

-- A slot of the coupon with room, held: one nobody holds (SKIP LOCKED), else one that
-- had room a moment ago, waiting for it, if it still has room once held; else the slots
-- in slot order, the first with room. NULL: no slot has room (sold out or
-- deactivated), exact because `remaining` only goes down and `open` only closes. As in
-- take_stock_slots, rows locked and not used in the first two steps are released by
-- rolling their subtransaction back before anything else waits, so callers (and a
-- deactivation, which locks the slots in slot order) do not deadlock.
CREATE FUNCTION take_coupon_slot(p_coupon BIGINT)
RETURNS SMALLINT
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    picked SMALLINT;
    target SMALLINT;
    has_room BOOLEAN;
BEGIN
    BEGIN
        SELECT s.slot INTO picked FROM coupon_slots s
         WHERE s.coupon_id = p_coupon AND s.open AND (s.remaining IS NULL OR s.remaining > 0)
         ORDER BY random() LIMIT 1
           FOR NO KEY UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no free slot has room' USING ERRCODE = 'P0001';
        END IF;
        RETURN picked;
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
    BEGIN
        SELECT s.slot INTO target FROM coupon_slots s
         WHERE s.coupon_id = p_coupon AND s.open AND (s.remaining IS NULL OR s.remaining > 0)
         ORDER BY random() LIMIT 1;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        SELECT s.open AND (s.remaining IS NULL OR s.remaining > 0) INTO has_room
          FROM coupon_slots s
         WHERE s.coupon_id = p_coupon AND s.slot = target
           FOR NO KEY UPDATE;
        IF has_room THEN
            RETURN target;
        END IF;
        RAISE EXCEPTION 'the slot has no room any more' USING ERRCODE = 'P0001';
    EXCEPTION WHEN raise_exception OR deadlock_detected THEN
        NULL;
    END;
    FOR target IN
        SELECT s.slot FROM coupon_slots s WHERE s.coupon_id = p_coupon ORDER BY s.slot
    LOOP
        SELECT s.open AND (s.remaining IS NULL OR s.remaining > 0) INTO has_room
          FROM coupon_slots s
         WHERE s.coupon_id = p_coupon AND s.slot = target
           FOR NO KEY UPDATE;
        IF has_room THEN
            RETURN target;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
