//! What only the PostgreSQL outbox has (what every outbox store does is the conformance
//! suite's): event ids unique, the wake-up signal (LISTEN/NOTIFY), bounded waits on a
//! stalled database.

use conformance::outbox::{failed, paid, secs};
use kernel::testing::t0;
use outbox::{AfterFailure, OutboxStore};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::{OutboxListener, PgOutboxStore, Wake};
use std::time::Duration;

async fn setup() -> (TestDatabase, PgOutboxStore) {
    let db = TestDatabase::create().await;
    let store = PgOutboxStore::new(db.pool(4));
    (db, store)
}

#[tokio::test]
async fn an_event_id_is_written_once() {
    let (_db, store) = setup().await;
    let e = paid(1);
    store.enqueue(e.clone()).await.unwrap();
    assert!(store.enqueue(e.clone()).await.is_err());
    assert_eq!(store.backlog().await.unwrap().pending, 1);
}

// Invariant: an idle relay hears about a committed event at once (LISTEN/NOTIFY),
// including one an operator sends again.
#[tokio::test]
async fn a_listener_wakes_when_an_event_is_committed() {
    let (db, store) = setup().await;
    let mut listener = OutboxListener::new(db.url.clone());
    // a new listening connection wakes the relay once: events may have been committed
    // while nobody listened
    assert_eq!(
        listener.wait(Duration::from_millis(100)).await,
        Wake::Notified
    );
    assert_eq!(
        listener.wait(Duration::from_millis(100)).await,
        Wake::TimedOut
    );

    // Invariant: committing an event does not NOTIFY (the order transactions that write
    // events must not serialise on PostgreSQL's notify lock); the writer's own process
    // wakes its relay in-process, other relays poll
    for order in [1, 2] {
        store.enqueue(paid(order)).await.unwrap();
        assert_eq!(
            listener.wait(Duration::from_millis(300)).await,
            Wake::TimedOut
        );
    }

    // failures and deliveries do not wake anyone; a retried DEAD event does
    let claims = store.claim_due(10, t0(), secs(30)).await.unwrap();
    store
        .mark_failed(
            &claims[0],
            &failed("x"),
            AfterFailure::RetryAt(secs(1)),
            secs(1),
        )
        .await
        .unwrap();
    store
        .mark_failed(&claims[1], &failed("x"), AfterFailure::Dead, secs(1))
        .await
        .unwrap();
    assert_eq!(
        listener.wait(Duration::from_millis(100)).await,
        Wake::TimedOut
    );
    store
        .retry_dead(claims[1].event.event_id, secs(2))
        .await
        .unwrap();
    assert_eq!(listener.wait(Duration::from_secs(10)).await, Wake::Notified);
}

#[tokio::test]
async fn a_listener_without_a_database_just_waits() {
    let mut listener = OutboxListener::new("postgres://postgres@127.0.0.1:1/none");
    let started = std::time::Instant::now();
    assert_eq!(
        listener.wait(Duration::from_millis(200)).await,
        Wake::TimedOut
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

// Invariant: a store call on a database that stopped answering gives up within its
// timeout (instead of hanging), and the store works again once the database answers,
// without a restart: stuck connections are not handed out again.
#[tokio::test]
async fn a_stalled_database_costs_a_timeout_not_a_hang() {
    let db = TestDatabase::create().await;
    let proxy = postgres_adapter::testing_proxy::TcpProxy::start(
        postgres_adapter::testing_proxy::postgres_addr(&db.url).unwrap(),
    )
    .await
    .unwrap();
    let pool = postgres_adapter::build_pool(&postgres_adapter::PoolSettings::new(
        proxy.postgres_url(&db.url),
        2,
    ))
    .unwrap();
    let store = PgOutboxStore::new(pool).with_timeout(Duration::from_millis(500));
    store.enqueue(paid(1)).await.unwrap();
    assert_eq!(store.backlog().await.unwrap().pending, 1);

    proxy.stall();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        assert!(store.claim_due(10, t0(), secs(30)).await.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    proxy.break_connections();
    proxy.resume();
    let claims = store.claim_due(10, t0(), secs(30)).await.unwrap();
    assert_eq!(claims.len(), 1);
}

// Invariant: a listener whose link stalled or broke reconnects by itself and says so
// (Notified: re-poll), and hears new events again afterwards.
#[tokio::test]
async fn a_listener_reconnects_after_a_stall_or_a_break() {
    let (db, store) = setup().await;
    let proxy = postgres_adapter::testing_proxy::TcpProxy::start(
        postgres_adapter::testing_proxy::postgres_addr(&db.url).unwrap(),
    )
    .await
    .unwrap();
    let mut listener = OutboxListener::new(proxy.postgres_url(&db.url))
        .with_timeouts(Duration::from_millis(300), Duration::from_millis(200));
    assert_eq!(listener.wait(Duration::from_secs(5)).await, Wake::Notified);

    // a stall: silence, then the ping gets no answer and the listener gives up on the link
    proxy.stall();
    let mut wakes = Vec::new();
    for _ in 0..4 {
        wakes.push(listener.wait(Duration::from_millis(150)).await);
    }
    assert!(wakes.contains(&Wake::Notified), "{wakes:?}");
    proxy.break_connections();
    proxy.resume();
    // reconnected (Notified), then it hears a new event
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while listener.wait(Duration::from_millis(100)).await != Wake::Notified {
        assert!(std::time::Instant::now() < deadline, "never reconnected");
    }
    while listener.wait(Duration::from_millis(50)).await == Wake::Notified {}
    // an event made PENDING again (a retry of a DEAD one) is heard
    store.enqueue(paid(9)).await.unwrap();
    let claims = store.claim_due(10, t0(), secs(30)).await.unwrap();
    let claim = claims
        .iter()
        .find(|c| c.event.aggregate_id == 9)
        .expect("the new event is due");
    store
        .mark_failed(claim, &failed("x"), AfterFailure::Dead, secs(1))
        .await
        .unwrap();
    store
        .retry_dead(claim.event.event_id, secs(2))
        .await
        .unwrap();
    assert_eq!(listener.wait(Duration::from_secs(10)).await, Wake::Notified);

    // a broken link: noticed at once
    proxy.break_connections();
    assert_eq!(listener.wait(Duration::from_secs(5)).await, Wake::Notified);
}
