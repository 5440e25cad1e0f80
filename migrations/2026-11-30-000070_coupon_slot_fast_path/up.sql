-- A fast path for FCFS issuing (ADR 0009): take_coupon_slot opens a subtransaction
-- (an exception block) on every call, so that a slot row locked by a recheck and not
-- used is released before it waits for another; with fast commits that subtransaction
-- was most of an issue's cost in PostgreSQL (pgbench, 8 clients, one coupon: 3,400-3,600
-- issues a second with it, 6,300-8,000 without).
--
-- try_coupon_slot never waits, so it needs none: it holds a free slot with room (SKIP
-- LOCKED) and returns it; a caller that got a slot does not wait for any other slot
-- afterwards, so whatever else a recheck left locked cannot close a cycle. If no slot
-- has room it returns NULL (sold out or deactivated: the statement claims nothing).
-- If slots have room but every one is held, it fails with serialization_failure: the
-- statement is undone, its locks released, and the caller runs the waiting
-- take_coupon_slot instead.
CREATE FUNCTION try_coupon_slot(p_coupon BIGINT)
RETURNS SMALLINT
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    picked SMALLINT;
BEGIN
    SELECT s.slot INTO picked FROM coupon_slots s
     WHERE s.coupon_id = p_coupon AND s.open AND (s.remaining IS NULL OR s.remaining > 0)
     ORDER BY random() LIMIT 1
       FOR NO KEY UPDATE SKIP LOCKED;
    IF FOUND THEN
        RETURN picked;
    END IF;
    IF EXISTS (SELECT 1 FROM coupon_slots s
                WHERE s.coupon_id = p_coupon AND s.open
                  AND (s.remaining IS NULL OR s.remaining > 0)) THEN
        RAISE EXCEPTION 'every coupon slot with room is held: wait with take_coupon_slot'
              USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NULL;
END
$$;
