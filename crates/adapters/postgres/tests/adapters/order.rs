//! `PgOrderStore` against a real database, through `OrderService` (the store runs the
//! domain's decisions): round trips per use case, idempotency records in the work's
//! transaction, concurrent refunds and cancels, ledger rows and caps.

use balance::{
    plan_approve, plan_open_charge, BalanceStore, ChargeAmount, NewCharge, PaymentMethod,
};
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures::FutureExt;
use kernel::{
    Actor, Clock, Completion, IdempotencyClaim, Money, PageRequest, ProductId, Quantity,
    RecordedResponse, SystemClock, UserId,
};
use order::plan::RefundRequest;
use order::{
    LineRequest, Order, OrderService, OrderStatus, PaymentStatus, PlaceOrder, RefundItem,
    RefundOrderError,
};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::{BeginOutcome, PgBalanceStore, PgIdempotencyStore, PgOrderStore, PgPool};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stock::{NewProduct, Price, ProductName, StockDelta, StockLevel, StockStore};

fn user(id: i64) -> UserId {
    UserId::try_from(id).unwrap()
}

fn orders(pool: PgPool) -> OrderService {
    OrderService::new(
        Arc::new(PgOrderStore::new(pool)),
        Arc::new(SystemClock),
        Duration::from_secs(900),
    )
}

async fn product(pool: &PgPool, price: i64, stock: i64) -> ProductId {
    let store = postgres_adapter::stock::PgStockStore::new(pool.clone());
    store
        .create(
            NewProduct {
                name: ProductName::try_from("tea".to_string()).unwrap(),
                price: Price::try_from(price).unwrap(),
                stock: StockLevel::try_from(stock).unwrap(),
                max_per_user: None,
            },
            SystemClock.now(),
        )
        .await
        .unwrap()
        .id
}

async fn adjust(
    store: &postgres_adapter::stock::PgStockStore,
    id: ProductId,
    d: i64,
) -> Result<stock::Product, stock::AdjustStockError> {
    let delta = StockDelta::try_from(d).unwrap();
    store
        .adjust(
            id,
            Box::new(move |slots| stock::plan_adjust(slots, delta)),
            SystemClock.now(),
        )
        .await
}

async fn stock_of(pool: &PgPool, id: ProductId) -> i64 {
    postgres_adapter::stock::PgStockStore::new(pool.clone())
        .get(id)
        .await
        .unwrap()
        .unwrap()
        .stock
}

/// Charges `amount` to the user's balance (open and approve, as the service would).
async fn charge(pool: &PgPool, u: i64, amount: i64) {
    let store = PgBalanceStore::new(pool.clone());
    let amount = ChargeAmount::try_from(amount).unwrap();
    let c = store
        .open_charge(
            NewCharge {
                user_id: user(u),
                amount,
                method: PaymentMethod::try_from("card".to_string()).unwrap(),
                now: SystemClock.now(),
                claim_id: None,
            },
            Box::new(move |s| plan_open_charge(s, amount)),
        )
        .await
        .unwrap();
    let tx = balance::GatewayTransactionId(format!("tx-{}", c.id));
    store
        .approve_charge(
            c.id,
            Box::new(move |c, b| plan_approve(c, b, tx)),
            None,
            SystemClock.now(),
        )
        .await
        .unwrap();
}

async fn balance_of(pool: &PgPool, u: i64) -> i64 {
    PgBalanceStore::new(pool.clone())
        .balance(user(u))
        .await
        .unwrap()
        .won()
}

async fn history_of(pool: &PgPool, u: i64) -> Vec<balance::HistoryEntry> {
    PgBalanceStore::new(pool.clone())
        .history(user(u), PageRequest::new(100, None).unwrap())
        .await
        .unwrap()
        .items
}

fn lines(items: &[(ProductId, i64)]) -> Vec<LineRequest> {
    items
        .iter()
        .map(|(p, q)| LineRequest {
            product_id: *p,
            quantity: Quantity::try_from(*q).unwrap(),
        })
        .collect()
}

fn place(u: i64, items: &[(ProductId, i64)], pay_now: bool) -> PlaceOrder {
    PlaceOrder::new(user(u), lines(items), None, pay_now).unwrap()
}

fn refund_of(product: ProductId, units: i64) -> RefundRequest {
    RefundRequest::new(
        vec![RefundItem {
            product_id: product,
            quantity: Quantity::try_from(units).unwrap(),
        }],
        None,
    )
    .unwrap()
}

/// A pool whose connections record every round trip they make: each statement (BEGIN
/// and COMMIT included) and each statement prepared.
fn counting_pool(url: &str, log: Arc<Mutex<Vec<String>>>) -> PgPool {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let log = log.clone();
        async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            conn.set_instrumentation(Counter(log));
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
    Pool::builder(manager).max_size(1).build().unwrap()
}

struct Counter(Arc<Mutex<Vec<String>>>);

impl Instrumentation for Counter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        let entry = match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                let sql = query.to_string();
                format!(
                    "query: {}",
                    sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ")
                )
            }
            InstrumentationEvent::CacheQuery { sql, .. } => {
                format!(
                    "prepare: {}",
                    sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ")
                )
            }
            _ => return,
        };
        self.0.lock().unwrap().push(entry);
    }
}

/// The round trips `work` makes on a warm connection (its statements already prepared
/// by a first run of the same use case).
async fn round_trips<F, Fut>(log: &Arc<Mutex<Vec<String>>>, work: F) -> Vec<String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    log.lock().unwrap().clear();
    work().await;
    log.lock().unwrap().clone()
}

// Target of issue 10: a pay-now order, a payment and a cancellation each take at most 5
// round trips to PostgreSQL, BEGIN and COMMIT included, on a warm connection (placing:
// 4; paying and cancelling: 5, the order row locked alone first).
#[tokio::test]
async fn pay_now_pay_and_cancel_take_at_most_five_round_trips() {
    let db = TestDatabase::create().await;
    let pool = db.pool(4);
    let p = product(&pool, 1_000, 100).await;
    charge(&pool, 1, 1_000_000).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let svc = orders(counting_pool(&db.url, log.clone()));
    // warm: each statement prepared once on the one connection
    let warm = svc.place(place(1, &[(p, 1)], true), None).await.unwrap();
    svc.cancel(Actor::User(user(1)), warm.id, None)
        .await
        .unwrap();
    let pending = svc.place(place(1, &[(p, 1)], false), None).await.unwrap();
    svc.pay(Actor::User(user(1)), pending.id, None)
        .await
        .unwrap();

    let mut paid: Option<Order> = None;
    let pay_now = round_trips(&log, || async {
        paid = Some(svc.place(place(1, &[(p, 2)], true), None).await.unwrap());
    })
    .await;
    let pending = svc.place(place(1, &[(p, 1)], false), None).await.unwrap();
    let pay = round_trips(&log, || async {
        svc.pay(Actor::User(user(1)), pending.id, None)
            .await
            .unwrap();
    })
    .await;
    let cancel = round_trips(&log, || async {
        svc.cancel(Actor::User(user(1)), paid.as_ref().unwrap().id, None)
            .await
            .unwrap();
    })
    .await;
    for (name, trips) in [("pay-now", &pay_now), ("pay", &pay), ("cancel", &cancel)] {
        assert!(
            trips.len() <= 5,
            "{name} took {} round trips: {trips:#?}",
            trips.len()
        );
        assert!(
            !trips.iter().any(|t| t.starts_with("prepare")),
            "{name} prepared a statement on a warm connection: {trips:#?}"
        );
    }
    assert_eq!(
        pay_now.len(),
        4,
        "BEGIN, snapshot, write, COMMIT: {pay_now:#?}"
    );
}

fn completion(claim: IdempotencyClaim) -> Completion<Order> {
    Completion::new(claim, |o: &Order| RecordedResponse {
        status: 201,
        headers: vec![],
        body: o.id.get().to_string().into_bytes(),
    })
}

// Invariant: the Idempotency-Key record is written in the transaction of the work: the
// first request that completes the claim commits, and a second request holding the
// same claim (one that took it over after a lease) rolls its whole work back: no second
// order, no second payment, no stock taken twice.
#[tokio::test]
async fn a_claim_is_completed_once_with_the_work_and_a_second_completion_rolls_back() {
    let db = TestDatabase::create().await;
    let pool = db.pool(4);
    let p = product(&pool, 1_000, 10).await;
    charge(&pool, 2, 10_000).await;
    let keys = PgIdempotencyStore::new(
        pool.clone(),
        Duration::from_secs(60),
        Duration::from_secs(3600),
    );
    let BeginOutcome::Claimed(claim_id) = keys.begin("user:2", "order-1", "h").await.unwrap()
    else {
        panic!("a fresh key is claimed");
    };
    let claim = IdempotencyClaim {
        caller: "user:2".into(),
        key: "order-1".into(),
        request_hash: "h".into(),
        claim_id,
    };
    let svc = orders(pool.clone());
    let first = svc
        .place(place(2, &[(p, 2)], true), Some(completion(claim.clone())))
        .await
        .unwrap();
    match keys.begin("user:2", "order-1", "h").await.unwrap() {
        BeginOutcome::Replay(stored) => {
            assert_eq!(stored.body, first.id.get().to_string().into_bytes())
        }
        other => panic!("the key completed with the order, got {other:?}"),
    }
    let second = svc
        .place(place(2, &[(p, 2)], true), Some(completion(claim)))
        .await;
    let err = second.unwrap_err();
    assert!(
        matches!(&err, order::PlaceOrderError::Unexpected(e) if e.is::<kernel::ClaimLost>()),
        "{err:?}"
    );
    assert_eq!(stock_of(&pool, p).await, 8, "stock taken once");
    assert_eq!(balance_of(&pool, 2).await, 8_000, "paid once");
    let page = svc
        .list_for_user(user(2), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "one order");
}

// Invariant (API.md): concurrent refunds and a cancel of one order never give back more
// than its total; every unit returns to stock exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refunds_and_a_cancel_never_refund_more_than_the_total() {
    let db = TestDatabase::create().await;
    let pool = db.pool(16);
    let p = product(&pool, 333, 30).await;
    charge(&pool, 3, 100_000).await;
    let svc = orders(pool.clone());
    let paid = svc.place(place(3, &[(p, 20)], true), None).await.unwrap();
    assert_eq!(paid.total.won(), 6_660);
    let refunds = (0..20).map(|_| {
        let svc = svc.clone();
        async move {
            svc.refund(Actor::Admin, paid.id, refund_of(p, 1), None)
                .await
        }
        .boxed()
    });
    let cancel = {
        let svc = svc.clone();
        async move {
            let _ = svc.cancel(Actor::Admin, paid.id, None).await;
        }
        .boxed()
    };
    let (results, _) = futures::join!(futures::future::join_all(refunds), cancel);
    for r in &results {
        assert!(
            matches!(
                r,
                Ok(_)
                    | Err(RefundOrderError::InvalidState(_))
                    | Err(RefundOrderError::ExceedsOrder { .. })
            ),
            "{r:?}"
        );
    }
    let given_back: i64 = history_of(&pool, 3)
        .await
        .iter()
        .filter(|h| h.kind == balance::HistoryKind::Refund)
        .map(|h| h.amount)
        .sum();
    assert_eq!(given_back, 6_660, "exactly the total came back");
    assert_eq!(balance_of(&pool, 3).await, 100_000);
    assert_eq!(stock_of(&pool, p).await, 30, "every unit back once");
    let order = svc.get(paid.id).await.unwrap().unwrap();
    assert!(order.refunded_total.won() <= order.total.won());
}

// Invariant (API.md): every payment and every refund writes its history row, also when
// the amount is 0 (an order made free by a coupon).
#[tokio::test]
async fn a_free_order_writes_payment_and_refund_rows_of_zero() {
    use coupon::{CouponStore, Discount, NewCoupon};
    let db = TestDatabase::create().await;
    let pool = db.pool(4);
    let p = product(&pool, 5_000, 10).await;
    let coupons = postgres_adapter::coupon::PgCouponStore::new(pool.clone());
    let now = SystemClock.now();
    let free = coupons
        .create(
            NewCoupon::new(
                coupon::CouponName::try_from("free".to_string()).unwrap(),
                Discount::new(coupon::DiscountType::Percent, 100).unwrap(),
                Money::ZERO,
                None,
                coupon::ValidityWindow::new(
                    now - chrono::Duration::hours(1),
                    now + chrono::Duration::hours(1),
                )
                .unwrap(),
                vec![user(4)],
            )
            .unwrap(),
            now,
        )
        .await
        .unwrap();
    let svc = orders(pool.clone());
    let order = svc
        .place(
            PlaceOrder::new(user(4), lines(&[(p, 1)]), Some(free.id), true).unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!((order.total.won(), order.status), (0, OrderStatus::Paid));
    svc.cancel(Actor::User(user(4)), order.id, None)
        .await
        .unwrap();
    let rows: Vec<(balance::HistoryKind, i64)> = history_of(&pool, 4)
        .await
        .iter()
        .map(|h| (h.kind, h.amount))
        .collect();
    assert_eq!(
        rows,
        vec![
            (balance::HistoryKind::Refund, 0),
            (balance::HistoryKind::Payment, 0)
        ]
    );
}

// Invariant (API.md): money and stock given back are never refused, even past their
// caps; charges and restocks are then refused until they are below again.
#[tokio::test]
async fn money_and_stock_given_back_may_pass_their_caps() {
    let db = TestDatabase::create().await;
    let pool = db.pool(4);
    let stock = postgres_adapter::stock::PgStockStore::new(pool.clone());
    let p = product(&pool, 10_000, 1_000_000_000).await;
    for _ in 0..100 {
        charge(&pool, 5, 10_000_000).await;
    }
    let svc = orders(pool.clone());
    let paid = svc.place(place(5, &[(p, 1)], true), None).await.unwrap();
    charge(&pool, 5, 10_000).await; // back to exactly 1,000,000,000
    adjust(&stock, p, 1).await.unwrap(); // back to exactly 1,000,000,000
    let cancelled = svc
        .cancel(Actor::User(user(5)), paid.id, None)
        .await
        .unwrap();
    assert_eq!(cancelled.payment.unwrap().status, PaymentStatus::Refunded);
    assert_eq!(balance_of(&pool, 5).await, 1_000_010_000);
    assert_eq!(stock_of(&pool, p).await, 1_000_000_001);
    let refused = PgBalanceStore::new(pool.clone())
        .open_charge(
            NewCharge {
                user_id: user(5),
                amount: ChargeAmount::try_from(1).unwrap(),
                method: PaymentMethod::try_from("card".to_string()).unwrap(),
                now: SystemClock.now(),
                claim_id: None,
            },
            Box::new(|s| plan_open_charge(s, ChargeAmount::try_from(1).unwrap())),
        )
        .await;
    assert!(matches!(
        refused,
        Err(balance::OpenChargeError::LimitExceeded(_))
    ));
    assert!(adjust(&stock, p, 1).await.is_err());
    assert!(adjust(&stock, p, -2).await.is_ok());
}

// Invariant: a partial refund and the cancel after it give back exactly what was paid
// and return each unit once, and refunded units stop counting as sold.
#[tokio::test]
async fn a_refund_then_a_cancel_return_everything_once() {
    let db = TestDatabase::create().await;
    let pool = db.pool(4);
    let p = product(&pool, 1_000, 10).await;
    let q = product(&pool, 500, 10).await;
    charge(&pool, 6, 100_000).await;
    let svc = orders(pool.clone());
    let paid = svc
        .place(place(6, &[(p, 3), (q, 2)], true), None)
        .await
        .unwrap();
    let refund = svc
        .refund(Actor::User(user(6)), paid.id, refund_of(p, 2), None)
        .await
        .unwrap();
    assert_eq!(refund.amount.won(), 2_000);
    let sellers = svc.best_sellers(1, 10).await.unwrap();
    let sold_p = sellers
        .iter()
        .find(|s| s.product.id == p)
        .unwrap()
        .sold_quantity;
    assert_eq!(sold_p, 1, "refunded units no longer count as sold");
    let order = svc.get(paid.id).await.unwrap().unwrap();
    assert_eq!(order.refunds, vec![refund.clone()]);
    assert_eq!(order.refunded_total.won(), 2_000);
    svc.cancel(Actor::User(user(6)), paid.id, None)
        .await
        .unwrap();
    assert_eq!(balance_of(&pool, 6).await, 100_000);
    assert_eq!(
        (stock_of(&pool, p).await, stock_of(&pool, q).await),
        (10, 10)
    );
    assert!(svc.best_sellers(1, 10).await.unwrap().is_empty());
    let err = svc
        .refund(Actor::User(user(6)), paid.id, refund_of(q, 1), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        RefundOrderError::InvalidState(OrderStatus::Cancelled)
    ));
}
