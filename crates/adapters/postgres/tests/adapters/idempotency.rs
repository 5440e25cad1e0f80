//! `PgIdempotencyStore` against a real database.

use postgres_adapter::testing::TestDatabase;
use postgres_adapter::{BeginOutcome, PgIdempotencyStore, StoredResponse};
use std::time::Duration;

fn store(db: &TestDatabase, lease: Duration, ttl: Duration) -> PgIdempotencyStore {
    PgIdempotencyStore::new(db.pool(4), lease, ttl)
}

/// The claim id of a `Claimed` outcome (panics on any other).
fn claimed(outcome: BeginOutcome) -> uuid::Uuid {
    match outcome {
        BeginOutcome::Claimed(id) => id,
        other => panic!("expected a claim, got {other:?}"),
    }
}

fn response() -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![("location".into(), "/x/1".into())],
        body: b"{\"id\":1}".to_vec(),
    }
}

#[tokio::test]
async fn a_key_is_claimed_once_then_replayed() {
    let db = TestDatabase::create().await;
    let s = store(&db, Duration::from_secs(60), Duration::from_secs(3600));
    claimed(s.begin("user:1", "k", "h1").await.unwrap());
    assert_eq!(
        s.begin("user:1", "k", "h1").await.unwrap(),
        BeginOutcome::InProgress
    );
    assert_eq!(
        s.begin("user:1", "k", "h2").await.unwrap(),
        BeginOutcome::Mismatch
    );
    s.complete("user:1", "k", &response()).await.unwrap();
    assert_eq!(
        s.begin("user:1", "k", "h1").await.unwrap(),
        BeginOutcome::Replay(response())
    );
    assert_eq!(
        s.begin("user:1", "k", "h2").await.unwrap(),
        BeginOutcome::Mismatch
    );
    // another caller's key is its own
    claimed(s.begin("user:2", "k", "h2").await.unwrap());
}

#[tokio::test]
async fn a_released_or_abandoned_claim_can_be_taken_again() {
    let db = TestDatabase::create().await;
    let s = store(&db, Duration::from_millis(200), Duration::from_secs(3600));
    claimed(s.begin("c", "k", "h").await.unwrap());
    s.release("c", "k").await.unwrap();
    let first = claimed(s.begin("c", "k", "h").await.unwrap());
    // the owner died: after the lease, the same request takes over, another does not
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.begin("c", "k", "other").await.unwrap(),
        BeginOutcome::Mismatch
    );
    // the takeover continues the same request: the same claim id, so work the dead
    // request started (a charge) is found again
    assert_eq!(claimed(s.begin("c", "k", "h").await.unwrap()), first);
}

#[tokio::test]
async fn expired_keys_are_reusable_and_purged() {
    let db = TestDatabase::create().await;
    let s = store(&db, Duration::from_secs(60), Duration::from_millis(100));
    let first = claimed(s.begin("c", "k", "h").await.unwrap());
    s.complete("c", "k", &response()).await.unwrap();
    claimed(s.begin("c", "old", "h").await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // expired keys live 24 h only; a reused key is a new request with a new claim id
    let reused = claimed(s.begin("c", "k", "different").await.unwrap());
    assert_ne!(reused, first);
    assert!(s.purge_expired(100).await.unwrap() >= 1);
}

// Invariant: of many concurrent first requests with one key, exactly one runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_of_one_key_admit_one() {
    let db = TestDatabase::create().await;
    let s = store(&db, Duration::from_secs(60), Duration::from_secs(3600));
    let outcomes = futures::future::join_all((0..20).map(|_| s.begin("c", "race", "h"))).await;
    let claimed = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(BeginOutcome::Claimed(_))))
        .count();
    let waiting = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(BeginOutcome::InProgress)))
        .count();
    assert_eq!((claimed, waiting), (1, 19));
}
