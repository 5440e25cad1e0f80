//! The outbox store: enqueue, claims with a lease, per-order ordering, fencing, the
//! operators' view, and the wake-up signal.

use chrono::{DateTime, Duration as Span, Utc};
use kernel::PageRequest;
use order::events::{
    AfterFailure, EventType, OutboundEvent, OutboxStatus, OutboxStore, RetryEventError,
};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::{OutboxListener, PgOutboxStore, Wake};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn secs(n: i64) -> DateTime<Utc> {
    t0() + Span::seconds(n)
}

fn event_at(order_id: i64, event_type: EventType, at: DateTime<Utc>) -> OutboundEvent {
    let event_id = Uuid::new_v4();
    OutboundEvent {
        event_id,
        event_type,
        order_id,
        occurred_at: at,
        body: serde_json::json!({
            "event_id": event_id,
            "event_type": event_type.as_str(),
            "occurred_at": at.to_rfc3339(),
            "order": {"id": order_id},
        }),
    }
}

fn paid(order_id: i64) -> OutboundEvent {
    event_at(order_id, EventType::OrderPaid, t0())
}

async fn setup() -> (TestDatabase, PgOutboxStore) {
    let db = TestDatabase::create().await;
    let store = PgOutboxStore::new(db.pool(4));
    (db, store)
}

async fn claim_ids(store: &PgOutboxStore, now: DateTime<Utc>, lease: i64) -> Vec<Uuid> {
    store
        .claim_due(100, now, now + Span::seconds(lease))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.event.event_id)
        .collect()
}

#[tokio::test]
async fn an_enqueued_event_is_pending_and_due_at_once_with_its_body_unchanged() {
    let (_db, store) = setup().await;
    let e = paid(7);
    store.enqueue(&e).await.unwrap();

    let row = store.get(e.event_id).await.unwrap().unwrap();
    assert_eq!(row.status, OutboxStatus::Pending);
    assert_eq!((row.attempts, row.order_id), (0, 7));
    assert_eq!(row.event_type, EventType::OrderPaid);
    assert_eq!((row.created_at, row.next_attempt_at), (t0(), t0()));
    assert_eq!((row.last_error, row.delivered_at), (None, None));

    // not due before it happened, due from then on
    assert!(claim_ids(&store, secs(-1), 30).await.is_empty());
    let claims = store.claim_due(10, t0(), secs(30)).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].event, e);
    assert_eq!((claims[0].attempts, claims[0].lease_until), (0, secs(30)));
}

#[tokio::test]
async fn an_event_id_is_written_once() {
    let (_db, store) = setup().await;
    let e = paid(1);
    store.enqueue(&e).await.unwrap();
    assert!(store.enqueue(&e).await.is_err());
    assert_eq!(store.backlog().await.unwrap().pending, 1);
}

// Invariant: a claim is committed with a lease; while it holds nobody else gets the
// event, and when it ends (the relay died) the event is due again.
#[tokio::test]
async fn a_claim_holds_until_its_lease_ends_then_the_event_is_due_again() {
    let (_db, store) = setup().await;
    let e = paid(1);
    store.enqueue(&e).await.unwrap();
    assert_eq!(claim_ids(&store, secs(1), 30).await, vec![e.event_id]);
    assert!(claim_ids(&store, secs(2), 30).await.is_empty());
    assert!(claim_ids(&store, secs(30), 30).await.is_empty());
    // the relay that claimed it never came back
    assert_eq!(claim_ids(&store, secs(31), 30).await, vec![e.event_id]);
    let row = store.get(e.event_id).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 0));
    assert_eq!(row.next_attempt_at, secs(61));
}

// Invariant: events of one order are handed out one at a time, in write order; a DEAD
// event holds back the later events of its order until it is delivered.
#[tokio::test]
async fn a_later_event_of_an_order_waits_until_the_earlier_one_is_delivered() {
    let (_db, store) = setup().await;
    let first = paid(5);
    let second = event_at(5, EventType::OrderCancelled, secs(1));
    let other = paid(6);
    for e in [&first, &second, &other] {
        store.enqueue(e).await.unwrap();
    }

    let claims = store.claim_due(10, secs(10), secs(40)).await.unwrap();
    let ids: Vec<Uuid> = claims.iter().map(|c| c.event.event_id).collect();
    assert_eq!(ids, vec![first.event_id, other.event_id]);
    assert!(store.mark_delivered(&claims[1], secs(10)).await.unwrap());

    // the first fails and waits for its retry: the second still may not pass it
    assert!(store
        .mark_failed(&claims[0], "503", AfterFailure::RetryAt(secs(20)), secs(11))
        .await
        .unwrap());
    assert!(claim_ids(&store, secs(12), 30).await.is_empty());

    // parked as DEAD: the second waits behind it
    let retry = store.claim_due(10, secs(20), secs(50)).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    assert!(store
        .mark_failed(&retry[0], "503", AfterFailure::Dead, secs(21))
        .await
        .unwrap());
    assert!(claim_ids(&store, secs(100), 30).await.is_empty());

    // an operator sends it again; once it is delivered the second is due
    store.retry_dead(first.event_id, secs(200)).await.unwrap();
    let again = store.claim_due(10, secs(200), secs(230)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].event.event_id, first.event_id);
    assert!(claim_ids(&store, secs(201), 30).await.is_empty());
    assert!(store.mark_delivered(&again[0], secs(201)).await.unwrap());
    assert_eq!(
        claim_ids(&store, secs(202), 30).await,
        vec![second.event_id]
    );
}

#[tokio::test]
async fn a_batch_is_oldest_first_and_bounded() {
    let (_db, store) = setup().await;
    let events: Vec<OutboundEvent> = (1..=5).map(paid).collect();
    for e in &events {
        store.enqueue(e).await.unwrap();
    }
    let first = store.claim_due(3, t0(), secs(30)).await.unwrap();
    let ids: Vec<Uuid> = first.iter().map(|c| c.event.event_id).collect();
    let expected: Vec<Uuid> = events[..3].iter().map(|e| e.event_id).collect();
    assert_eq!(ids, expected);
    assert_eq!(claim_ids(&store, t0(), 30).await.len(), 2);
}

#[tokio::test]
async fn delivery_and_failure_are_recorded() {
    let (_db, store) = setup().await;
    let e = paid(1);
    store.enqueue(&e).await.unwrap();
    let claim = store.claim_due(1, t0(), secs(30)).await.unwrap().remove(0);
    let long_error = "x".repeat(5_000);
    assert!(store
        .mark_failed(&claim, &long_error, AfterFailure::RetryAt(secs(5)), secs(1))
        .await
        .unwrap());
    let row = store.get(e.event_id).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 1));
    assert_eq!(row.next_attempt_at, secs(5));
    assert!(row.last_error.unwrap().len() < 1_100);

    let claim = store
        .claim_due(1, secs(5), secs(35))
        .await
        .unwrap()
        .remove(0);
    assert!(store.mark_delivered(&claim, secs(6)).await.unwrap());
    let row = store.get(e.event_id).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempts), (OutboxStatus::Delivered, 2));
    assert_eq!(row.delivered_at, Some(secs(6)));
    // recording twice changes nothing
    assert!(!store.mark_delivered(&claim, secs(7)).await.unwrap());
    assert!(claim_ids(&store, secs(1_000), 30).await.is_empty());
}

// Invariant: a relay whose lease ended cannot overwrite the outcome of the relay that
// claimed the event after it (the lease value fences the claim).
#[tokio::test]
async fn a_failure_from_a_lost_claim_changes_nothing() {
    let (_db, store) = setup().await;
    let e = paid(1);
    store.enqueue(&e).await.unwrap();
    let stale = store.claim_due(1, t0(), secs(30)).await.unwrap().remove(0);
    let current = store
        .claim_due(1, secs(31), secs(61))
        .await
        .unwrap()
        .remove(0);
    assert!(!store
        .mark_failed(&stale, "late", AfterFailure::Dead, secs(40))
        .await
        .unwrap());
    let row = store.get(e.event_id).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 0));
    assert_eq!(row.next_attempt_at, secs(61));
    assert!(store
        .mark_failed(&current, "503", AfterFailure::RetryAt(secs(70)), secs(41))
        .await
        .unwrap());
}

#[tokio::test]
async fn only_a_dead_event_can_be_retried_and_it_starts_over() {
    let (_db, store) = setup().await;
    let e = paid(1);
    store.enqueue(&e).await.unwrap();
    assert!(matches!(
        store.retry_dead(e.event_id, secs(1)).await,
        Err(RetryEventError::NotDead {
            status: OutboxStatus::Pending,
            ..
        })
    ));
    assert!(matches!(
        store.retry_dead(Uuid::new_v4(), secs(1)).await,
        Err(RetryEventError::NotFound(_))
    ));
    let claim = store.claim_due(1, t0(), secs(30)).await.unwrap().remove(0);
    store
        .mark_failed(&claim, "gone", AfterFailure::Dead, secs(2))
        .await
        .unwrap();
    let dead = store.get(e.event_id).await.unwrap().unwrap();
    assert_eq!((dead.status, dead.attempts), (OutboxStatus::Dead, 1));
    assert_eq!(dead.next_attempt_at, secs(2));

    let revived = store.retry_dead(e.event_id, secs(100)).await.unwrap();
    assert_eq!(
        (revived.status, revived.attempts),
        (OutboxStatus::Pending, 0)
    );
    assert_eq!(revived.next_attempt_at, secs(100));
    assert_eq!(revived.last_error.as_deref(), Some("gone"));
    assert!(matches!(
        store.retry_dead(e.event_id, secs(101)).await,
        Err(RetryEventError::NotDead { .. })
    ));
}

#[tokio::test]
async fn the_list_filters_by_status_and_pages_in_write_order() {
    let (_db, store) = setup().await;
    let events: Vec<OutboundEvent> = (1..=5).map(paid).collect();
    for e in &events {
        store.enqueue(e).await.unwrap();
    }
    // deliver orders 1 and 3, kill order 5
    for claim in store.claim_due(10, t0(), secs(30)).await.unwrap() {
        match claim.event.order_id {
            1 | 3 => assert!(store.mark_delivered(&claim, secs(1)).await.unwrap()),
            5 => assert!(store
                .mark_failed(&claim, "x", AfterFailure::Dead, secs(1))
                .await
                .unwrap()),
            _ => {}
        }
    }
    let orders = |page: &kernel::Page<order::events::OutboxEntry>| -> Vec<i64> {
        page.items.iter().map(|e| e.order_id).collect()
    };
    let delivered = store
        .list(Some(OutboxStatus::Delivered), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(orders(&delivered), vec![1, 3]);
    let dead = store
        .list(Some(OutboxStatus::Dead), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(orders(&dead), vec![5]);

    let first = store
        .list(None, PageRequest::new(2, None).unwrap())
        .await
        .unwrap();
    assert_eq!(orders(&first), vec![1, 2]);
    let second = store
        .list(None, PageRequest::new(2, first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(orders(&second), vec![3, 4]);
    let last = store
        .list(None, PageRequest::new(2, second.next).unwrap())
        .await
        .unwrap();
    assert_eq!((orders(&last), last.next), (vec![5], None));

    let backlog = store.backlog().await.unwrap();
    assert_eq!((backlog.pending, backlog.dead), (2, 1));
    assert_eq!(backlog.oldest_pending_at, Some(t0()));
}

#[tokio::test]
async fn an_empty_outbox_has_no_backlog() {
    let (_db, store) = setup().await;
    let backlog = store.backlog().await.unwrap();
    assert_eq!(
        (backlog.pending, backlog.dead, backlog.oldest_pending_at),
        (0, 0, None)
    );
}

// Invariant: relays claiming at the same moment never get the same event (SKIP LOCKED),
// and together they get every due event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_share_the_events_without_overlap() {
    let db = TestDatabase::create().await;
    let store = Arc::new(PgOutboxStore::new(db.pool(8)));
    let events: Vec<OutboundEvent> = (1..=200).map(paid).collect();
    for e in &events {
        store.enqueue(e).await.unwrap();
    }
    let claimers = (0..6).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_due(7, secs(1), secs(600)).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|c| c.event.event_id));
            }
        })
    });
    let mut seen: HashMap<Uuid, usize> = HashMap::new();
    let mut claimers_with_work = 0;
    for handle in claimers.collect::<Vec<_>>() {
        let mine = handle.await.unwrap();
        claimers_with_work += usize::from(!mine.is_empty());
        for id in mine {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 200, "every event was claimed");
    assert!(seen.values().all(|n| *n == 1), "an event was claimed twice");
    assert!(
        claimers_with_work >= 2,
        "the claimers did not run concurrently"
    );
}

// Invariant: an idle relay hears about a committed event at once (LISTEN/NOTIFY),
// including one an operator sends again.
#[tokio::test]
async fn a_listener_wakes_when_an_event_is_committed() {
    let (db, store) = setup().await;
    let mut listener = OutboxListener::new(db.url.clone());
    assert_eq!(
        listener.wait(Duration::from_millis(100)).await,
        Wake::TimedOut
    );

    for order in [1, 2] {
        store.enqueue(&paid(order)).await.unwrap();
        assert_eq!(listener.wait(Duration::from_secs(10)).await, Wake::Notified);
    }

    // failures and deliveries do not wake anyone; a retried DEAD event does
    let claims = store.claim_due(10, t0(), secs(30)).await.unwrap();
    store
        .mark_failed(&claims[0], "x", AfterFailure::RetryAt(secs(1)), secs(1))
        .await
        .unwrap();
    store
        .mark_failed(&claims[1], "x", AfterFailure::Dead, secs(1))
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
