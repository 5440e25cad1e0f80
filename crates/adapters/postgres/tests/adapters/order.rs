//! `PgOrderStore`: the round trips each use case takes (what it does is the
//! conformance suite's).

use crate::ports::stores;
use conformance::fixtures::{charge, place, product};
use conformance::Stores;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures::FutureExt;
use kernel::testing::uid;
use kernel::{Actor, SystemClock};
use order::{Order, OrderService};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::{PgOrderStore, PgPool};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    let s: Stores = stores().await;
    let p = product(&s, 1_000, 100).await;
    charge(&s, 1, 1_000_000).await;
    let db = s.keep_alive.downcast_ref::<TestDatabase>().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let svc = OrderService::new(
        Arc::new(PgOrderStore::new(counting_pool(&db.url, log.clone()))),
        Arc::new(SystemClock),
        Duration::from_secs(900),
    );
    // warm: each statement prepared once on the one connection
    let warm = svc.place(place(1, &[(p, 1)], true), None).await.unwrap();
    svc.cancel(Actor::User(uid(1)), warm.id, None)
        .await
        .unwrap();
    let pending = svc.place(place(1, &[(p, 1)], false), None).await.unwrap();
    svc.pay(Actor::User(uid(1)), pending.id, None)
        .await
        .unwrap();

    let mut paid: Option<Order> = None;
    let pay_now = round_trips(&log, || async {
        paid = Some(svc.place(place(1, &[(p, 2)], true), None).await.unwrap());
    })
    .await;
    let pending = svc.place(place(1, &[(p, 1)], false), None).await.unwrap();
    let pay = round_trips(&log, || async {
        svc.pay(Actor::User(uid(1)), pending.id, None)
            .await
            .unwrap();
    })
    .await;
    let cancel = round_trips(&log, || async {
        svc.cancel(Actor::User(uid(1)), paid.as_ref().unwrap().id, None)
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
