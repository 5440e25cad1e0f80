//! Orders: the use cases (place, pay, cancel, refund, expire) as load-lock, decide,
//! write-plan; reads; best sellers.
//!
//! Every use case is one short transaction: `BEGIN`, ONE statement that locks and reads
//! the decision's snapshot (and allocates the new ids), the domain's decision (in Rust,
//! between the two), ONE statement that writes the whole plan (`WritePlan`: a
//! data-modifying CTE per effect), `COMMIT`: four round trips to place an order. A use
//! case on an existing order first locks the order row alone (`LockOrderRow`), so
//! that the snapshot statement, which starts after the lock is granted, sees what the
//! previous holder of the lock committed (its refunds, its payment): in READ COMMITTED
//! a statement that waits for a row lock re-reads that row but reads every other table
//! as of its start. Five round trips. The statements are prepared once per connection
//! (`crate::sql`). The answer is the plan's order, never read back. No business rule
//! lives here: what to write is the plan, and the SQL only guards it again (a guard that
//! refuses rolls everything back).
//!
//! Lock order, shared by every use case (and by `balance.rs`), so none can deadlock:
//! orders row -> products rows (ascending id) -> user coupon row -> balance row. Row
//! locks are `FOR NO KEY UPDATE`, which the `KEY SHARE` locks of foreign-key checks do
//! not wait on. Each lock is forced after the previous one inside the snapshot
//! statement (each CTE depends on the one before it).

use crate::coupon::{user_coupon, CouponRow, UserCouponRow};
use crate::paging::newest_first;
use crate::pool::{conn, PgPool};
use crate::schema::orders;
use crate::sql::{sql, Bind, Statement};
use crate::tx::valid;
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kernel::{
    ClaimLost, Completion, CouponId, IdempotencyRecord, Money, OrderId, Page, PageRequest,
    ProductId, Quantity, RefundId, Timestamp, UserId,
};
use order::plan::{
    CouponChange, CouponSnapshot, OrderPlan, OrderSnapshot, OrderWrite, PlaceSnapshot,
    ProductSnapshot,
};
use order::{
    CancelDecision, CancelOrderError, CancelReason, Items, LineRequest, Order, OrderDecision,
    OrderFilter, OrderLine, OrderPayment, OrderStatus, OrderStore, PayDecision, PayOrderError,
    PaymentStatus, PlaceDecision, PlaceOrder, PlaceOrderError, ProductSales, Refund,
    RefundDecision, RefundItem, RefundOrderError,
};
use std::sync::Arc;
use tokio::sync::Notify;

/// The PostgreSQL order store.
#[derive(Clone)]
pub struct PgOrderStore {
    pool: PgPool,
    events: Option<Arc<Notify>>,
}

impl PgOrderStore {
    /// A store over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool, events: None }
    }

    /// The same store, signalling `events` each time a use case commits an outbox
    /// event, so this process's relay sends it at once. (Events are not announced with
    /// NOTIFY from the order transaction: PostgreSQL serialises the commits of every
    /// transaction that notified, cluster-wide, each waiting for the previous one's
    /// WAL flush; relays of other instances find them by polling.)
    pub fn with_event_signal(mut self, events: Arc<Notify>) -> Self {
        self.events = Some(events);
        self
    }

    fn committed(&self, plan: &OrderPlan) {
        if plan.event.is_some() {
            if let Some(events) = &self.events {
                events.notify_one();
            }
        }
    }
}

/// The columns of a whole order (`o` is the orders row): its lines, payment and
/// refunds as arrays, each gathered by one lateral scan.
macro_rules! order_columns {
    () => {
        "o.id, o.user_id, o.status, o.subtotal, o.discount, o.total, o.coupon_id,
       o.created_at, o.expires_at, o.paid_at, o.cancelled_at, o.cancel_reason, o.refunded_total,
       l.line_products, l.line_names, l.line_prices, l.line_quantities, l.line_subtotals,
       p.id AS pay_id, p.amount AS pay_amount, p.status AS pay_status,
       p.paid_at AS pay_paid_at, p.refunded_at AS pay_refunded_at,
       r.refund_ids, r.refund_amounts, r.refund_reasons, r.refund_times,
       i.item_refunds, i.item_products, i.item_quantities"
    };
}

macro_rules! order_joins {
    () => {
        "LEFT JOIN payments p ON p.order_id = o.id
  CROSS JOIN LATERAL (
      SELECT coalesce(array_agg(product_id ORDER BY line_no), '{}') AS line_products,
             coalesce(array_agg(name ORDER BY line_no), '{}') AS line_names,
             coalesce(array_agg(unit_price ORDER BY line_no), '{}') AS line_prices,
             coalesce(array_agg(quantity::int8 ORDER BY line_no), '{}') AS line_quantities,
             coalesce(array_agg(subtotal ORDER BY line_no), '{}') AS line_subtotals
        FROM order_lines WHERE order_id = o.id) l
  CROSS JOIN LATERAL (
      SELECT coalesce(array_agg(id ORDER BY id), '{}') AS refund_ids,
             coalesce(array_agg(amount ORDER BY id), '{}') AS refund_amounts,
             coalesce(array_agg(reason ORDER BY id), '{}') AS refund_reasons,
             coalesce(array_agg(created_at ORDER BY id), '{}') AS refund_times
        FROM refunds WHERE order_id = o.id) r
  CROSS JOIN LATERAL (
      SELECT coalesce(array_agg(ri.refund_id ORDER BY ri.refund_id, ri.product_id), '{}') AS item_refunds,
             coalesce(array_agg(ri.product_id ORDER BY ri.refund_id, ri.product_id), '{}') AS item_products,
             coalesce(array_agg(ri.quantity::int8 ORDER BY ri.refund_id, ri.product_id), '{}') AS item_quantities
        FROM refund_items ri JOIN refunds rr ON rr.id = ri.refund_id WHERE rr.order_id = o.id) i"
    };
}

sql!(
    /// Whole orders by id (no locks), for reads.
    ReadOrders,
    concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders o ",
        order_joins!(),
        " WHERE o.id = ANY($ids)"
    )
);

sql!(
    /// Locks the row of an order, alone (see the module documentation).
    LockOrderRow,
    "SELECT id FROM orders WHERE id = $order_id FOR NO KEY UPDATE"
);

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    #[allow(dead_code)]
    id: i64,
}

sql!(
    /// The snapshot of pay, cancel and refund, once the order row is locked: the order,
    /// then (when asked) one stock slot of each of its products, ascending id (to give
    /// units back into) and the coupon it uses, then its owner's balance; reads the
    /// whole order; allocates a payment or refund id when asked.
    LockOrder,
    concat!(
        "WITH o AS MATERIALIZED (
    SELECT * FROM orders WHERE id = $order_id FOR NO KEY UPDATE
), held AS MATERIALIZED (
    SELECT * FROM give_stock_slots(ARRAY(
        SELECT DISTINCT product_id FROM order_lines WHERE order_id = (SELECT id FROM o)
         ORDER BY product_id))
     WHERE $lock_products
), uc AS MATERIALIZED (
    SELECT id FROM user_coupons
     WHERE $lock_coupon AND order_id = (SELECT id FROM o) AND status = 'USED'
       AND (SELECT count(*) FROM held) >= 0
       FOR NO KEY UPDATE
), b AS MATERIALIZED (
    SELECT balance FROM balances
     WHERE user_id = (SELECT user_id FROM o) AND (SELECT count(*) FROM uc) >= 0
       FOR NO KEY UPDATE
)
SELECT ",
        order_columns!(),
        ",
       (SELECT id FROM uc) AS user_coupon_id,
       ARRAY(SELECT product_id FROM held ORDER BY product_id) AS slot_products,
       ARRAY(SELECT slot::int8 FROM held ORDER BY product_id) AS slot_indexes,
       ARRAY(SELECT units FROM held ORDER BY product_id) AS slot_units,
       (SELECT balance FROM b) AS balance,
       CASE WHEN $new_payment THEN nextval('payments_id_seq') ELSE 0 END AS new_payment_id,
       CASE WHEN $new_refund THEN nextval('refunds_id_seq') ELSE 0 END AS new_refund_id
  FROM o ",
        order_joins!()
    )
);

sql!(
    /// The snapshot of placing: the user's cart lines (with `from_cart`); slots of the
    /// lines' products covering the quantities, held by `take_stock_slots` (ascending
    /// product id); the products' names, prices and limits; with a limited product, the
    /// units of it the user holds (`held_units`, under a lock on the user); the user's
    /// copy of the coupon locked and its definition; the balance locked (with
    /// `pay_now`); the new order id (and payment id with `pay_now`).
    LockPlace,
    "WITH cart AS MATERIALIZED (
    SELECT product_id, quantity::int8 AS quantity FROM cart_items
     WHERE $from_cart AND user_id = $user_id ORDER BY product_id
), req AS MATERIALIZED (
    SELECT r.product_id, r.quantity
      FROM unnest($product_ids::int8[], $quantities::int8[]) AS r(product_id, quantity)
    UNION ALL
    SELECT product_id, quantity FROM cart
), held AS MATERIALIZED (
    SELECT * FROM take_stock_slots(
        ARRAY(SELECT product_id FROM req ORDER BY product_id),
        ARRAY(SELECT quantity FROM req ORDER BY product_id))
), p AS MATERIALIZED (
    SELECT id, name, price, max_per_user FROM products
     WHERE id IN (SELECT product_id FROM req) AND (SELECT count(*) FROM held) >= 0
     ORDER BY id
), lim AS MATERIALIZED (
    SELECT * FROM held_units($user_id,
        ARRAY(SELECT id FROM p WHERE max_per_user IS NOT NULL ORDER BY id))
     WHERE EXISTS (SELECT 1 FROM p WHERE max_per_user IS NOT NULL)
), uc AS MATERIALIZED (
    SELECT id, user_id, status, issued_at, used_at, order_id FROM user_coupons
     WHERE coupon_id = $coupon_id AND user_id = $user_id AND (SELECT count(*) FROM lim) >= 0
       FOR NO KEY UPDATE
), b AS MATERIALIZED (
    SELECT balance FROM balances
     WHERE $pay_now AND user_id = $user_id AND (SELECT count(*) FROM uc) >= 0
       FOR NO KEY UPDATE
)
SELECT ARRAY(SELECT product_id FROM cart) AS cart_products,
       ARRAY(SELECT quantity FROM cart) AS cart_quantities,
       ARRAY(SELECT id FROM p ORDER BY id) AS product_ids,
       ARRAY(SELECT name FROM p ORDER BY id) AS product_names,
       ARRAY(SELECT price FROM p ORDER BY id) AS product_prices,
       ARRAY(SELECT coalesce(max_per_user, 0)::int8 FROM p ORDER BY id) AS product_limits,
       ARRAY(SELECT coalesce((SELECT units FROM lim WHERE lim.product_id = p.id), 0)::int8
               FROM p ORDER BY id) AS product_held,
       ARRAY(SELECT product_id FROM held ORDER BY product_id, slot) AS slot_products,
       ARRAY(SELECT slot::int8 FROM held ORDER BY product_id, slot) AS slot_indexes,
       ARRAY(SELECT units FROM held ORDER BY product_id, slot) AS slot_units,
       uc.id AS uc_id, uc.user_id AS uc_user_id, uc.status AS uc_status,
       uc.issued_at AS uc_issued_at, uc.used_at AS uc_used_at, uc.order_id AS uc_order_id,
       c.id AS c_id, c.name AS c_name, c.discount_type AS c_discount_type,
       c.discount_value AS c_discount_value, c.min_order_amount AS c_min_order_amount,
       c.total_quantity AS c_total_quantity, c.issued_quantity AS c_issued_quantity,
       c.valid_from AS c_valid_from, c.valid_until AS c_valid_until,
       c.max_discount AS c_max_discount, c.deactivated_at AS c_deactivated_at,
       (SELECT balance FROM b) AS balance,
       nextval('orders_id_seq') AS new_order_id,
       CASE WHEN $pay_now THEN nextval('payments_id_seq') ELSE 0 END AS new_payment_id
  FROM (SELECT 1) one
  LEFT JOIN uc ON true
  LEFT JOIN coupons c ON c.id = $coupon_id"
);

sql!(
    /// Writes a whole [`OrderPlan`] in one statement. Every effect is a CTE that does
    /// nothing when the plan has no such effect; guards repeat the invariants (status
    /// transition, stock >= 0, coupon state, the balance the decision saw, the claim
    /// still in progress) and the counts tell the caller whether each held.
    WritePlan,
    "WITH ins_order AS (
    INSERT INTO orders (id, user_id, status, subtotal, discount, total, coupon_id, created_at,
                        expires_at, paid_at, cancelled_at, cancel_reason, refunded_total)
    SELECT $order_id, $user_id, $status, $subtotal, $discount, $total, $coupon_id, $created_at,
           $expires_at, $paid_at, $cancelled_at, $cancel_reason, $refunded_total
     WHERE $is_new
 RETURNING id
), ins_lines AS (
    INSERT INTO order_lines (order_id, line_no, product_id, name, unit_price, quantity, subtotal)
    SELECT $order_id, v.n, v.product_id, v.name, v.unit_price, v.quantity, v.subtotal
      FROM unnest($line_products::int8[], $line_names::text[], $line_prices::int8[],
                  $line_quantities::int4[], $line_subtotals::int8[])
           WITH ORDINALITY AS v(product_id, name, unit_price, quantity, subtotal, n)
     WHERE $is_new
), upd_order AS (
    UPDATE orders
       SET status = $status, paid_at = $paid_at, cancelled_at = $cancelled_at,
           cancel_reason = $cancel_reason, refunded_total = $refunded_total
     WHERE id = $order_id AND NOT $is_new AND status = $from_status
 RETURNING id
), stock AS (
    UPDATE stock_slots AS s
       SET units = s.units + v.delta
      FROM unnest($stock_products::int8[], $stock_slots::int2[], $stock_deltas::int8[])
           AS v(product_id, slot, delta)
     WHERE s.product_id = v.product_id AND s.slot = v.slot AND s.units + v.delta >= 0
 RETURNING 1
), coupon AS (
    UPDATE user_coupons
       SET status = $coupon_status, order_id = $coupon_order, used_at = $coupon_used_at
     WHERE id = $user_coupon_id AND status = $coupon_from
 RETURNING id
), balance AS (
    INSERT INTO balances (user_id, balance, updated_at)
    SELECT $user_id, $balance_after, $now WHERE $has_balance
        ON CONFLICT (user_id) DO UPDATE
       SET balance = EXCLUDED.balance, updated_at = EXCLUDED.updated_at
     WHERE balances.balance = $balance_before
 RETURNING user_id
), refund AS (
    INSERT INTO refunds (id, order_id, amount, reason, created_at)
    SELECT $refund_id, $order_id, $refund_amount, $refund_reason, $now
     WHERE $refund_id IS NOT NULL
 RETURNING id
), refund_items AS (
    INSERT INTO refund_items (refund_id, product_id, quantity)
    SELECT $refund_id, v.product_id, v.quantity
      FROM unnest($refund_products::int8[], $refund_quantities::int4[]) AS v(product_id, quantity)
     WHERE $refund_id IS NOT NULL
), history AS (
    INSERT INTO balance_history (user_id, kind, amount, balance_after, order_id, refund_id, created_at)
    SELECT $user_id, $history_kind, $history_amount, $balance_after, $order_id, $refund_id, $now
     WHERE $has_balance
), payment AS (
    INSERT INTO payments (id, order_id, user_id, amount, status, paid_at, refunded_at)
    SELECT $payment_id, $order_id, $user_id, $payment_amount, $payment_status, $payment_paid_at,
           $payment_refunded_at
     WHERE $payment_id IS NOT NULL
        ON CONFLICT (order_id) DO UPDATE
       SET status = EXCLUDED.status, refunded_at = EXCLUDED.refunded_at
), sold AS (
    INSERT INTO product_sales (order_id, product_id, quantity, paid_at)
    SELECT $order_id, v.product_id, v.quantity, $sales_paid_at
      FROM unnest($sales_products::int8[], $sales_quantities::int4[]) AS v(product_id, quantity)
     WHERE v.quantity > 0
        ON CONFLICT (order_id, product_id) DO UPDATE SET quantity = EXCLUDED.quantity
), unsold AS (
    DELETE FROM product_sales
     WHERE order_id = $order_id
       AND product_id IN (SELECT v.product_id
                            FROM unnest($sales_products::int8[], $sales_quantities::int4[])
                                 AS v(product_id, quantity)
                           WHERE v.quantity = 0)
), cart AS (
    DELETE FROM cart_items WHERE user_id = $user_id AND product_id = ANY($cart_products::int8[])
), event AS (
    INSERT INTO outbox_events (event_id, event_type, order_id, payload, next_attempt_at, created_at)
    SELECT $event_id, $event_type, $order_id, $event_payload, $now, $now
     WHERE $event_id IS NOT NULL
), idempotency AS (
    UPDATE idempotency_keys
       SET status = 'COMPLETED', response_status = $response_status,
           response_headers = $response_headers, response_body = $response_body
     WHERE caller = $idem_caller AND key = $idem_key AND claim_id = $idem_claim
       AND status = 'IN_PROGRESS'
 RETURNING 1
)
SELECT (SELECT count(*) FROM ins_order) + (SELECT count(*) FROM upd_order) AS orders,
       (SELECT count(*) FROM stock) AS stock,
       (SELECT count(*) FROM coupon) AS coupons,
       (SELECT count(*) FROM balance) AS balances,
       (SELECT count(*) FROM idempotency) AS idempotency"
);

#[derive(QueryableByName)]
struct Written {
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = BigInt)]
    stock: i64,
    #[diesel(sql_type = BigInt)]
    coupons: i64,
    #[diesel(sql_type = BigInt)]
    balances: i64,
    #[diesel(sql_type = BigInt)]
    idempotency: i64,
}

/// One whole order as [`ReadOrders`] and [`LockOrder`] return it.
#[derive(QueryableByName)]
struct OrderRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    subtotal: i64,
    #[diesel(sql_type = BigInt)]
    discount: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    coupon_id: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    created_at: Timestamp,
    #[diesel(sql_type = Timestamptz)]
    expires_at: Timestamp,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    paid_at: Option<Timestamp>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    cancelled_at: Option<Timestamp>,
    #[diesel(sql_type = Nullable<Text>)]
    cancel_reason: Option<String>,
    #[diesel(sql_type = BigInt)]
    refunded_total: i64,
    #[diesel(sql_type = Array<BigInt>)]
    line_products: Vec<i64>,
    #[diesel(sql_type = Array<Text>)]
    line_names: Vec<String>,
    #[diesel(sql_type = Array<BigInt>)]
    line_prices: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    line_quantities: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    line_subtotals: Vec<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pay_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pay_amount: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pay_status: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pay_paid_at: Option<Timestamp>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pay_refunded_at: Option<Timestamp>,
    #[diesel(sql_type = Array<BigInt>)]
    refund_ids: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    refund_amounts: Vec<i64>,
    #[diesel(sql_type = Array<Nullable<Text>>)]
    refund_reasons: Vec<Option<String>>,
    #[diesel(sql_type = Array<Timestamptz>)]
    refund_times: Vec<Timestamp>,
    #[diesel(sql_type = Array<BigInt>)]
    item_refunds: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    item_products: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    item_quantities: Vec<i64>,
}

#[derive(QueryableByName)]
struct LockedOrderRow {
    #[diesel(embed)]
    order: OrderRow,
    #[diesel(sql_type = Nullable<BigInt>)]
    user_coupon_id: Option<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    slot_products: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    slot_indexes: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    slot_units: Vec<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    balance: Option<i64>,
    #[diesel(sql_type = BigInt)]
    new_payment_id: i64,
    #[diesel(sql_type = BigInt)]
    new_refund_id: i64,
}

#[derive(QueryableByName)]
struct PlaceRow {
    #[diesel(sql_type = Array<BigInt>)]
    cart_products: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    cart_quantities: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    product_ids: Vec<i64>,
    #[diesel(sql_type = Array<Text>)]
    product_names: Vec<String>,
    #[diesel(sql_type = Array<BigInt>)]
    product_prices: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    product_limits: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    product_held: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    slot_products: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    slot_indexes: Vec<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    slot_units: Vec<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    uc_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    uc_user_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    uc_status: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    uc_issued_at: Option<Timestamp>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    uc_used_at: Option<Timestamp>,
    #[diesel(sql_type = Nullable<BigInt>)]
    uc_order_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    c_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    c_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c_discount_type: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    c_discount_value: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    c_min_order_amount: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    c_total_quantity: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    c_issued_quantity: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    c_valid_from: Option<Timestamp>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    c_valid_until: Option<Timestamp>,
    #[diesel(sql_type = Nullable<BigInt>)]
    c_max_discount: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    c_deactivated_at: Option<Timestamp>,
    #[diesel(sql_type = Nullable<BigInt>)]
    balance: Option<i64>,
    #[diesel(sql_type = BigInt)]
    new_order_id: i64,
    #[diesel(sql_type = BigInt)]
    new_payment_id: i64,
}

fn money(v: i64) -> anyhow::Result<Money> {
    valid(Money::try_from(v), "amount")
}

fn quantity(v: i64) -> anyhow::Result<Quantity> {
    valid(Quantity::try_from(v), "quantity")
}

fn product(v: i64) -> anyhow::Result<ProductId> {
    valid(ProductId::try_from(v), "product id")
}

impl OrderRow {
    fn into_order(self) -> anyhow::Result<Order> {
        let r = self;
        let n = r.line_products.len();
        if [
            r.line_names.len(),
            r.line_prices.len(),
            r.line_quantities.len(),
            r.line_subtotals.len(),
        ]
        .iter()
        .any(|len| *len != n)
        {
            return Err(anyhow!("order {} read with uneven line arrays", r.id));
        }
        let mut items = Vec::with_capacity(n);
        for i in 0..n {
            items.push(OrderLine {
                product_id: product(r.line_products[i])?,
                name: r.line_names[i].clone(),
                unit_price: money(r.line_prices[i])?,
                quantity: quantity(r.line_quantities[i])?,
                subtotal: money(r.line_subtotals[i])?,
            });
        }
        let payment = match (r.pay_id, r.pay_amount, r.pay_status, r.pay_paid_at) {
            (Some(id), Some(amount), Some(status), Some(paid_at)) => Some(OrderPayment {
                id,
                amount: money(amount)?,
                status: PaymentStatus::parse(&status)
                    .ok_or_else(|| anyhow!("unknown payment status {status}"))?,
                paid_at,
                refunded_at: r.pay_refunded_at,
            }),
            _ => None,
        };
        let mut refunds = Vec::with_capacity(r.refund_ids.len());
        for (k, refund_id) in r.refund_ids.iter().enumerate() {
            let items = r
                .item_refunds
                .iter()
                .enumerate()
                .filter(|(_, of)| *of == refund_id)
                .map(|(j, _)| {
                    Ok(RefundItem {
                        product_id: product(r.item_products[j])?,
                        quantity: quantity(r.item_quantities[j])?,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            refunds.push(Refund {
                id: valid(RefundId::try_from(*refund_id), "refund id")?,
                order_id: valid(OrderId::try_from(r.id), "order id")?,
                items,
                amount: money(r.refund_amounts[k])?,
                reason: r.refund_reasons[k].clone(),
                created_at: r.refund_times[k],
            });
        }
        Ok(Order {
            id: valid(OrderId::try_from(r.id), "order id")?,
            user_id: valid(UserId::try_from(r.user_id), "user id")?,
            status: OrderStatus::parse(&r.status)
                .ok_or_else(|| anyhow!("unknown order status {}", r.status))?,
            items,
            subtotal: money(r.subtotal)?,
            discount: money(r.discount)?,
            total: money(r.total)?,
            coupon_id: r
                .coupon_id
                .map(|c| valid(CouponId::try_from(c), "coupon id"))
                .transpose()?,
            created_at: r.created_at,
            expires_at: r.expires_at,
            paid_at: r.paid_at,
            cancelled_at: r.cancelled_at,
            cancel_reason: r
                .cancel_reason
                .map(|c| {
                    CancelReason::parse(&c).ok_or_else(|| anyhow!("unknown cancel reason {c}"))
                })
                .transpose()?,
            payment,
            refunds,
            refunded_total: money(r.refunded_total)?,
        })
    }
}

impl PlaceRow {
    fn into_snapshot(self, now: Timestamp) -> anyhow::Result<PlaceSnapshot> {
        let r = self;
        let slots = slots_of(&r.slot_products, &r.slot_indexes, &r.slot_units)?;
        let products = (0..r.product_ids.len())
            .map(|i| {
                let id = product(r.product_ids[i])?;
                Ok(ProductSnapshot {
                    id,
                    name: r.product_names[i].clone(),
                    price: money(r.product_prices[i])?,
                    slots: slots
                        .iter()
                        .filter(|(p, _)| *p == id)
                        .map(|(_, s)| *s)
                        .collect(),
                    max_per_user: crate::stock::limit(
                        Some(r.product_limits[i] as i32).filter(|l| *l > 0),
                    )?,
                    held: r.product_held[i],
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let cart = r
            .cart_products
            .iter()
            .zip(&r.cart_quantities)
            .map(|(p, q)| {
                Ok(LineRequest {
                    product_id: product(*p)?,
                    quantity: quantity(*q)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let coupon = match (
            r.c_id,
            r.c_name,
            r.c_discount_type,
            r.c_discount_value,
            r.c_min_order_amount,
            r.c_issued_quantity,
            r.c_valid_from,
            r.c_valid_until,
        ) {
            (
                Some(id),
                Some(name),
                Some(discount_type),
                Some(discount_value),
                Some(min_order_amount),
                Some(issued_quantity),
                Some(valid_from),
                Some(valid_until),
            ) => {
                let definition = CouponRow {
                    id,
                    name,
                    discount_type,
                    discount_value,
                    min_order_amount,
                    total_quantity: r.c_total_quantity,
                    issued_quantity,
                    valid_from,
                    valid_until,
                    max_discount: r.c_max_discount,
                    deactivated_at: r.c_deactivated_at,
                };
                let owned = match (r.uc_id, r.uc_user_id, r.uc_status, r.uc_issued_at) {
                    (Some(id), Some(user_id), Some(status), Some(issued_at)) => Some(user_coupon(
                        UserCouponRow {
                            id,
                            user_id,
                            status,
                            issued_at,
                            used_at: r.uc_used_at,
                            order_id: r.uc_order_id,
                        },
                        definition,
                        now,
                    )?),
                    _ => None,
                };
                Some(CouponSnapshot { owned })
            }
            _ => None,
        };
        Ok(PlaceSnapshot {
            products,
            cart,
            coupon,
            balance: r.balance.map(money).transpose()?,
            order_id: valid(OrderId::try_from(r.new_order_id), "order id")?,
            payment_id: r.new_payment_id,
        })
    }
}

/// Held slots as (product, slot) pairs, from parallel arrays.
fn slots_of(
    products: &[i64],
    indexes: &[i64],
    units: &[i64],
) -> anyhow::Result<Vec<(ProductId, stock::Slot)>> {
    if products.len() != indexes.len() || products.len() != units.len() {
        return Err(anyhow!("slots read with uneven arrays"));
    }
    products
        .iter()
        .zip(indexes)
        .zip(units)
        .map(|((p, i), u)| {
            Ok((
                product(*p)?,
                stock::Slot {
                    index: valid(i16::try_from(*i), "slot")?,
                    units: *u,
                },
            ))
        })
        .collect()
}

impl LockedOrderRow {
    fn into_snapshot(self) -> anyhow::Result<OrderSnapshot> {
        Ok(OrderSnapshot {
            slots: slots_of(&self.slot_products, &self.slot_indexes, &self.slot_units)?,
            order: self.order.into_order()?,
            user_coupon_id: self.user_coupon_id,
            balance: self.balance.map(money).transpose()?,
            payment_id: self.new_payment_id,
            // 0 when no refund id was asked for; a refund decision is only called with one
            refund_id: RefundId::try_from(self.new_refund_id.max(1)).map_err(|e| anyhow!("{e}"))?,
        })
    }
}

/// Why a use case's transaction rolled back.
enum Abort<E> {
    /// The decision refused: its error is the answer.
    Refused(E),
    /// The database failed, or a guard found the plan no longer fits the rows.
    Failed(anyhow::Error),
}

impl<E> From<diesel::result::Error> for Abort<E> {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Failed(e.into())
    }
}

impl<E: From<anyhow::Error>> Abort<E> {
    fn into_error(self, context: &'static str) -> E {
        match self {
            Abort::Refused(e) => e,
            Abort::Failed(e) if e.is::<ClaimLost>() => E::from(e),
            Abort::Failed(e) => E::from(e.context(context)),
        }
    }
}

fn opt_i64<T: Into<i64>>(v: Option<T>) -> Bind {
    Bind::OptI64(v.map(Into::into))
}

/// Writes `plan` (and `record`) in one statement; checks every guard held.
async fn write_plan(
    conn: &mut AsyncPgConnection,
    plan: &OrderPlan,
    record: Option<&IdempotencyRecord>,
) -> anyhow::Result<()> {
    let o = &plan.order;
    let now = plan.at;
    let (is_new, from_status) = match plan.write {
        OrderWrite::Insert => (true, None),
        OrderWrite::Update { from } => (false, Some(from.as_str().to_string())),
    };
    let lines = if is_new { o.items.as_slice() } else { &[] };
    let (coupon_row, coupon_status, coupon_from, coupon_order, coupon_used_at) = match plan.coupon {
        Some(CouponChange::Use { user_coupon_id }) => (
            Some(user_coupon_id),
            "USED",
            "AVAILABLE",
            Some(o.id.get()),
            Some(now),
        ),
        Some(CouponChange::Restore { user_coupon_id }) => {
            (Some(user_coupon_id), "AVAILABLE", "USED", None, None)
        }
        None => (None, "AVAILABLE", "USED", None, None),
    };
    let change = plan.balance.as_ref();
    let payment = o.payment.as_ref();
    let refund = plan.refund.as_ref();
    let sales_paid_at = <[_]>::first(&plan.sales).map_or(now, |s| s.paid_at);
    let event = plan.event.as_ref();
    let statement = Statement::<WritePlan>::new()
        .bind("order_id", Bind::I64(o.id.get()))
        .bind("user_id", Bind::I64(o.user_id.get()))
        .bind("is_new", Bind::Bool(is_new))
        .bind("from_status", Bind::OptText(from_status))
        .bind("status", Bind::Text(o.status.as_str().into()))
        .bind("subtotal", Bind::I64(o.subtotal.won()))
        .bind("discount", Bind::I64(o.discount.won()))
        .bind("total", Bind::I64(o.total.won()))
        .bind("coupon_id", opt_i64(o.coupon_id))
        .bind("created_at", Bind::Ts(o.created_at))
        .bind("expires_at", Bind::Ts(o.expires_at))
        .bind("paid_at", Bind::OptTs(o.paid_at))
        .bind("cancelled_at", Bind::OptTs(o.cancelled_at))
        .bind(
            "cancel_reason",
            Bind::OptText(o.cancel_reason.map(|r| r.as_str().into())),
        )
        .bind("refunded_total", Bind::I64(o.refunded_total.won()))
        .bind(
            "line_products",
            Bind::I64s(lines.iter().map(|l| l.product_id.get()).collect()),
        )
        .bind(
            "line_names",
            Bind::Texts(lines.iter().map(|l| l.name.clone()).collect()),
        )
        .bind(
            "line_prices",
            Bind::I64s(lines.iter().map(|l| l.unit_price.won()).collect()),
        )
        .bind(
            "line_quantities",
            Bind::I32s(lines.iter().map(|l| l.quantity.get() as i32).collect()),
        )
        .bind(
            "line_subtotals",
            Bind::I64s(lines.iter().map(|l| l.subtotal.won()).collect()),
        )
        .bind("now", Bind::Ts(now))
        .bind(
            "stock_products",
            Bind::I64s(plan.stock.iter().map(|s| s.product_id.get()).collect()),
        )
        .bind(
            "stock_slots",
            Bind::I32s(plan.stock.iter().map(|s| i32::from(s.slot)).collect()),
        )
        .bind(
            "stock_deltas",
            Bind::I64s(plan.stock.iter().map(|s| s.delta).collect()),
        )
        .bind("user_coupon_id", Bind::OptI64(coupon_row))
        .bind("coupon_status", Bind::Text(coupon_status.into()))
        .bind("coupon_from", Bind::Text(coupon_from.into()))
        .bind("coupon_order", Bind::OptI64(coupon_order))
        .bind("coupon_used_at", Bind::OptTs(coupon_used_at))
        .bind("has_balance", Bind::Bool(change.is_some()))
        .bind(
            "balance_before",
            Bind::OptI64(change.and_then(|c| c.before).map(Money::won)),
        )
        .bind(
            "balance_after",
            Bind::I64(change.map_or(0, |c| c.after().won())),
        )
        .bind(
            "history_kind",
            Bind::Text(change.map_or("PAYMENT", |c| c.entry.kind.as_str()).into()),
        )
        .bind(
            "history_amount",
            Bind::I64(change.map_or(0, |c| c.entry.amount)),
        )
        .bind("refund_id", opt_i64(refund.map(|r| r.id)))
        .bind(
            "refund_amount",
            Bind::I64(refund.map_or(0, |r| r.amount.won())),
        )
        .bind(
            "refund_reason",
            Bind::OptText(refund.and_then(|r| r.reason.clone())),
        )
        .bind(
            "refund_products",
            Bind::I64s(
                refund
                    .map(|r| r.items.iter().map(|i| i.product_id.get()).collect())
                    .unwrap_or_default(),
            ),
        )
        .bind(
            "refund_quantities",
            Bind::I32s(
                refund
                    .map(|r| r.items.iter().map(|i| i.quantity.get() as i32).collect())
                    .unwrap_or_default(),
            ),
        )
        .bind("payment_id", Bind::OptI64(payment.map(|p| p.id)))
        .bind(
            "payment_amount",
            Bind::I64(payment.map_or(0, |p| p.amount.won())),
        )
        .bind(
            "payment_status",
            Bind::Text(payment.map_or("PAID", |p| p.status.as_str()).into()),
        )
        .bind(
            "payment_paid_at",
            Bind::Ts(payment.map_or(now, |p| p.paid_at)),
        )
        .bind(
            "payment_refunded_at",
            Bind::OptTs(payment.and_then(|p| p.refunded_at)),
        )
        .bind(
            "sales_products",
            Bind::I64s(plan.sales.iter().map(|s| s.product_id.get()).collect()),
        )
        .bind(
            "sales_quantities",
            Bind::I32s(
                plan.sales
                    .iter()
                    .map(|s| i32::try_from(s.quantity).unwrap_or(i32::MAX))
                    .collect(),
            ),
        )
        .bind("sales_paid_at", Bind::Ts(sales_paid_at))
        .bind(
            "cart_products",
            Bind::I64s(plan.cart_removal.iter().map(|p| p.get()).collect()),
        )
        .bind("event_id", Bind::OptUuid(event.map(|e| e.event_id)))
        .bind(
            "event_type",
            Bind::Text(event.map_or("order.paid", |e| e.event_type.as_str()).into()),
        )
        .bind(
            "event_payload",
            Bind::OptJson(event.map(|e| e.body.clone())),
        )
        .bind(
            "response_status",
            Bind::OptI16(record.map(|r| r.response.status as i16)),
        )
        .bind(
            "response_headers",
            Bind::OptJson(
                record
                    .map(|r| serde_json::to_value(&r.response.headers))
                    .transpose()?,
            ),
        )
        .bind(
            "response_body",
            Bind::OptBytes(record.map(|r| r.response.body.clone())),
        )
        .bind(
            "idem_caller",
            Bind::OptText(record.map(|r| r.claim.caller.clone())),
        )
        .bind(
            "idem_key",
            Bind::OptText(record.map(|r| r.claim.key.clone())),
        )
        .bind(
            "idem_claim",
            Bind::OptUuid(record.map(|r| r.claim.claim_id)),
        );
    let written: Written = statement
        .get_result(conn)
        .await
        .context("writing the plan")?;
    if record.is_some() && written.idempotency != 1 {
        return Err(ClaimLost.into());
    }
    let expected = (
        1,
        plan.stock.len() as i64,
        i64::from(plan.coupon.is_some()),
        i64::from(change.is_some()),
    );
    let got = (
        written.orders,
        written.stock,
        written.coupons,
        written.balances,
    );
    if got != expected {
        return Err(anyhow!(
            "the rows no longer fit the plan (orders, stock, coupons, balances written {got:?}, planned {expected:?})"
        ));
    }
    Ok(())
}

/// What a use case on an existing order locks besides the order and the balance.
#[derive(Clone, Copy)]
struct Locks {
    products: bool,
    coupon: bool,
    new_payment: bool,
    new_refund: bool,
}

/// Locks and reads an order's snapshot; `None` when there is no such order.
async fn lock_order(
    conn: &mut AsyncPgConnection,
    id: OrderId,
    locks: Locks,
) -> Result<Option<OrderSnapshot>, diesel::result::Error> {
    let locked: Option<IdRow> = Statement::<LockOrderRow>::new()
        .bind("order_id", Bind::I64(id.get()))
        .get_result(conn)
        .await
        .optional()?;
    if locked.is_none() {
        return Ok(None);
    }
    let row: Option<LockedOrderRow> = Statement::<LockOrder>::new()
        .bind("order_id", Bind::I64(id.get()))
        .bind("lock_products", Bind::Bool(locks.products))
        .bind("lock_coupon", Bind::Bool(locks.coupon))
        .bind("new_payment", Bind::Bool(locks.new_payment))
        .bind("new_refund", Bind::Bool(locks.new_refund))
        .get_result(conn)
        .await
        .optional()?;
    row.map(LockedOrderRow::into_snapshot)
        .transpose()
        .map_err(|e| diesel::result::Error::DeserializationError(e.into()))
}

impl PgOrderStore {
    /// The shape of pay, cancel and refund: lock the snapshot, decide, write, commit.
    async fn change_order<E>(
        &self,
        id: OrderId,
        locks: Locks,
        decide: OrderDecision<E>,
        not_found: E,
        record: impl FnOnce(&OrderPlan) -> Option<IdempotencyRecord> + Send,
        context: &'static str,
    ) -> Result<OrderPlan, E>
    where
        E: From<anyhow::Error> + Send,
    {
        let mut conn = conn(&self.pool).await?;
        let result = conn
            .transaction::<_, Abort<E>, _>(async move |conn| {
                let Some(snapshot) = lock_order(conn, id, locks).await? else {
                    return Err(Abort::Refused(not_found));
                };
                let plan = decide(&snapshot).map_err(Abort::Refused)?;
                let record = record(&plan);
                write_plan(conn, &plan, record.as_ref())
                    .await
                    .map_err(Abort::Failed)?;
                Ok(plan)
            })
            .await;
        let plan = result.map_err(|e| e.into_error(context))?;
        self.committed(&plan);
        Ok(plan)
    }
}

#[derive(QueryableByName)]
struct SalesRow {
    #[diesel(embed)]
    product: crate::stock::ProductRow,
    #[diesel(sql_type = BigInt)]
    sold: i64,
}

/// Reads whole orders, in the order of `ids`.
async fn read_orders(conn: &mut AsyncPgConnection, ids: &[i64]) -> anyhow::Result<Vec<Order>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<OrderRow> = Statement::<ReadOrders>::new()
        .bind("ids", Bind::I64s(ids.to_vec()))
        .load(conn)
        .await
        .context("reading orders")?;
    let mut orders: Vec<Order> = rows
        .into_iter()
        .map(OrderRow::into_order)
        .collect::<anyhow::Result<_>>()?;
    orders.sort_by_key(|o| ids.iter().position(|id| *id == o.id.get()));
    Ok(orders)
}

#[async_trait]
impl OrderStore for PgOrderStore {
    async fn place(
        &self,
        command: PlaceOrder,
        decide: PlaceDecision,
        completion: Option<Completion<Order>>,
    ) -> Result<Order, PlaceOrderError> {
        let mut conn = conn(&self.pool).await?;
        let result = conn
            .transaction::<_, Abort<PlaceOrderError>, _>(async move |conn| {
                let product_ids: Vec<i64> =
                    command.lines().iter().map(|l| l.product_id.get()).collect();
                let quantities: Vec<i64> = command
                    .lines()
                    .iter()
                    .map(|l| i64::from(l.quantity.get()))
                    .collect();
                let row: PlaceRow = Statement::<LockPlace>::new()
                    .bind("user_id", Bind::I64(command.user_id().get()))
                    .bind("product_ids", Bind::I64s(product_ids))
                    .bind("quantities", Bind::I64s(quantities))
                    .bind(
                        "from_cart",
                        Bind::Bool(matches!(command.items(), Items::FromCart)),
                    )
                    .bind("coupon_id", opt_i64(command.coupon_id()))
                    .bind("pay_now", Bind::Bool(command.pay_now()))
                    .get_result(conn)
                    .await?;
                // only the user coupon's displayed status depends on this clock; the
                // decision judges the coupon with its own moment
                let snapshot = row
                    .into_snapshot(chrono::Utc::now())
                    .map_err(Abort::Failed)?;
                let plan = decide(&snapshot).map_err(Abort::Refused)?;
                let record = completion.as_ref().map(|c| c.record(&plan.order));
                write_plan(conn, &plan, record.as_ref())
                    .await
                    .map_err(Abort::Failed)?;
                Ok(plan)
            })
            .await;
        let plan = result.map_err(|e| e.into_error("placing an order"))?;
        self.committed(&plan);
        Ok(plan.order)
    }

    async fn pay(
        &self,
        id: OrderId,
        decide: PayDecision,
        completion: Option<Completion<Order>>,
    ) -> Result<Order, PayOrderError> {
        let locks = Locks {
            products: false,
            coupon: false,
            new_payment: true,
            new_refund: false,
        };
        let plan = self
            .change_order(
                id,
                locks,
                decide,
                PayOrderError::NotFound,
                move |plan| completion.map(|c| c.record(&plan.order)),
                "paying an order",
            )
            .await?;
        Ok(plan.order)
    }

    async fn cancel(
        &self,
        id: OrderId,
        decide: CancelDecision,
        completion: Option<Completion<Order>>,
    ) -> Result<Order, CancelOrderError> {
        let locks = Locks {
            products: true,
            coupon: true,
            new_payment: false,
            new_refund: false,
        };
        let plan = self
            .change_order(
                id,
                locks,
                decide,
                CancelOrderError::NotFound,
                move |plan| completion.map(|c| c.record(&plan.order)),
                "cancelling an order",
            )
            .await?;
        Ok(plan.order)
    }

    async fn refund(
        &self,
        id: OrderId,
        decide: RefundDecision,
        completion: Option<Completion<Refund>>,
    ) -> Result<Refund, RefundOrderError> {
        let locks = Locks {
            products: true,
            coupon: false,
            new_payment: false,
            new_refund: true,
        };
        let plan = self
            .change_order(
                id,
                locks,
                decide,
                RefundOrderError::NotFound,
                move |plan| {
                    let refund = plan.refund.as_ref()?;
                    completion.map(|c| c.record(refund))
                },
                "refunding an order",
            )
            .await?;
        plan.refund
            .ok_or_else(|| RefundOrderError::Unexpected(anyhow!("a refund plan without a refund")))
    }

    async fn due_for_expiry(&self, now: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>> {
        let mut conn = conn(&self.pool).await?;
        let ids: Vec<i64> = orders::table
            .filter(orders::status.eq(OrderStatus::Pending.as_str()))
            .filter(orders::expires_at.le(now))
            .order(orders::expires_at.asc())
            .limit(limit)
            .select(orders::id)
            .load(&mut conn)
            .await
            .context("listing orders due to expire")?;
        ids.into_iter()
            .map(|id| valid(OrderId::try_from(id), "order id"))
            .collect()
    }

    async fn get(&self, id: OrderId) -> anyhow::Result<Option<Order>> {
        let mut conn = conn(&self.pool).await?;
        Ok(read_orders(&mut conn, &[id.get()]).await?.pop())
    }

    async fn list_for_user(&self, user: UserId, page: PageRequest) -> anyhow::Result<Page<Order>> {
        self.search(
            OrderFilter {
                user_id: Some(user),
                ..OrderFilter::default()
            },
            page,
        )
        .await
    }

    async fn search(&self, filter: OrderFilter, page: PageRequest) -> anyhow::Result<Page<Order>> {
        let mut conn = conn(&self.pool).await?;
        let mut query = orders::table.select(orders::id).into_boxed();
        if let Some(status) = filter.status {
            query = query.filter(orders::status.eq(status.as_str()));
        }
        if let Some(user) = filter.user_id {
            query = query.filter(orders::user_id.eq(user.get()));
        }
        if let Some(from) = filter.created_from {
            query = query.filter(orders::created_at.ge(from));
        }
        if let Some(to) = filter.created_to {
            query = query.filter(orders::created_at.lt(to));
        }
        let query = if filter.has_created_range() {
            // Creation-time order, so orders_created_idx (created_at, id) serves a range
            // anywhere in the history, read backwards from its end (OrderStore::search).
            let query = match page.after() {
                Some(after) => query.filter(
                    diesel::dsl::sql::<diesel::sql_types::Bool>(
                        "(orders.created_at, orders.id) < \
                         (SELECT c.created_at, c.id FROM orders c WHERE c.id = ",
                    )
                    .bind::<BigInt, _>(after)
                    .sql(")"),
                ),
                None => query,
            };
            query
                .order((orders::created_at.desc(), orders::id.desc()))
                .limit(page.fetch_limit())
        } else {
            newest_first(query, orders::id, page)
        };
        let ids: Vec<i64> = query.load(&mut conn).await.context("searching orders")?;
        let orders = read_orders(&mut conn, &ids).await?;
        Ok(page.page(orders, |o| o.id.get()))
    }

    async fn best_sellers(
        &self,
        since: Timestamp,
        limit: i64,
    ) -> anyhow::Result<Vec<ProductSales>> {
        let mut conn = conn(&self.pool).await?;
        // Units of orders paid since `since`, refunded units and cancelled orders left
        // out: an index-only range scan of product_sales (ADR 0005); products joined.
        let rows: Vec<SalesRow> = diesel::sql_query(
            "SELECT p.id, p.name, p.price, p.max_per_user, p.created_at, p.updated_at,
                    (SELECT coalesce(sum(units), 0) FROM stock_slots ss
                      WHERE ss.product_id = p.id)::int8 AS stock,
                    s.sold
               FROM (SELECT product_id, SUM(quantity)::BIGINT AS sold
                       FROM product_sales
                      WHERE paid_at >= $1
                      GROUP BY product_id
                      ORDER BY sold DESC, product_id ASC
                      LIMIT $2) s
               JOIN products p ON p.id = s.product_id
              ORDER BY s.sold DESC, p.id ASC",
        )
        .bind::<Timestamptz, _>(since)
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await
        .context("computing best sellers")?;
        rows.into_iter()
            .map(|r| {
                Ok(ProductSales {
                    product: r.product.into_product()?,
                    sold_quantity: r.sold,
                })
            })
            .collect()
    }
}
