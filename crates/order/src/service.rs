//! The order use cases: each builds its decision (a pure function of [`crate::plan`])
//! and asks the store to run it in one transaction.

use crate::model::*;
use crate::plan::*;
use crate::ports::*;
use kernel::{Actor, Clock, Completion, OrderId, Page, PageRequest, UserId};
use std::sync::Arc;
use std::time::Duration;

/// Popular products look back 1..=30 days.
pub const MAX_POPULAR_DAYS: u32 = 30;

/// Orders: place, pay, cancel, refund, expire, read. Each use case is one decision of
/// [`crate::plan`] that the store runs in one transaction.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use kernel::{Actor, Clock, Quantity, SystemClock, UserId};
/// use order::{LineRequest, OrderService, OrderStatus, PlaceOrder, PlaceOrderError};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use stock::{NewProduct, Price, ProductName, StockLevel, StockStore};
///
/// let db = memory_adapter::MemoryStore::new();
/// let tea = StockStore::create(
///     &db,
///     NewProduct {
///         name: ProductName::try_from("Green tea".to_string()).unwrap(),
///         price: Price::try_from(4_500).unwrap(),
///         stock: StockLevel::try_from(3).unwrap(),
///         max_per_user: None,
///     },
///     SystemClock.now(),
/// )
/// .await
/// .unwrap();
/// // unpaid orders expire after 15 minutes
/// let orders = OrderService::new(Arc::new(db), Arc::new(SystemClock), Duration::from_secs(900));
/// let alice = UserId::try_from(1).unwrap();
/// let two = |p| vec![LineRequest { product_id: p, quantity: Quantity::try_from(2).unwrap() }];
/// let order = orders.place(PlaceOrder::new(alice, two(tea.id), None, false).unwrap(), None).await.unwrap();
/// assert_eq!((order.status, order.total.won()), (OrderStatus::Pending, 9_000));
/// // one unit is left: the next order of two is refused and takes nothing
/// let short = orders.place(PlaceOrder::new(alice, two(tea.id), None, false).unwrap(), None).await;
/// assert!(matches!(short, Err(PlaceOrderError::OutOfStock { .. })));
/// // paying needs the balance to cover the total; cancelling gives the stock back
/// assert!(orders.pay(Actor::User(alice), order.id, None).await.is_err());
/// orders.cancel(Actor::User(alice), order.id, None).await.unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct OrderService {
    store: Arc<dyn OrderStore>,
    clock: Arc<dyn Clock>,
    pending_ttl: chrono::Duration,
}

impl OrderService {
    /// A service over `store`; unpaid orders expire `pending_ttl` after they are placed.
    pub fn new(store: Arc<dyn OrderStore>, clock: Arc<dyn Clock>, pending_ttl: Duration) -> Self {
        let pending_ttl =
            chrono::Duration::from_std(pending_ttl).unwrap_or(chrono::Duration::minutes(15));
        Self {
            store,
            clock,
            pending_ttl,
        }
    }

    fn moment(&self) -> Moment {
        Moment {
            now: self.clock.now(),
            event_id: uuid::Uuid::new_v4(),
        }
    }

    /// Places the order ([`plan_place`]); it expires `pending_ttl` after now unless paid.
    /// `completion` records the request's answer with the order.
    pub async fn place(
        &self,
        command: PlaceOrder,
        completion: Option<Completion<Order>>,
    ) -> Result<Order, PlaceOrderError> {
        let moment = self.moment();
        let expires_at = moment.now + self.pending_ttl;
        let decided = command.clone();
        self.store
            .place(
                command,
                Box::new(move |snapshot| plan_place(&decided, snapshot, moment, expires_at)),
                completion,
            )
            .await
    }

    /// Pays the order from its owner's balance ([`plan_pay`]).
    pub async fn pay(
        &self,
        actor: Actor,
        id: OrderId,
        completion: Option<Completion<Order>>,
    ) -> Result<Order, PayOrderError> {
        let moment = self.moment();
        self.store
            .pay(
                id,
                Box::new(move |snapshot| plan_pay(actor, snapshot, moment)),
                completion,
            )
            .await
    }

    /// Cancels the order on request ([`plan_cancel`]).
    pub async fn cancel(
        &self,
        actor: Actor,
        id: OrderId,
        completion: Option<Completion<Order>>,
    ) -> Result<Order, CancelOrderError> {
        let moment = self.moment();
        self.store
            .cancel(
                id,
                Box::new(move |snapshot| {
                    plan_cancel(Cancellation::Request(actor), snapshot, moment)
                }),
                completion,
            )
            .await
    }

    /// Refunds part of a paid order ([`plan_refund`]).
    pub async fn refund(
        &self,
        actor: Actor,
        id: OrderId,
        request: RefundRequest,
        completion: Option<Completion<Refund>>,
    ) -> Result<Refund, RefundOrderError> {
        let moment = self.moment();
        self.store
            .refund(
                id,
                Box::new(move |snapshot| plan_refund(actor, &request, snapshot, moment)),
                completion,
            )
            .await
    }

    /// Cancels as EXPIRED up to `batch` PENDING orders past their `expires_at`, each in
    /// its own short transaction; returns how many. Orders another instance expired (or
    /// its owner paid or cancelled) meanwhile are skipped: the decision, made under
    /// lock, refuses them.
    pub async fn expire_due(&self, batch: i64) -> anyhow::Result<usize> {
        let due = self.store.due_for_expiry(self.clock.now(), batch).await?;
        let mut expired = 0;
        for id in due {
            let moment = self.moment();
            let outcome = self
                .store
                .cancel(
                    id,
                    Box::new(move |snapshot| plan_cancel(Cancellation::Expiry, snapshot, moment)),
                    None,
                )
                .await;
            match outcome {
                Ok(_) => expired += 1,
                Err(CancelOrderError::Unexpected(e)) => return Err(e),
                Err(_) => {}
            }
        }
        Ok(expired)
    }

    /// An order.
    pub async fn get(&self, id: OrderId) -> anyhow::Result<Option<Order>> {
        self.store.get(id).await
    }

    /// The user's orders, newest first.
    pub async fn list_for_user(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> anyhow::Result<Page<Order>> {
        self.store.list_for_user(user, page).await
    }

    /// Every order matching `filter`, newest first (admin).
    pub async fn search(
        &self,
        filter: OrderFilter,
        page: PageRequest,
    ) -> anyhow::Result<Page<Order>> {
        self.store.search(filter, page).await
    }

    /// Best sellers of the last `days` (1..=30) days.
    pub async fn best_sellers(&self, days: u32, limit: i64) -> anyhow::Result<Vec<ProductSales>> {
        let days = days.clamp(1, MAX_POPULAR_DAYS);
        let since = self.clock.now() - chrono::Duration::days(i64::from(days));
        self.store.best_sellers(since, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use kernel::testing::t0 as now;
    use kernel::{
        FixedClock, IdempotencyClaim, Money, ProductId, Quantity, RecordedResponse, RefundId,
    };

    fn service(store: MockOrderStore) -> OrderService {
        OrderService::new(
            Arc::new(store),
            Arc::new(FixedClock(now())),
            Duration::from_secs(900),
        )
    }

    fn user() -> UserId {
        UserId::try_from(5).unwrap()
    }

    fn command(pay_now: bool) -> PlaceOrder {
        let line = LineRequest {
            product_id: ProductId::try_from(1).unwrap(),
            quantity: Quantity::try_from(2).unwrap(),
        };
        PlaceOrder::new(user(), vec![line], None, pay_now).unwrap()
    }

    fn place_snapshot(balance: Option<i64>) -> PlaceSnapshot {
        PlaceSnapshot {
            products: vec![ProductSnapshot {
                id: ProductId::try_from(1).unwrap(),
                name: "tea".into(),
                price: Money::try_from(1_500).unwrap(),
                slots: vec![stock::Slot {
                    index: 0,
                    units: 10,
                }],
                max_per_user: None,
                held: 0,
            }],
            cart: vec![],
            coupon: None,
            balance: balance.map(|b| Money::try_from(b).unwrap()),
            order_id: OrderId::try_from(44).unwrap(),
            payment_id: 9,
        }
    }

    fn completion<T: 'static>() -> Completion<T> {
        Completion::new(
            IdempotencyClaim {
                caller: "user:5".into(),
                key: "k".into(),
                request_hash: "h".into(),
                claim_id: uuid::Uuid::from_u128(1),
            },
            |_: &T| RecordedResponse {
                status: 201,
                headers: vec![],
                body: b"rendered".to_vec(),
            },
        )
    }

    // The service hands the store the decision for THIS command at THIS moment: a fake
    // store feeds it a snapshot and checks the plan (expiry after the pending TTL, the
    // pay-now payment, the completion passed through).
    #[tokio::test]
    async fn placing_asks_the_store_to_run_the_place_decision() {
        let mut store = MockOrderStore::new();
        store
            .expect_place()
            .times(1)
            .returning(|cmd, decide, completion| {
                assert!(cmd.pay_now());
                let plan = decide(&place_snapshot(Some(10_000))).unwrap();
                assert_eq!(plan.order.created_at, now());
                assert_eq!(
                    plan.order.expires_at,
                    now() + chrono::Duration::seconds(900)
                );
                assert_eq!(plan.order.status, OrderStatus::Paid);
                assert_eq!(plan.balance.as_ref().unwrap().after().won(), 7_000);
                assert_eq!(plan.stock[0].delta, -2);
                let record = completion.unwrap().record(&plan.order);
                assert_eq!(record.response.body, b"rendered");
                Ok(plan.order)
            });
        let order = service(store)
            .place(command(true), Some(completion()))
            .await
            .unwrap();
        assert_eq!(order.total.won(), 3_000);
    }

    // Invariant: a refusal of the decision is what the caller gets; the store writes
    // nothing for it (it returns before writing).
    #[tokio::test]
    async fn a_refused_placement_is_returned_as_decided() {
        let mut store = MockOrderStore::new();
        store.expect_place().returning(|_, decide, _| {
            let refused = decide(&place_snapshot(Some(10))).unwrap_err();
            Err(refused)
        });
        let err = service(store).place(command(true), None).await.unwrap_err();
        assert!(matches!(err, PlaceOrderError::InsufficientBalance(_)));
    }

    fn pending_order() -> Order {
        Order {
            id: OrderId::try_from(44).unwrap(),
            user_id: user(),
            status: OrderStatus::Pending,
            items: vec![OrderLine {
                product_id: ProductId::try_from(1).unwrap(),
                name: "tea".into(),
                unit_price: Money::try_from(1_500).unwrap(),
                quantity: Quantity::try_from(2).unwrap(),
                subtotal: Money::try_from(3_000).unwrap(),
            }],
            subtotal: Money::try_from(3_000).unwrap(),
            discount: Money::ZERO,
            total: Money::try_from(3_000).unwrap(),
            coupon_id: None,
            created_at: now(),
            expires_at: now() + chrono::Duration::seconds(900),
            paid_at: None,
            cancelled_at: None,
            cancel_reason: None,
            payment: None,
            refunds: vec![],
            refunded_total: Money::ZERO,
        }
    }

    fn order_snapshot(order: Order, balance: i64) -> OrderSnapshot {
        let slots = order
            .items
            .iter()
            .map(|l| (l.product_id, stock::Slot { index: 0, units: 0 }))
            .collect();
        OrderSnapshot {
            order,
            user_coupon_id: None,
            slots,
            balance: Some(Money::try_from(balance).unwrap()),
            payment_id: 9,
            refund_id: RefundId::try_from(3).unwrap(),
        }
    }

    #[tokio::test]
    async fn paying_runs_the_pay_decision_for_the_caller() {
        let mut store = MockOrderStore::new();
        store
            .expect_pay()
            .withf(|id, _, c| id.get() == 44 && c.is_some())
            .times(1)
            .returning(|_, decide, _| {
                let plan = decide(&order_snapshot(pending_order(), 3_000)).unwrap();
                assert_eq!(plan.order.paid_at, Some(now()));
                assert_eq!(plan.balance.unwrap().after(), Money::ZERO);
                Ok(plan.order)
            });
        let paid = service(store)
            .pay(
                Actor::User(user()),
                OrderId::try_from(44).unwrap(),
                Some(completion()),
            )
            .await
            .unwrap();
        assert_eq!(paid.status, OrderStatus::Paid);
    }

    // Invariant: another user's order is refused by the decision (403), not by luck.
    #[tokio::test]
    async fn a_stranger_cannot_pay_cancel_or_refund() {
        let stranger = Actor::User(UserId::try_from(6).unwrap());
        let mut store = MockOrderStore::new();
        store.expect_pay().returning(|_, decide, _| {
            Err(decide(&order_snapshot(pending_order(), 9_999)).unwrap_err())
        });
        store.expect_cancel().returning(|_, decide, _| {
            Err(decide(&order_snapshot(pending_order(), 0)).unwrap_err())
        });
        store.expect_refund().returning(|_, decide, _| {
            Err(decide(&order_snapshot(pending_order(), 0)).unwrap_err())
        });
        let svc = service(store);
        let id = OrderId::try_from(44).unwrap();
        assert!(matches!(
            svc.pay(stranger, id, None).await,
            Err(PayOrderError::Forbidden)
        ));
        assert!(matches!(
            svc.cancel(stranger, id, None).await,
            Err(CancelOrderError::Forbidden)
        ));
        let request = RefundRequest::new(
            vec![RefundItem {
                product_id: ProductId::try_from(1).unwrap(),
                quantity: Quantity::try_from(1).unwrap(),
            }],
            None,
        )
        .unwrap();
        assert!(matches!(
            svc.refund(stranger, id, request, None).await,
            Err(RefundOrderError::Forbidden)
        ));
    }

    // The sweep lists due orders and cancels each as EXPIRED under lock; one that is no
    // longer due (paid meanwhile) is skipped, not an error.
    #[tokio::test]
    async fn expiry_cancels_due_orders_and_skips_those_no_longer_due() {
        let mut store = MockOrderStore::new();
        store
            .expect_due_for_expiry()
            .withf(|at, batch| *at == now() && *batch == 50)
            .returning(|_, _| {
                Ok(vec![
                    OrderId::try_from(1).unwrap(),
                    OrderId::try_from(2).unwrap(),
                ])
            });
        store.expect_cancel().times(2).returning(|id, decide, c| {
            assert!(c.is_none());
            let mut order = pending_order();
            order.expires_at = now();
            if id.get() == 2 {
                order.status = OrderStatus::Paid;
            }
            let plan = decide(&order_snapshot(order, 0))?;
            assert_eq!(plan.order.cancel_reason, Some(CancelReason::Expired));
            Ok(plan.order)
        });
        assert_eq!(service(store).expire_due(50).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn best_sellers_look_back_the_given_days_capped_at_30() {
        let mut store = MockOrderStore::new();
        store
            .expect_best_sellers()
            .withf(|since, limit| *since == now() - chrono::Duration::days(3) && *limit == 5)
            .times(1)
            .returning(|_, _| Ok(vec![]));
        store
            .expect_best_sellers()
            .withf(|since, _| *since == now() - chrono::Duration::days(30))
            .times(1)
            .returning(|_, _| Ok(vec![]));
        let svc = service(store);
        svc.best_sellers(3, 5).await.unwrap();
        svc.best_sellers(400, 5).await.unwrap();
    }
}
