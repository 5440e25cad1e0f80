//! The pool: every wait on the database is bounded and ends in a typed
//! `DatabaseUnavailable`; checkouts send nothing; broken connections are not reused.

use diesel::connection::InstrumentationEvent;
use diesel::sql_types::Integer;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::testing_proxy::{postgres_addr, TcpProxy};
use postgres_adapter::{build_pool, DatabaseUnavailable, PgPool, PoolSettings};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

fn pool(url: &str, size: usize, timeout_ms: u64) -> PgPool {
    build_pool(&PoolSettings::new(url, size).with_timeout(Duration::from_millis(timeout_ms)))
        .unwrap()
}

/// The backend pid of a checked-out connection, or the error as the adapters see it.
async fn backend_pid(pool: &PgPool) -> anyhow::Result<i32> {
    let mut conn = pool.get().await?;
    let row: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result(&mut conn)
        .await?;
    Ok(row.pid)
}

/// Invariant: with the link to the database stalled (connections open, nothing
/// forwarded), a statement and a new connection both fail within the bound with a
/// typed `DatabaseUnavailable`, and the pool works again once the link does.
#[tokio::test]
async fn a_stalled_link_fails_within_the_bound_and_the_pool_recovers() {
    let db = TestDatabase::create().await;
    let proxy = TcpProxy::start(postgres_addr(&db.url).unwrap())
        .await
        .unwrap();
    let pool = pool(&proxy.postgres_url(&db.url), 2, 500);
    backend_pid(&pool).await.expect("a warm connection");

    proxy.stall();
    // the idle connection is handed out, and its statement hears nothing
    let started = Instant::now();
    let err = backend_pid(&pool).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        DatabaseUnavailable::find(&err),
        Some(DatabaseUnavailable::ConnectionLost),
        "{err:#}"
    );
    // a new connection cannot start up either
    let started = Instant::now();
    let err = backend_pid(&pool).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    assert!(DatabaseUnavailable::find(&err).is_some(), "{err:#}");

    proxy.resume();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match backend_pid(&pool).await {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "no recovery: {e:#}"),
        }
    }
}

/// Invariant: PostgreSQL cancels a statement that runs past the timeout; the error is
/// typed, and the connection (not broken) serves the next statement.
#[tokio::test]
async fn a_statement_past_the_timeout_is_cancelled_and_the_connection_kept() {
    let db = TestDatabase::create().await;
    let pool = pool(&db.url, 1, 500);
    let before = backend_pid(&pool).await.unwrap();
    let started = Instant::now();
    let err = async {
        let mut conn = pool.get().await?;
        diesel::sql_query("SELECT pg_sleep(3)")
            .execute(&mut conn)
            .await?;
        anyhow::Ok(())
    }
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(2_000));
    assert_eq!(
        DatabaseUnavailable::find(&err),
        Some(DatabaseUnavailable::StatementTimeout),
        "{err:#}"
    );
    assert_eq!(backend_pid(&pool).await.unwrap(), before);
}

/// Invariant: waiting for a free connection is bounded too (the pool is exhausted).
#[tokio::test]
async fn waiting_for_a_free_connection_is_bounded_and_typed() {
    let db = TestDatabase::create().await;
    let pool = pool(&db.url, 1, 500);
    let held = pool.get().await.unwrap();
    let started = Instant::now();
    let err = anyhow::Error::from(pool.get().await.err().expect("the pool is exhausted"));
    assert!(started.elapsed() < Duration::from_millis(1_500));
    assert_eq!(
        DatabaseUnavailable::find(&err),
        Some(DatabaseUnavailable::PoolTimeout)
    );
    drop(held);
}

/// Invariant (issue 10): a checkout sends no statement (no `SELECT 1` per request).
#[tokio::test]
async fn a_checkout_sends_no_statement() {
    let db = TestDatabase::create().await;
    let pool = pool(&db.url, 1, 1_000);
    let queries = Arc::new(AtomicUsize::new(0));
    {
        let mut conn = pool.get().await.unwrap();
        let counter = queries.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    for _ in 0..3 {
        let _conn = pool.get().await.unwrap();
    }
    assert_eq!(
        AtomicUsize::load(&queries, Ordering::SeqCst),
        0,
        "a checkout ran a statement"
    );
    backend_pid(&pool).await.unwrap();
    assert_eq!(
        AtomicUsize::load(&queries, Ordering::SeqCst),
        1,
        "the counter counts"
    );
}

/// Invariant: a connection that errored is dropped, not handed out again: one left in
/// an open transaction (its future was dropped mid-way) and one whose server session
/// was terminated.
#[tokio::test]
async fn a_connection_that_errored_is_not_reused() {
    use diesel_async::TransactionManager;
    let db = TestDatabase::create().await;
    let pool = pool(&db.url, 1, 1_000);
    let first = {
        let mut conn = pool.get().await.unwrap();
        diesel_async::AnsiTransactionManager::begin_transaction(&mut *conn)
            .await
            .unwrap();
        let row: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result(&mut conn)
            .await
            .unwrap();
        row.pid
        // dropped inside the transaction
    };
    let second = backend_pid(&pool).await.unwrap();
    assert_ne!(
        first, second,
        "a connection left in a transaction was reused"
    );

    let admin = pool_on_admin(&db);
    let mut conn = admin.get().await.unwrap();
    diesel::sql_query(format!("SELECT pg_terminate_backend({second})"))
        .execute(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = backend_pid(&pool).await.expect("a fresh connection");
    assert_ne!(second, third);
}

fn pool_on_admin(db: &TestDatabase) -> PgPool {
    pool(db.admin_url(), 1, 2_000)
}

/// Invariant: the client-side watchdog never fires on a connection that owes nothing:
/// an idle connection outlives the timeout many times over.
#[tokio::test]
async fn an_idle_connection_outlives_the_timeout() {
    let db = TestDatabase::create().await;
    let pool = pool(&db.url, 1, 500);
    let before = backend_pid(&pool).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(backend_pid(&pool).await.unwrap(), before);
}
