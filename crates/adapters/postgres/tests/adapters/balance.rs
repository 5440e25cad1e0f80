//! `PgBalanceStore` against a real database.

use balance::{
    plan_approve, plan_decline, plan_open_charge, BalanceStore, Charge, ChargeAmount,
    ChargeReceipt, ChargeStatus, GatewayTransactionId, NewCharge, OpenChargeError, PaymentMethod,
    MAX_BALANCE,
};
use kernel::{
    ChargeId, Clock, Completion, IdempotencyClaim, Money, PageRequest, RecordedResponse,
    SystemClock, UserId,
};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::{BeginOutcome, PgBalanceStore, PgIdempotencyStore};
use std::time::Duration;

fn user(id: i64) -> UserId {
    UserId::try_from(id).unwrap()
}

fn charge(u: i64, amount: i64) -> NewCharge {
    NewCharge {
        user_id: user(u),
        amount: ChargeAmount::try_from(amount).unwrap(),
        method: PaymentMethod::try_from("card".to_string()).unwrap(),
        now: SystemClock.now(),
        claim_id: None,
    }
}

/// Opens with the domain's decision, as the service does.
async fn open(store: &PgBalanceStore, c: NewCharge) -> Result<Charge, OpenChargeError> {
    let amount = c.amount;
    store
        .open_charge(c, Box::new(move |s| plan_open_charge(s, amount)))
        .await
}

async fn approve(
    store: &PgBalanceStore,
    id: ChargeId,
    tx: &str,
    completion: Option<Completion<ChargeReceipt>>,
) -> anyhow::Result<ChargeReceipt> {
    let tx = GatewayTransactionId(tx.into());
    store
        .approve_charge(
            id,
            Box::new(move |c, b| plan_approve(c, b, tx)),
            completion,
            SystemClock.now(),
        )
        .await
}

async fn decline(store: &PgBalanceStore, id: ChargeId) {
    store
        .decline_charge(
            id,
            "declined".into(),
            Box::new(plan_decline),
            SystemClock.now(),
        )
        .await
        .unwrap()
}

// Invariant: approving the same charge twice credits it once.
#[tokio::test]
async fn approving_twice_credits_once() {
    let db = TestDatabase::create().await;
    let store = PgBalanceStore::new(db.pool(2));
    let pending = open(&store, charge(1, 5_000)).await.unwrap();
    assert_eq!(
        store.balance(user(1)).await.unwrap(),
        Money::ZERO,
        "nothing credited before approval"
    );
    let first = approve(&store, pending.id, "tx-1", None).await.unwrap();
    let again = approve(&store, pending.id, "tx-1", None).await.unwrap();
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
        let p = open(&store, charge(2, 10_000_000)).await.unwrap();
        approve(&store, p.id, &format!("tx-{}", p.id), None)
            .await
            .unwrap();
    }
    assert_eq!(store.balance(user(2)).await.unwrap(), MAX_BALANCE);
    assert!(matches!(
        open(&store, charge(2, 1)).await,
        Err(OpenChargeError::LimitExceeded(_))
    ));

    let db = TestDatabase::create().await;
    let store = PgBalanceStore::new(db.pool(2));
    let big = open(&store, charge(3, 10_000_000)).await.unwrap();
    // with 10,000,000 pending, 990,000,001 more cannot be opened in any split
    for _ in 0..99 {
        let p = open(&store, charge(3, 10_000_000)).await.unwrap();
        approve(&store, p.id, &format!("tx-{}", p.id), None)
            .await
            .unwrap();
    }
    assert!(matches!(
        open(&store, charge(3, 1)).await,
        Err(OpenChargeError::LimitExceeded(_))
    ));
    decline(&store, big.id).await;
    assert!(
        open(&store, charge(3, 10_000_000)).await.is_ok(),
        "declining freed the headroom"
    );
    assert_eq!(store.balance(user(3)).await.unwrap().won(), 990_000_000);
}

// Invariant: charges stuck PENDING are found for recovery, settled ones are not.
#[tokio::test]
async fn stale_charges_are_the_pending_ones_before_the_cutoff() {
    let db = TestDatabase::create().await;
    let store = PgBalanceStore::new(db.pool(2));
    let stuck = open(&store, charge(4, 100)).await.unwrap();
    let done = open(&store, charge(4, 200)).await.unwrap();
    approve(&store, done.id, "tx", None).await.unwrap();
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
    let p = open(&store, charge(5, 100)).await.unwrap();
    approve(&store, p.id, "tx", None).await.unwrap();
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
        futures::future::join_all((0..130).map(|_| open(&store, charge(6, 10_000_000)))).await;
    let opened = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(OpenChargeError::LimitExceeded(_))))
        .count();
    assert_eq!((opened, refused), (100, 30));
}

/// A claim on `key` for caller "user:7", taken as the middleware takes it.
async fn claim(keys: &PgIdempotencyStore, key: &str) -> IdempotencyClaim {
    let BeginOutcome::Claimed(claim_id) = keys.begin("user:7", key, "hash").await.unwrap() else {
        panic!("a fresh key is claimed");
    };
    IdempotencyClaim {
        caller: "user:7".into(),
        key: key.into(),
        request_hash: "hash".into(),
        claim_id,
    }
}

fn completion(claim: IdempotencyClaim) -> Completion<ChargeReceipt> {
    Completion::new(claim, |r: &ChargeReceipt| RecordedResponse {
        status: 201,
        headers: vec![],
        body: r.balance.won().to_string().into_bytes(),
    })
}

// Invariant: a retried request finds the charge its first attempt opened (one charge
// per claim), and the credit records the request's answer in its own transaction, so a
// retry after the credit replays it.
#[tokio::test]
async fn a_claim_opens_one_charge_and_its_credit_completes_the_key() {
    let db = TestDatabase::create().await;
    let pool = db.pool(2);
    let store = PgBalanceStore::new(pool.clone());
    let keys = PgIdempotencyStore::new(pool, Duration::from_secs(60), Duration::from_secs(3600));
    let claim = claim(&keys, "charge-1").await;
    let mut first = charge(7, 4_000);
    first.claim_id = Some(claim.claim_id);
    let opened = open(&store, first.clone()).await.unwrap();
    let again = open(&store, first).await.unwrap();
    assert_eq!(opened.id, again.id, "the same request resumes its charge");
    assert_eq!(again.status, ChargeStatus::Pending);

    let receipt = approve(&store, opened.id, "tx-7", Some(completion(claim.clone())))
        .await
        .unwrap();
    assert_eq!(receipt.balance.won(), 4_000);
    match keys.begin("user:7", "charge-1", "hash").await.unwrap() {
        BeginOutcome::Replay(stored) => assert_eq!(stored.body, b"4000"),
        other => panic!("the key was completed with the credit, got {other:?}"),
    }
    // the completion can only happen once: a second credit attempt with the claim is
    // refused as lost and changes nothing
    let lost = approve(&store, opened.id, "tx-7", Some(completion(claim))).await;
    assert!(lost.unwrap_err().is::<kernel::ClaimLost>());
    assert_eq!(store.balance(user(7)).await.unwrap().won(), 4_000);
}
