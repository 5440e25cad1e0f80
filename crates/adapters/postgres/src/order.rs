//! Orders: placing (reserve stock, use the coupon, price, save; optionally pay), cancelling
//! with compensation, the expiry sweep, reads and best sellers.
//!
//! Lock order, shared by every use case here and in `payment.rs`, so none can deadlock:
//! orders row -> products rows (ascending id) -> user coupon row -> balance row.

use crate::balance::{apply_change, lock_balance, BalanceChange};
use crate::outbox::enqueue_in_tx;
use crate::pool::{conn, PgPool};
use crate::schema::{order_lines, orders, payments};
use crate::tx::{finish, valid, TxError};
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use balance::HistoryKind;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kernel::{CouponId, Money, OrderId, Page, PageRequest, ProductId, Quantity, Timestamp, UserId};
use order::events::{EventType, OutboundEvent};
use order::rules::{plan_cancel, price_lines, totals};
use order::{
    CancelOrderError, CancelReason, NewOrder, Order, OrderLine, OrderPayment, OrderStatus,
    OrderStore, PaymentStatus, PlaceOrderError, PricedProduct, ProductSales,
};
use payment::{refund_to_balance, PayOrderError};

#[derive(Clone)]
pub struct PgOrderStore {
    pool: PgPool,
}

impl PgOrderStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Queryable, Selectable, Clone)]
#[diesel(table_name = orders, check_for_backend(diesel::pg::Pg))]
pub(crate) struct OrderRow {
    pub id: i64,
    pub user_id: i64,
    pub status: String,
    pub subtotal: i64,
    pub discount: i64,
    pub total: i64,
    pub coupon_id: Option<i64>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub paid_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
    pub cancel_reason: Option<String>,
}

impl OrderRow {
    pub(crate) fn status(&self) -> anyhow::Result<OrderStatus> {
        OrderStatus::parse(&self.status)
            .ok_or_else(|| anyhow!("unknown order status {}", self.status))
    }

    /// The order this row and its lines and payment make up.
    pub(crate) fn to_order(
        &self,
        items: Vec<OrderLine>,
        payment: Option<OrderPayment>,
    ) -> anyhow::Result<Order> {
        let row = self;
        Ok(Order {
            id: valid(OrderId::try_from(row.id), "order id")?,
            user_id: valid(UserId::try_from(row.user_id), "user id")?,
            status: row.status()?,
            items,
            subtotal: money(row.subtotal)?,
            discount: money(row.discount)?,
            total: money(row.total)?,
            coupon_id: row
                .coupon_id
                .map(CouponId::try_from)
                .transpose()
                .map_err(|e| anyhow!("{e}"))?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            paid_at: row.paid_at,
            cancelled_at: row.cancelled_at,
            cancel_reason: match &row.cancel_reason {
                Some(r) => Some(
                    CancelReason::parse(r).ok_or_else(|| anyhow!("unknown cancel reason {r}"))?,
                ),
                None => None,
            },
            payment,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = order_lines, check_for_backend(diesel::pg::Pg))]
struct LineRow {
    order_id: i64,
    product_id: i64,
    name: String,
    unit_price: i64,
    quantity: i32,
    subtotal: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = payments, check_for_backend(diesel::pg::Pg))]
struct PaymentRow {
    id: i64,
    order_id: i64,
    amount: i64,
    status: String,
    paid_at: Timestamp,
    refunded_at: Option<Timestamp>,
}

fn money(v: i64) -> anyhow::Result<Money> {
    valid(Money::try_from(v), "amount")
}

/// Loads whole orders (lines, payment) in three queries, in the order of `ids`.
pub(crate) async fn load_orders(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> anyhow::Result<Vec<Order>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<OrderRow> = orders::table
        .filter(orders::id.eq_any(ids))
        .select(OrderRow::as_select())
        .load(conn)
        .await
        .context("loading orders")?;
    let lines: Vec<LineRow> = order_lines::table
        .filter(order_lines::order_id.eq_any(ids))
        .order((order_lines::order_id, order_lines::line_no))
        .select(LineRow::as_select())
        .load(conn)
        .await
        .context("loading order lines")?;
    let pays: Vec<PaymentRow> = payments::table
        .filter(payments::order_id.eq_any(ids))
        .select(PaymentRow::as_select())
        .load(conn)
        .await
        .context("loading payments")?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(row) = rows.iter().find(|r| r.id == *id) else {
            continue;
        };
        let items = lines
            .iter()
            .filter(|l| l.order_id == *id)
            .map(|l| {
                Ok(OrderLine {
                    product_id: valid(ProductId::try_from(l.product_id), "product id")?,
                    name: l.name.clone(),
                    unit_price: money(l.unit_price)?,
                    quantity: valid(Quantity::try_from(i64::from(l.quantity)), "quantity")?,
                    subtotal: money(l.subtotal)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let payment = match pays.iter().find(|p| p.order_id == *id) {
            Some(p) => Some(OrderPayment {
                id: p.id,
                amount: money(p.amount)?,
                status: PaymentStatus::parse(&p.status)
                    .ok_or_else(|| anyhow!("unknown payment status"))?,
                paid_at: p.paid_at,
                refunded_at: p.refunded_at,
            }),
            None => None,
        };
        out.push(row.to_order(items, payment)?);
    }
    Ok(out)
}

pub(crate) async fn load_order(conn: &mut AsyncPgConnection, id: i64) -> anyhow::Result<Order> {
    load_orders(conn, &[id])
        .await?
        .pop()
        .ok_or_else(|| anyhow!("order {id} vanished"))
}

/// Locks one order row.
pub(crate) async fn lock_order(
    conn: &mut AsyncPgConnection,
    id: OrderId,
) -> QueryResult<Option<OrderRow>> {
    orders::table
        .find(id.get())
        .select(OrderRow::as_select())
        .for_no_key_update()
        .first(conn)
        .await
        .optional()
}

/// The event for the data platform: `{"event_id", "event_type", "occurred_at", "order"}`.
pub(crate) fn order_event(
    event_type: EventType,
    order: &Order,
    now: Timestamp,
) -> anyhow::Result<OutboundEvent> {
    Ok(OutboundEvent::new(
        uuid::Uuid::new_v4(),
        event_type,
        order.id.get(),
        now,
        serde_json::to_value(order)?,
    ))
}

/// Pays a PENDING order whose row the caller locked: debit, payment row, PAID, cart,
/// `order.paid` event. Used by `PaymentStore::pay` and by placing with `pay_now`.
pub(crate) async fn pay_locked(
    conn: &mut AsyncPgConnection,
    row: &OrderRow,
    now: Timestamp,
) -> Result<Order, TxError<PayOrderError>> {
    let unexpected = |e: anyhow::Error| TxError::Rule(PayOrderError::Unexpected(e));
    let status = row.status().map_err(unexpected)?;
    order::rules::check_payable(status, row.expires_at, now).map_err(|e| {
        TxError::Rule(match e {
            order::rules::NotPayable::Expired => PayOrderError::Expired,
            order::rules::NotPayable::InvalidState(s) => PayOrderError::InvalidState(s),
        })
    })?;
    let user = UserId::try_from(row.user_id).map_err(|e| unexpected(anyhow!("{e}")))?;
    let total = money(row.total).map_err(unexpected)?;
    let snapshot = lock_balance(conn, user).await?;
    let after = payment::pay_from_balance(snapshot.balance, total).map_err(|e| {
        TxError::Rule(PayOrderError::InsufficientBalance {
            balance: e.balance,
            required: e.required,
        })
    })?;
    let order_id = OrderId::try_from(row.id).map_err(|e| unexpected(anyhow!("{e}")))?;
    apply_change(
        conn,
        BalanceChange {
            user,
            kind: HistoryKind::Payment,
            amount: -total.won(),
            balance_after: after,
            order_id,
            now,
        },
    )
    .await?;
    diesel::insert_into(payments::table)
        .values((
            payments::order_id.eq(row.id),
            payments::user_id.eq(row.user_id),
            payments::amount.eq(total.won()),
            payments::status.eq(PaymentStatus::Paid.as_str()),
            payments::paid_at.eq(now),
        ))
        .execute(conn)
        .await?;
    diesel::update(orders::table.find(row.id))
        .set((
            orders::status.eq(OrderStatus::Paid.as_str()),
            orders::paid_at.eq(now),
        ))
        .execute(conn)
        .await?;
    // the lines now count as sold (popular products, ADR 0005)
    diesel::sql_query(
        "INSERT INTO product_sales (order_id, product_id, quantity, paid_at)
         SELECT order_id, product_id, quantity, $2 FROM order_lines WHERE order_id = $1",
    )
    .bind::<BigInt, _>(row.id)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    let products: Vec<i64> = order_lines::table
        .filter(order_lines::order_id.eq(row.id))
        .select(order_lines::product_id)
        .load(conn)
        .await?;
    let products = products
        .into_iter()
        .filter_map(|p| ProductId::try_from(p).ok())
        .collect::<Vec<_>>();
    crate::cart::remove_products_in_tx(conn, user, &products).await?;
    let order = load_order(conn, row.id).await.map_err(unexpected)?;
    let event = order_event(EventType::OrderPaid, &order, now).map_err(unexpected)?;
    enqueue_in_tx(conn, &event).await?;
    Ok(order)
}

/// Cancels an order whose row the caller locked, with the compensation the rules plan.
async fn cancel_locked(
    conn: &mut AsyncPgConnection,
    row: &OrderRow,
    reason: CancelReason,
    now: Timestamp,
) -> Result<Order, TxError<CancelOrderError>> {
    let unexpected = |e: anyhow::Error| TxError::Rule(CancelOrderError::Unexpected(e));
    let status = row.status().map_err(unexpected)?;
    let plan = plan_cancel(status, reason)
        .map_err(|e| TxError::Rule(CancelOrderError::InvalidState(e.0)))?;
    let order_id = OrderId::try_from(row.id).map_err(|e| unexpected(anyhow!("{e}")))?;
    if plan.release {
        let lines: Vec<(i64, i32)> = order_lines::table
            .filter(order_lines::order_id.eq(row.id))
            .select((order_lines::product_id, order_lines::quantity))
            .load(conn)
            .await?;
        let lines = lines
            .into_iter()
            .map(|(p, q)| {
                Ok(stock::ReserveLine {
                    product_id: ProductId::try_from(p).map_err(|e| anyhow!("{e}"))?,
                    quantity: Quantity::try_from(i64::from(q)).map_err(|e| anyhow!("{e}"))?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(unexpected)?;
        crate::stock::release_in_tx(conn, &lines).await?;
        crate::coupon::restore_in_tx(conn, order_id).await?;
    }
    if plan.refund {
        let user = UserId::try_from(row.user_id).map_err(|e| unexpected(anyhow!("{e}")))?;
        let total = money(row.total).map_err(unexpected)?;
        let snapshot = lock_balance(conn, user).await?;
        let after = refund_to_balance(snapshot.balance, total).map_err(unexpected)?;
        apply_change(
            conn,
            BalanceChange {
                user,
                kind: HistoryKind::Refund,
                amount: total.won(),
                balance_after: after,
                order_id,
                now,
            },
        )
        .await?;
        diesel::update(payments::table.filter(payments::order_id.eq(row.id)))
            .set((
                payments::status.eq(PaymentStatus::Refunded.as_str()),
                payments::refunded_at.eq(now),
            ))
            .execute(conn)
            .await?;
        diesel::sql_query("DELETE FROM product_sales WHERE order_id = $1")
            .bind::<BigInt, _>(row.id)
            .execute(conn)
            .await?;
    }
    diesel::update(orders::table.find(row.id))
        .set((
            orders::status.eq(OrderStatus::Cancelled.as_str()),
            orders::cancelled_at.eq(now),
            orders::cancel_reason.eq(reason.as_str()),
        ))
        .execute(conn)
        .await?;
    let order = load_order(conn, row.id).await.map_err(unexpected)?;
    if plan.refund {
        let event = order_event(EventType::OrderCancelled, &order, now).map_err(unexpected)?;
        enqueue_in_tx(conn, &event).await?;
    }
    Ok(order)
}

#[derive(QueryableByName)]
struct SalesRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    price: i64,
    #[diesel(sql_type = BigInt)]
    stock: i64,
    #[diesel(sql_type = Timestamptz)]
    created_at: Timestamp,
    #[diesel(sql_type = BigInt)]
    sold: i64,
}

#[async_trait]
impl OrderStore for PgOrderStore {
    async fn place(&self, new: NewOrder) -> Result<Order, PlaceOrderError> {
        let mut conn = conn(&self.pool).await?;
        let result = conn
            .transaction::<_, TxError<PlaceOrderError>, _>(async move |conn| {
                let cmd = &new.command;
                let unexpected = |e: anyhow::Error| TxError::Rule(PlaceOrderError::Unexpected(e));
                let lines: Vec<stock::ReserveLine> = cmd
                    .lines()
                    .iter()
                    .map(|l| stock::ReserveLine {
                        product_id: l.product_id,
                        quantity: l.quantity,
                    })
                    .collect();
                let products = crate::stock::reserve_in_tx(conn, &lines)
                    .await
                    .map_err(|e| {
                        e.map_rule(|r| match r {
                            stock::ReserveError::NotFound { product_ids } => {
                                PlaceOrderError::ProductNotFound { product_ids }
                            }
                            stock::ReserveError::OutOfStock { product_ids } => {
                                PlaceOrderError::OutOfStock { product_ids }
                            }
                        })
                    })?;
                let priced: Vec<PricedProduct> = products
                    .iter()
                    .map(|p| PricedProduct {
                        id: p.id,
                        name: p.name.clone(),
                        unit_price: p.price,
                    })
                    .collect();
                let (items, subtotal) =
                    price_lines(cmd.lines(), &priced).map_err(|e| unexpected(e.into()))?;
                let id: i64 =
                    diesel::select(diesel::dsl::sql::<BigInt>("nextval('orders_id_seq')"))
                        .get_result(conn)
                        .await?;
                let order_id = OrderId::try_from(id).map_err(|e| unexpected(anyhow!("{e}")))?;
                let discount = match cmd.coupon_id() {
                    Some(coupon) => crate::coupon::use_in_tx(
                        conn,
                        cmd.user_id(),
                        coupon,
                        order_id,
                        subtotal,
                        new.created_at,
                    )
                    .await
                    .map_err(|e| {
                        e.map_rule(|r| match r {
                            coupon::UseCouponError::NotFound => PlaceOrderError::CouponNotFound,
                            coupon::UseCouponError::NotUsable(_) => {
                                PlaceOrderError::CouponNotUsable
                            }
                        })
                    })?,
                    None => Money::ZERO,
                };
                let t = totals(subtotal, discount);
                let row: OrderRow = diesel::insert_into(orders::table)
                    .values((
                        orders::id.eq(id),
                        orders::user_id.eq(cmd.user_id().get()),
                        orders::status.eq(OrderStatus::Pending.as_str()),
                        orders::subtotal.eq(t.subtotal.won()),
                        orders::discount.eq(t.discount.won()),
                        orders::total.eq(t.total.won()),
                        orders::coupon_id.eq(cmd.coupon_id().map(CouponId::get)),
                        orders::created_at.eq(new.created_at),
                        orders::expires_at.eq(new.expires_at),
                    ))
                    .returning(OrderRow::as_returning())
                    .get_result(conn)
                    .await?;
                let values: Vec<_> = items
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        (
                            order_lines::order_id.eq(id),
                            order_lines::line_no.eq(i as i16 + 1),
                            order_lines::product_id.eq(l.product_id.get()),
                            order_lines::name.eq(l.name.clone()),
                            order_lines::unit_price.eq(l.unit_price.won()),
                            order_lines::quantity.eq(l.quantity.get() as i32),
                            order_lines::subtotal.eq(l.subtotal.won()),
                        )
                    })
                    .collect();
                diesel::insert_into(order_lines::table)
                    .values(values)
                    .execute(conn)
                    .await?;
                if cmd.pay_now() {
                    return pay_locked(conn, &row, new.created_at).await.map_err(|e| {
                        e.map_rule(|p| match p {
                            PayOrderError::InsufficientBalance { balance, required } => {
                                PlaceOrderError::InsufficientBalance { balance, required }
                            }
                            PayOrderError::Unexpected(e) => PlaceOrderError::Unexpected(e),
                            other => {
                                PlaceOrderError::Unexpected(anyhow!("paying a new order: {other}"))
                            }
                        })
                    });
                }
                // built from what was just written: no need to read it back
                row.to_order(items, None).map_err(unexpected)
            })
            .await;
        finish(result, "placing an order")
    }

    async fn cancel(
        &self,
        id: OrderId,
        reason: CancelReason,
        now: Timestamp,
    ) -> Result<Order, CancelOrderError> {
        let mut conn = conn(&self.pool).await?;
        let result = conn
            .transaction::<_, TxError<CancelOrderError>, _>(async move |conn| {
                let row = lock_order(conn, id)
                    .await?
                    .ok_or(TxError::Rule(CancelOrderError::NotFound))?;
                cancel_locked(conn, &row, reason, now).await
            })
            .await;
        finish(result, "cancelling an order")
    }

    async fn expire_due(&self, now: Timestamp, batch: i64) -> anyhow::Result<Vec<OrderId>> {
        let mut conn = conn(&self.pool).await?;
        let result = conn
            .transaction::<_, TxError<CancelOrderError>, _>(async move |conn| {
                let rows: Vec<OrderRow> = orders::table
                    .filter(orders::status.eq(OrderStatus::Pending.as_str()))
                    .filter(orders::expires_at.le(now))
                    .order(orders::id.asc())
                    .limit(batch)
                    .select(OrderRow::as_select())
                    .for_no_key_update()
                    .skip_locked()
                    .load(conn)
                    .await?;
                let mut expired = Vec::with_capacity(rows.len());
                for row in &rows {
                    let order = cancel_locked(conn, row, CancelReason::Expired, now).await?;
                    expired.push(order.id);
                }
                Ok(expired)
            })
            .await;
        finish(result, "expiring orders").map_err(anyhow::Error::from)
    }

    async fn get(&self, id: OrderId) -> anyhow::Result<Option<Order>> {
        let mut conn = conn(&self.pool).await?;
        Ok(load_orders(&mut conn, &[id.get()]).await?.pop())
    }

    async fn owner(&self, id: OrderId) -> anyhow::Result<Option<UserId>> {
        let mut conn = conn(&self.pool).await?;
        let user: Option<i64> = orders::table
            .find(id.get())
            .select(orders::user_id)
            .first(&mut conn)
            .await
            .optional()
            .context("reading an order's owner")?;
        user.map(|u| valid(UserId::try_from(u), "user id"))
            .transpose()
    }

    async fn list_for_user(&self, user: UserId, page: PageRequest) -> anyhow::Result<Page<Order>> {
        let mut conn = conn(&self.pool).await?;
        let mut query = orders::table
            .filter(orders::user_id.eq(user.get()))
            .select(orders::id)
            .order(orders::id.desc())
            .limit(page.fetch_limit())
            .into_boxed();
        if let Some(after) = page.after() {
            query = query.filter(orders::id.lt(after));
        }
        let ids: Vec<i64> = query.load(&mut conn).await.context("listing orders")?;
        let orders = load_orders(&mut conn, &ids).await?;
        Ok(page.page(orders, |o| o.id.get()))
    }

    async fn best_sellers(
        &self,
        since: Timestamp,
        limit: i64,
    ) -> anyhow::Result<Vec<ProductSales>> {
        let mut conn = conn(&self.pool).await?;
        // Lines of orders paid since `since` and not refunded: an index-only range scan of
        // product_sales (ADR 0005); products joined for the answer.
        let rows: Vec<SalesRow> = diesel::sql_query(
            "SELECT p.id, p.name, p.price, p.stock, p.created_at, s.sold
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
                    product: stock::Product {
                        id: valid(ProductId::try_from(r.id), "product id")?,
                        name: r.name,
                        price: money(r.price)?,
                        stock: r.stock,
                        created_at: r.created_at,
                    },
                    sold_quantity: r.sold,
                })
            })
            .collect()
    }
}
