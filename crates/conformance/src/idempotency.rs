//! `IdempotencyStore`: a key is claimed by one request, its answer replayed to the
//! others; an abandoned claim is taken over by the same request with the same claim id.

use crate::Stores;
use kernel::{BeginOutcome, RecordedResponse};
use std::time::Duration;

/// The claim id of a `Claimed` outcome (panics on any other).
fn claimed(outcome: BeginOutcome) -> uuid::Uuid {
    match outcome {
        BeginOutcome::Claimed(id) => id,
        other => panic!("expected a claim, got {other:?}"),
    }
}

fn response() -> RecordedResponse {
    RecordedResponse {
        status: 201,
        headers: vec![("location".into(), "/x/1".into())],
        body: b"{\"id\":1}".to_vec(),
    }
}

/// Invariant: the first request claims the key; while it runs the same request is
/// `InProgress` and another is a `Mismatch`; once complete the answer is replayed byte
/// for byte and never replaced; keys of different callers never meet.
pub async fn a_key_is_claimed_once_then_replayed(s: Stores) {
    let k = &s.keys;
    claimed(k.begin("user:1", "k", "h1").await.unwrap());
    assert_eq!(
        k.begin("user:1", "k", "h1").await.unwrap(),
        BeginOutcome::InProgress
    );
    assert_eq!(
        k.begin("user:1", "k", "h2").await.unwrap(),
        BeginOutcome::Mismatch
    );
    k.complete("user:1", "k", &response()).await.unwrap();
    assert_eq!(
        k.begin("user:1", "k", "h1").await.unwrap(),
        BeginOutcome::Replay(response())
    );
    let other = RecordedResponse {
        status: 500,
        headers: vec![],
        body: vec![],
    };
    k.complete("user:1", "k", &other).await.unwrap();
    k.release("user:1", "k").await.unwrap();
    assert_eq!(
        k.begin("user:1", "k", "h1").await.unwrap(),
        BeginOutcome::Replay(response()),
        "a recorded answer is never replaced nor released"
    );
    assert_eq!(
        k.begin("user:1", "k", "h2").await.unwrap(),
        BeginOutcome::Mismatch
    );
    claimed(k.begin("user:2", "k", "h2").await.unwrap());
}

/// Invariant: a released claim is claimed again; after its lease an abandoned claim is
/// taken over by the same request (same fingerprint) with the SAME claim id, and not
/// by another request.
pub async fn a_released_or_abandoned_claim_can_be_taken_again(s: Stores) {
    let k = (s.keys_with)(Duration::from_millis(200), Duration::from_secs(3600));
    claimed(k.begin("c", "k", "h").await.unwrap());
    k.release("c", "k").await.unwrap();
    let first = claimed(k.begin("c", "k", "h").await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        k.begin("c", "k", "other").await.unwrap(),
        BeginOutcome::Mismatch
    );
    assert_eq!(claimed(k.begin("c", "k", "h").await.unwrap()), first);
}

/// Invariant: a key whose time to live ended is claimed anew, with a new claim id, and
/// expired keys are purged.
pub async fn expired_keys_are_reusable_and_purged(s: Stores) {
    let k = (s.keys_with)(Duration::from_secs(60), Duration::from_millis(100));
    let first = claimed(k.begin("c", "k", "h").await.unwrap());
    k.complete("c", "k", &response()).await.unwrap();
    claimed(k.begin("c", "old", "h").await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reused = claimed(k.begin("c", "k", "different").await.unwrap());
    assert_ne!(reused, first);
    assert!(k.purge_expired(100).await.unwrap() >= 1);
}

/// Invariant: of many concurrent first requests with one key, exactly one runs.
pub async fn concurrent_claims_of_one_key_admit_one(s: Stores) {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let keys = s.keys.clone();
            tokio::spawn(async move { keys.begin("c", "race", "h").await })
        })
        .collect();
    let outcomes: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    let claimed = outcomes
        .iter()
        .filter(|o| matches!(o, BeginOutcome::Claimed(_)))
        .count();
    let waiting = outcomes
        .iter()
        .filter(|o| **o == BeginOutcome::InProgress)
        .count();
    assert_eq!((claimed, waiting), (1, 19));
}
