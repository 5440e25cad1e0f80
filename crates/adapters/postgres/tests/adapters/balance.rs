//! `PgBalanceStore` against a real database.

use balance::{
    BalanceStore, ChargeAmount, GatewayTransactionId, NewCharge, OpenChargeError, PaymentMethod,
    MAX_BALANCE,
};
use kernel::{Clock, Money, PageRequest, SystemClock, UserId};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::PgBalanceStore;

fn user(id: i64) -> UserId {
    UserId::try_from(id).unwrap()
}

fn charge(u: i64, amount: i64) -> NewCharge {
    NewCharge {
        user_id: user(u),
        amount: ChargeAmount::try_from(amount).unwrap(),
        method: PaymentMethod::try_from("card".to_string()).unwrap(),
        now: SystemClock.now(),
    }
}

// Invariant: approving the same charge twice credits it once.
#[tokio::test]
async fn approving_twice_credits_once() {
    let db = TestDatabase::create().await;
    let store = PgBalanceStore::new(db.pool(2));
    let pending = store.open_charge(charge(1, 5_000)).await.unwrap();
    assert_eq!(
        store.balance(user(1)).await.unwrap(),
        Money::ZERO,
        "nothing credited before approval"
    );
    let tx = GatewayTransactionId("tx-1".into());
    let first = store
        .approve_charge(pending.id, tx.clone(), SystemClock.now())
        .await
        .unwrap();
    let again = store
        .approve_charge(pending.id, tx, SystemClock.now())
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(store.balance(user(1)).await.unwrap().won(), 5_000);
    assert_eq!(
        store
            .history(user(1), PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

// Invariant: a declined charge releases its reserved headroom and credits nothing.
#[tokio::test]
async fn declining_releases_the_headroom() {
    let db = TestDatabase::create().await;
    let store = PgBalanceStore::new(db.pool(2));
    for _ in 0..100 {
        let p = store.open_charge(charge(2, 10_000_000)).await.unwrap();
        store
            .approve_charge(
                p.id,
                GatewayTransactionId(format!("tx-{}", p.id)),
                SystemClock.now(),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.balance(user(2)).await.unwrap(), MAX_BALANCE);
    assert!(matches!(
        store.open_charge(charge(2, 1)).await,
        Err(OpenChargeError::LimitExceeded)
    ));

    let db = TestDatabase::create().await;
    let store = PgBalanceStore::new(db.pool(2));
    let big = store.open_charge(charge(3, 10_000_000)).await.unwrap();
    // with 10,000,000 pending, 990,000,001 more cannot be opened in any split
    for _ in 0..99 {
        let p = store.open_charge(charge(3, 10_000_000)).await.unwrap();
        store
            .approve_charge(
                p.id,
                GatewayTransactionId(format!("tx-{}", p.id)),
                SystemClock.now(),
            )
            .await
            .unwrap();
    }
    assert!(matches!(
        store.open_charge(charge(3, 1)).await,
        Err(OpenChargeError::LimitExceeded)
    ));
    store
        .decline_charge(big.id, "declined".into(), SystemClock.now())
        .await
        .unwrap();
    assert!(
        store.open_charge(charge(3, 10_000_000)).await.is_ok(),
        "declining freed the headroom"
    );
    assert_eq!(store.balance(user(3)).await.unwrap().won(), 990_000_000);
}

// Invariant: charges stuck PENDING are found for recovery, settled ones are not.
#[tokio::test]
async fn stale_charges_are_the_pending_ones_before_the_cutoff() {
    let db = TestDatabase::create().await;
    let store = PgBalanceStore::new(db.pool(2));
    let stuck = store.open_charge(charge(4, 100)).await.unwrap();
    let done = store.open_charge(charge(4, 200)).await.unwrap();
    store
        .approve_charge(
            done.id,
            GatewayTransactionId("tx".into()),
            SystemClock.now(),
        )
        .await
        .unwrap();
    let later = SystemClock.now() + chrono::Duration::seconds(1);
    let stale = store.stale_charges(later, 10).await.unwrap();
    assert_eq!(
        stale.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![stuck.id]
    );
    let earlier = stuck.created_at - chrono::Duration::seconds(1);
    assert!(store.stale_charges(earlier, 10).await.unwrap().is_empty());
}

// Invariant: history is append-only; the database refuses to change or delete a row.
#[tokio::test]
async fn history_rows_cannot_be_changed_or_deleted() {
    use diesel_async::RunQueryDsl;
    let db = TestDatabase::create().await;
    let pool = db.pool(2);
    let store = PgBalanceStore::new(pool.clone());
    let p = store.open_charge(charge(5, 100)).await.unwrap();
    store
        .approve_charge(p.id, GatewayTransactionId("tx".into()), SystemClock.now())
        .await
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    assert!(
        diesel::sql_query("UPDATE balance_history SET amount = 1000000")
            .execute(&mut conn)
            .await
            .is_err()
    );
    assert!(diesel::sql_query("DELETE FROM balance_history")
        .execute(&mut conn)
        .await
        .is_err());
    assert!(diesel::sql_query("UPDATE balances SET balance = -1")
        .execute(&mut conn)
        .await
        .is_err());
}

// Invariant: concurrent opens across many connections never reserve past the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_never_pass_the_limit() {
    let db = TestDatabase::create().await;
    let store = PgBalanceStore::new(db.pool(16));
    // 1,000,000,000 / 10,000,000 = 100 fit; 130 try at once
    let results =
        futures::future::join_all((0..130).map(|_| store.open_charge(charge(6, 10_000_000)))).await;
    let opened = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(OpenChargeError::LimitExceeded)))
        .count();
    assert_eq!((opened, refused), (100, 30));
}
