//! Orders: [`order::OrderStore`]. Each use case is one step under the store's lock:
//! build the snapshot ([`crate::snapshot`]), call the decision, check that the plan
//! still fits every row it touches, then write all of it (or, on any refusal or misfit,
//! nothing).

use crate::paging::{keyset, Order as ListOrder};
use crate::snapshot::Wants;
use crate::state::{SaleRow, State};
use crate::MemoryStore;
use anyhow::anyhow;
use async_trait::async_trait;
use coupon::StoredStatus;
use kernel::{
    ClaimLost, Completion, IdempotencyRecord, OrderId, Page, PageRequest, ProductId, Timestamp,
    UserId,
};
use order::plan::{CouponChange, OrderPlan, OrderWrite};
use order::{
    CancelDecision, CancelOrderError, Order, OrderDecision, OrderFilter, OrderStatus, OrderStore,
    PayDecision, PayOrderError, PlaceDecision, PlaceOrder, PlaceOrderError, ProductSales, Refund,
    RefundDecision, RefundOrderError,
};
use std::collections::BTreeMap;

impl State {
    /// Checks that `plan` (and `record`) still fit the rows, as the PostgreSQL store's
    /// guards do: the claim still in progress, the order's status the one decided on,
    /// no slot below zero, the coupon in the state the change expects, the balance the
    /// one decided on.
    fn check_plan(
        &self,
        plan: &OrderPlan,
        record: Option<&IdempotencyRecord>,
    ) -> anyhow::Result<()> {
        if let Some(record) = record {
            if !self.claim_in_progress(&record.claim) {
                return Err(ClaimLost.into());
            }
        }
        let order = &plan.order;
        let order_fits = match plan.write {
            OrderWrite::Insert => !self.orders.contains_key(&order.id),
            OrderWrite::Update { from } => {
                self.orders.get(&order.id).is_some_and(|o| o.status == from)
            }
        };
        let mut slots: BTreeMap<(ProductId, i16), i64> = BTreeMap::new();
        for change in &plan.stock {
            *slots.entry((change.product_id, change.slot)).or_default() += change.delta;
        }
        let stock_fits = slots.iter().all(|((product, index), delta)| {
            self.slots
                .get(product)
                .and_then(|slots| slots.iter().find(|s| s.index == *index))
                .is_some_and(|s| s.units.checked_add(*delta).is_some_and(|after| after >= 0))
        });
        let coupon_fits = match plan.coupon {
            None => true,
            Some(CouponChange::Use { user_coupon_id }) => self
                .user_coupons
                .get(&user_coupon_id)
                .is_some_and(|row| row.stored == StoredStatus::Available),
            Some(CouponChange::Restore { user_coupon_id }) => self
                .user_coupons
                .get(&user_coupon_id)
                .is_some_and(|row| row.stored == StoredStatus::Used),
        };
        let balance_fits = plan.balance.as_ref().is_none_or(|c| self.balance_fits(c));
        if order_fits && stock_fits && coupon_fits && balance_fits {
            Ok(())
        } else {
            Err(anyhow!(
                "the rows no longer fit the plan (order {order_fits}, stock {stock_fits}, coupon {coupon_fits}, balance {balance_fits})"
            ))
        }
    }

    /// Writes the whole plan and the request's answer, or nothing when they no longer fit.
    pub fn write_plan(
        &mut self,
        plan: &OrderPlan,
        record: Option<IdempotencyRecord>,
    ) -> anyhow::Result<()> {
        self.check_plan(plan, record.as_ref())?;
        let order = &plan.order;
        let at = plan.at;
        self.orders.insert(order.id, order.clone());
        for change in &plan.stock {
            self.change_slots(
                change.product_id,
                [stock::SlotChange {
                    index: change.slot,
                    delta: change.delta,
                }],
            )?;
        }
        match plan.coupon {
            Some(CouponChange::Use { user_coupon_id }) => {
                if let Some(row) = self.user_coupons.get_mut(&user_coupon_id) {
                    row.stored = StoredStatus::Used;
                    row.order_id = Some(order.id);
                    row.used_at = Some(at);
                }
            }
            Some(CouponChange::Restore { user_coupon_id }) => {
                if let Some(row) = self.user_coupons.get_mut(&user_coupon_id) {
                    row.stored = StoredStatus::Available;
                    row.order_id = None;
                    row.used_at = None;
                }
            }
            None => {}
        }
        if let Some(change) = &plan.balance {
            self.apply_balance(change, at);
        }
        for sale in &plan.sales {
            let key = (order.id, sale.product_id);
            if sale.quantity > 0 {
                self.sales
                    .entry(key)
                    .and_modify(|row| row.quantity = sale.quantity)
                    .or_insert(SaleRow {
                        quantity: sale.quantity,
                        paid_at: sale.paid_at,
                    });
            } else {
                self.sales.remove(&key);
            }
        }
        for product in &plan.cart_removal {
            self.carts.remove(&(order.user_id, *product));
        }
        if let Some(event) = &plan.event {
            self.enqueue(event.into());
        }
        if let Some(record) = record {
            self.complete_claim(record);
        }
        Ok(())
    }
}

impl MemoryStore {
    /// The shape of pay, cancel and refund: snapshot, decide, write, in one step.
    fn change_order<E: From<anyhow::Error>>(
        &self,
        id: OrderId,
        wants: Wants,
        decide: OrderDecision<E>,
        not_found: E,
        record: impl FnOnce(&OrderPlan) -> Option<IdempotencyRecord>,
    ) -> Result<OrderPlan, E> {
        let mut db = self.db();
        let Some(snapshot) = db.order_snapshot(id, wants) else {
            return Err(not_found);
        };
        let plan = decide(&snapshot)?;
        let record = record(&plan);
        db.write_plan(&plan, record)?;
        Ok(plan)
    }
}

#[async_trait]
impl OrderStore for MemoryStore {
    async fn place(
        &self,
        command: PlaceOrder,
        decide: PlaceDecision,
        completion: Option<Completion<Order>>,
    ) -> Result<Order, PlaceOrderError> {
        let now = self.clock.now();
        let mut db = self.db();
        let snapshot = db.place_snapshot(&command, now);
        let plan = decide(&snapshot)?;
        let record = completion.map(|c| c.record(&plan.order));
        db.write_plan(&plan, record)?;
        Ok(plan.order)
    }

    async fn pay(
        &self,
        id: OrderId,
        decide: PayDecision,
        completion: Option<Completion<Order>>,
    ) -> Result<Order, PayOrderError> {
        let wants = Wants {
            coupon: false,
            new_payment: true,
            new_refund: false,
        };
        let plan = self.change_order(id, wants, decide, PayOrderError::NotFound, |plan| {
            completion.map(|c| c.record(&plan.order))
        })?;
        Ok(plan.order)
    }

    async fn cancel(
        &self,
        id: OrderId,
        decide: CancelDecision,
        completion: Option<Completion<Order>>,
    ) -> Result<Order, CancelOrderError> {
        let wants = Wants {
            coupon: true,
            new_payment: false,
            new_refund: false,
        };
        let plan = self.change_order(id, wants, decide, CancelOrderError::NotFound, |plan| {
            completion.map(|c| c.record(&plan.order))
        })?;
        Ok(plan.order)
    }

    async fn refund(
        &self,
        id: OrderId,
        decide: RefundDecision,
        completion: Option<Completion<Refund>>,
    ) -> Result<Refund, RefundOrderError> {
        let wants = Wants {
            coupon: false,
            new_payment: false,
            new_refund: true,
        };
        let plan = self.change_order(id, wants, decide, RefundOrderError::NotFound, |plan| {
            let refund = plan.refund.as_ref()?;
            completion.map(|c| c.record(refund))
        })?;
        plan.refund
            .ok_or_else(|| RefundOrderError::Unexpected(anyhow!("a refund plan without a refund")))
    }

    async fn due_for_expiry(&self, now: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>> {
        let db = self.db();
        let mut due: Vec<&Order> = db
            .orders
            .values()
            .filter(|o| o.status == OrderStatus::Pending && o.expires_at <= now)
            .collect();
        due.sort_by_key(|o| (o.expires_at, o.id));
        Ok(due
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|o| o.id)
            .collect())
    }

    async fn get(&self, id: OrderId) -> anyhow::Result<Option<Order>> {
        Ok(self.db().orders.get(&id).cloned())
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
        let db = self.db();
        let matching = db
            .orders
            .values()
            .rev()
            .filter(|o| filter.status.is_none_or(|s| o.status == s))
            .filter(|o| filter.user_id.is_none_or(|u| o.user_id == u))
            .filter(|o| filter.created_from.is_none_or(|from| o.created_at >= from))
            .filter(|o| filter.created_to.is_none_or(|to| o.created_at < to))
            .cloned();
        if !filter.has_created_range() {
            return Ok(keyset(matching, page, ListOrder::Descending, |o| {
                o.id.get()
            }));
        }
        // Creation-time order (OrderStore::search): descending (created_at, id), below
        // the cursor order's own key; an unknown cursor continues with nothing.
        let key = |o: &Order| (o.created_at, o.id);
        let mut matching: Vec<Order> = matching.collect();
        matching.sort_by_key(|o| std::cmp::Reverse(key(o)));
        let below = match page.after() {
            None => None,
            Some(after) => match OrderId::try_from(after)
                .ok()
                .and_then(|id| db.orders.get(&id))
            {
                Some(cursor) => Some(key(cursor)),
                None => return Ok(page.page(Vec::new(), |o: &Order| o.id.get())),
            },
        };
        let fetched = matching
            .into_iter()
            .filter(|o| below.is_none_or(|below| key(o) < below))
            .take(usize::try_from(page.fetch_limit()).unwrap_or(usize::MAX))
            .collect();
        Ok(page.page(fetched, |o| o.id.get()))
    }

    async fn best_sellers(
        &self,
        since: Timestamp,
        limit: i64,
    ) -> anyhow::Result<Vec<ProductSales>> {
        let db = self.db();
        let mut sold: BTreeMap<ProductId, i64> = BTreeMap::new();
        for ((_, product), row) in &db.sales {
            if row.paid_at >= since {
                *sold.entry(*product).or_default() += row.quantity;
            }
        }
        let mut ranked: Vec<(ProductId, i64)> = sold.into_iter().collect();
        ranked.sort_by_key(|(product, units)| (std::cmp::Reverse(*units), *product));
        Ok(ranked
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .filter_map(|(product, units)| {
                Some(ProductSales {
                    product: db.products.get(&product)?.clone(),
                    sold_quantity: units,
                })
            })
            .collect())
    }
}
