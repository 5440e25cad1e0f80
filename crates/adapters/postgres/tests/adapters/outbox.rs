//! The outbox store: enqueue, claims with a lease, per-order ordering, fencing, the
//! operators' view, and the wake-up signal.

use chrono::{DateTime, Duration as Span, Utc};
use kernel::PageRequest;
use outbox::{AfterFailure, AttemptOutcome, Event, OutboxStatus, OutboxStore, RetryEventError};
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

fn event_at(order_id: i64, event_type: &str, at: DateTime<Utc>) -> Event {
    let event_id = Uuid::new_v4();
    Event {
        event_id,
        event_type: event_type.to_string(),
        aggregate_id: order_id,
        occurred_at: at,
        body: serde_json::json!({
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": at.to_rfc3339(),
            "order": {"id": order_id},
        }),
    }
}

fn paid(order_id: i64) -> Event {
    event_at(order_id, "order.paid", t0())
}

/// An acknowledged attempt that ended at `at` after 40 ms.
fn acked(at: DateTime<Utc>) -> AttemptOutcome {
    AttemptOutcome {
        started_at: at - Span::milliseconds(40),
        duration: Duration::from_millis(40),
        status_code: Some(200),
        error: None,
    }
}

/// A refused attempt (503) with this error.
fn failed(error: &str) -> AttemptOutcome {
    AttemptOutcome {
        started_at: t0(),
        duration: Duration::from_millis(15),
        status_code: Some(503),
        error: Some(error.to_string()),
    }
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
    store.enqueue(e.clone()).await.unwrap();

    let row = store.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!(row.status, OutboxStatus::Pending);
    assert_eq!((row.attempts, row.aggregate_id), (0, 7));
    assert_eq!(row.event_type, "order.paid");
    assert_eq!((row.created_at, row.next_attempt_at), (t0(), t0()));
    assert_eq!(
        (row.last_error, row.delivered_at, row.blocked_by),
        (None, None, None)
    );

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
    store.enqueue(e.clone()).await.unwrap();
    assert!(store.enqueue(e.clone()).await.is_err());
    assert_eq!(store.backlog().await.unwrap().pending, 1);
}

// Invariant: a claim is committed with a lease; while it holds nobody else gets the
// event, and when it ends (the relay died) the event is due again.
#[tokio::test]
async fn a_claim_holds_until_its_lease_ends_then_the_event_is_due_again() {
    let (_db, store) = setup().await;
    let e = paid(1);
    store.enqueue(e.clone()).await.unwrap();
    assert_eq!(claim_ids(&store, secs(1), 30).await, vec![e.event_id]);
    assert!(claim_ids(&store, secs(2), 30).await.is_empty());
    assert!(claim_ids(&store, secs(30), 30).await.is_empty());
    // the relay that claimed it never came back
    assert_eq!(claim_ids(&store, secs(31), 30).await, vec![e.event_id]);
    let row = store.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 0));
    assert_eq!(row.next_attempt_at, secs(61));
}

// Invariant: events of one order are handed out one at a time, in write order; a DEAD
// event holds back the later events of its order until it is delivered.
#[tokio::test]
async fn a_later_event_of_an_order_waits_until_the_earlier_one_is_delivered() {
    let (_db, store) = setup().await;
    let first = paid(5);
    let second = event_at(5, "order.cancelled", secs(1));
    let other = paid(6);
    for e in [&first, &second, &other] {
        store.enqueue(e.clone()).await.unwrap();
    }

    let claims = store.claim_due(10, secs(10), secs(40)).await.unwrap();
    let ids: Vec<Uuid> = claims.iter().map(|c| c.event.event_id).collect();
    assert_eq!(ids, vec![first.event_id, other.event_id]);
    assert!(store
        .mark_delivered(&claims[1], &acked(secs(10)), secs(10))
        .await
        .unwrap());

    // the first fails and waits for its retry: the second still may not pass it
    assert!(store
        .mark_failed(
            &claims[0],
            &failed("503"),
            AfterFailure::RetryAt(secs(20)),
            secs(11)
        )
        .await
        .unwrap());
    assert!(claim_ids(&store, secs(12), 30).await.is_empty());

    // parked as DEAD: the second waits behind it
    let retry = store.claim_due(10, secs(20), secs(50)).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    assert!(store
        .mark_failed(&retry[0], &failed("503"), AfterFailure::Dead, secs(21))
        .await
        .unwrap());
    assert!(claim_ids(&store, secs(100), 30).await.is_empty());

    // an operator sends it again; once it is delivered the second is due
    store.retry_dead(first.event_id, secs(200)).await.unwrap();
    let again = store.claim_due(10, secs(200), secs(230)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].event.event_id, first.event_id);
    assert!(claim_ids(&store, secs(201), 30).await.is_empty());
    assert!(store
        .mark_delivered(&again[0], &acked(secs(201)), secs(201))
        .await
        .unwrap());
    assert_eq!(
        claim_ids(&store, secs(202), 30).await,
        vec![second.event_id]
    );
}

#[tokio::test]
async fn a_batch_is_oldest_first_and_bounded() {
    let (_db, store) = setup().await;
    let events: Vec<Event> = (1..=5).map(paid).collect();
    for e in &events {
        store.enqueue(e.clone()).await.unwrap();
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
    store.enqueue(e.clone()).await.unwrap();
    let claim = store.claim_due(1, t0(), secs(30)).await.unwrap().remove(0);
    let long_error = "x".repeat(5_000);
    assert!(store
        .mark_failed(
            &claim,
            &failed(&long_error),
            AfterFailure::RetryAt(secs(5)),
            secs(1)
        )
        .await
        .unwrap());
    let row = store.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 1));
    assert_eq!(row.next_attempt_at, secs(5));
    assert!(row.last_error.unwrap().len() < 1_100);

    let claim = store
        .claim_due(1, secs(5), secs(35))
        .await
        .unwrap()
        .remove(0);
    assert!(store
        .mark_delivered(&claim, &acked(secs(6)), secs(6))
        .await
        .unwrap());
    let row = store.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Delivered, 2));
    assert_eq!(row.delivered_at, Some(secs(6)));
    // a DELIVERED event shows when it was delivered, not the lease of its claim
    assert_eq!(row.next_attempt_at, secs(6));
    // recording twice changes nothing
    assert!(!store
        .mark_delivered(&claim, &acked(secs(7)), secs(7))
        .await
        .unwrap());
    assert!(claim_ids(&store, secs(1_000), 30).await.is_empty());
}

// Invariant: a relay whose lease ended cannot overwrite the outcome of the relay that
// claimed the event after it (the lease value fences the claim).
#[tokio::test]
async fn a_failure_from_a_lost_claim_changes_nothing() {
    let (_db, store) = setup().await;
    let e = paid(1);
    store.enqueue(e.clone()).await.unwrap();
    let stale = store.claim_due(1, t0(), secs(30)).await.unwrap().remove(0);
    let current = store
        .claim_due(1, secs(31), secs(61))
        .await
        .unwrap()
        .remove(0);
    assert!(!store
        .mark_failed(&stale, &failed("late"), AfterFailure::Dead, secs(40))
        .await
        .unwrap());
    let row = store.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 0));
    assert_eq!(row.next_attempt_at, secs(61));
    assert!(store
        .mark_failed(
            &current,
            &failed("503"),
            AfterFailure::RetryAt(secs(70)),
            secs(41)
        )
        .await
        .unwrap());
}

#[tokio::test]
async fn only_a_dead_event_can_be_retried_and_it_starts_over() {
    let (_db, store) = setup().await;
    let e = paid(1);
    store.enqueue(e.clone()).await.unwrap();
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
        .mark_failed(&claim, &failed("gone"), AfterFailure::Dead, secs(2))
        .await
        .unwrap();
    let dead = store.get(e.event_id).await.unwrap().unwrap().entry;
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
    let events: Vec<Event> = (1..=5).map(paid).collect();
    for e in &events {
        store.enqueue(e.clone()).await.unwrap();
    }
    // deliver orders 1 and 3, kill order 5
    for claim in store.claim_due(10, t0(), secs(30)).await.unwrap() {
        match claim.event.aggregate_id {
            1 | 3 => assert!(store
                .mark_delivered(&claim, &acked(secs(1)), secs(1))
                .await
                .unwrap()),
            5 => assert!(store
                .mark_failed(&claim, &failed("x"), AfterFailure::Dead, secs(1))
                .await
                .unwrap()),
            _ => {}
        }
    }
    let orders = |page: &kernel::Page<outbox::OutboxEntry>| -> Vec<i64> {
        page.items.iter().map(|e| e.aggregate_id).collect()
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
    let events: Vec<Event> = (1..=200).map(paid).collect();
    for e in &events {
        store.enqueue(e.clone()).await.unwrap();
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

// Invariant: every attempt is logged with its event, oldest first, numbered across
// operator retries; the log pages like every list.
#[tokio::test]
async fn every_attempt_is_logged_with_its_outcome() {
    let (_db, store) = setup().await;
    let e = paid(1);
    store.enqueue(e.clone()).await.unwrap();
    let unreachable = AttemptOutcome {
        started_at: secs(1),
        duration: Duration::from_millis(5_000),
        status_code: None,
        error: Some("no answer within 5000 ms".into()),
    };
    let c = store
        .claim_due(1, secs(1), secs(30))
        .await
        .unwrap()
        .remove(0);
    assert!(store
        .mark_failed(
            &c,
            &failed("the data platform answered 503"),
            AfterFailure::Dead,
            secs(2)
        )
        .await
        .unwrap());
    store.retry_dead(e.event_id, secs(3)).await.unwrap();
    let c = store
        .claim_due(1, secs(3), secs(33))
        .await
        .unwrap()
        .remove(0);
    assert!(store
        .mark_failed(&c, &unreachable, AfterFailure::RetryAt(secs(10)), secs(6))
        .await
        .unwrap());
    let c = store
        .claim_due(1, secs(10), secs(40))
        .await
        .unwrap()
        .remove(0);
    assert!(store
        .mark_delivered(&c, &acked(secs(11)), secs(11))
        .await
        .unwrap());

    let log = store
        .attempts(e.event_id, PageRequest::default())
        .await
        .unwrap()
        .expect("the event exists");
    assert_eq!(log.next, None);
    let rows: Vec<(u32, Option<u16>, Option<&str>, u64)> = log
        .items
        .iter()
        .map(|a| (a.attempt, a.status_code, a.error.as_deref(), a.duration_ms))
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, Some(503), Some("the data platform answered 503"), 15),
            (2, None, Some("no answer within 5000 ms"), 5_000),
            (3, Some(200), None, 40),
        ]
    );
    assert_eq!(log.items[1].started_at, secs(1));
    // the counter restarted with the retry; the log did not
    let row = store.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Delivered, 2));

    let first = store
        .attempts(e.event_id, PageRequest::new(2, None).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let rest = store
        .attempts(e.event_id, PageRequest::new(2, first.next).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            rest.items.iter().map(|a| a.attempt).collect::<Vec<_>>(),
            rest.next
        ),
        (vec![3], None)
    );
    assert_eq!(
        store
            .attempts(Uuid::new_v4(), PageRequest::default())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get(Uuid::new_v4()).await.unwrap(), None);
}

// Invariant: the payload shown is the body stored, i.e. the body sent.
#[tokio::test]
async fn an_event_is_read_with_its_payload() {
    let (_db, store) = setup().await;
    let e = paid(4);
    store.enqueue(e.clone()).await.unwrap();
    let detail = store.get(e.event_id).await.unwrap().unwrap();
    assert_eq!(detail.payload, e.body);
    assert_eq!(detail.entry.event_id, e.event_id);
}

// Invariant: an event held back behind an undelivered earlier event of its order names
// it; nothing else is shown as blocked.
#[tokio::test]
async fn an_event_waiting_behind_an_undelivered_one_names_it() {
    let (_db, store) = setup().await;
    let paid5 = paid(5);
    let cancelled5 = event_at(5, "order.cancelled", secs(1));
    let refunded5 = event_at(5, "order.refunded", secs(2));
    let paid6 = paid(6);
    for e in [&paid5, &cancelled5, &refunded5, &paid6] {
        store.enqueue(e.clone()).await.unwrap();
    }
    let claims = store.claim_due(10, secs(5), secs(35)).await.unwrap();
    for c in &claims {
        if c.event.aggregate_id == 5 {
            store
                .mark_failed(c, &failed("503"), AfterFailure::Dead, secs(6))
                .await
                .unwrap();
        } else {
            store
                .mark_delivered(c, &acked(secs(6)), secs(6))
                .await
                .unwrap();
        }
    }
    let list = store.list(None, PageRequest::default()).await.unwrap();
    let blocked: Vec<(Uuid, Option<Uuid>)> = list
        .items
        .iter()
        .map(|e| (e.event_id, e.blocked_by))
        .collect();
    assert_eq!(
        blocked,
        vec![
            (paid5.event_id, None),
            (cancelled5.event_id, Some(paid5.event_id)),
            (refunded5.event_id, Some(paid5.event_id)),
            (paid6.event_id, None),
        ]
    );
    let one = store.get(refunded5.event_id).await.unwrap().unwrap();
    assert_eq!(one.entry.blocked_by, Some(paid5.event_id));
}

// Invariant: a bulk retry revives exactly the DEAD events the filter matches, in one
// statement, and nothing else.
#[tokio::test]
async fn a_bulk_retry_revives_exactly_the_matching_dead_events() {
    let (_db, store) = setup().await;
    let events = [
        event_at(1, "order.paid", secs(0)),
        event_at(2, "order.paid", secs(10)),
        event_at(3, "order.cancelled", secs(10)),
        event_at(4, "order.paid", secs(20)),
        event_at(5, "order.paid", secs(10)), // stays PENDING
    ];
    for e in &events {
        store.enqueue(e.clone()).await.unwrap();
    }
    for c in store.claim_due(10, secs(30), secs(60)).await.unwrap() {
        if c.event.aggregate_id != 5 {
            store
                .mark_failed(&c, &failed("503"), AfterFailure::Dead, secs(31))
                .await
                .unwrap();
        }
    }
    let filter =
        outbox::RetryFilter::new(Some("order.paid".into()), Some(secs(10)), Some(secs(20)))
            .unwrap();
    assert_eq!(
        store.retry_dead_matching(&filter, secs(40)).await.unwrap(),
        1
    );
    let status = |id: usize| {
        let store = store.clone();
        let event_id = events[id].event_id;
        async move { store.get(event_id).await.unwrap().unwrap().entry }
    };
    let revived = status(1).await;
    assert_eq!(
        (revived.status, revived.attempts, revived.next_attempt_at),
        (OutboxStatus::Pending, 0, secs(40))
    );
    for i in [0, 2, 3] {
        assert_eq!(status(i).await.status, OutboxStatus::Dead, "event {i}");
    }
    // no filter: every DEAD one
    let all = outbox::RetryFilter::default();
    assert_eq!(store.retry_dead_matching(&all, secs(41)).await.unwrap(), 3);
    assert_eq!(store.retry_dead_matching(&all, secs(42)).await.unwrap(), 0);
    assert_eq!(store.backlog().await.unwrap().dead, 0);
}

// Invariant: retention deletes DELIVERED events delivered before the cutoff, and their
// attempts, never a PENDING or DEAD one however old, nor a recent delivery.
#[tokio::test]
async fn retention_deletes_only_old_delivered_events() {
    let (db, store) = setup().await;
    let old = paid(1);
    let recent = paid(2);
    let dead = paid(3);
    let pending = paid(4);
    for e in [&old, &recent, &dead, &pending] {
        store.enqueue(e.clone()).await.unwrap();
    }
    for c in store.claim_due(10, t0(), secs(30)).await.unwrap() {
        match c.event.aggregate_id {
            1 => assert!(store
                .mark_delivered(&c, &acked(secs(1)), secs(1))
                .await
                .unwrap()),
            2 => assert!(store
                .mark_delivered(&c, &acked(secs(100)), secs(100))
                .await
                .unwrap()),
            3 => assert!(store
                .mark_failed(&c, &failed("x"), AfterFailure::Dead, secs(1))
                .await
                .unwrap()),
            _ => {}
        }
    }
    assert_eq!(store.purge_delivered(secs(50), 10).await.unwrap(), 1);
    assert_eq!(store.purge_delivered(secs(50), 10).await.unwrap(), 0);
    assert_eq!(store.get(old.event_id).await.unwrap(), None);
    for e in [&recent, &dead, &pending] {
        assert!(store.get(e.event_id).await.unwrap().is_some());
    }
    // the old event's attempts went with it
    let mut conn = db.pool(1).get().await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel_async::RunQueryDsl;
    let n: N = diesel::sql_query("SELECT count(*) AS n FROM outbox_attempts")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        n.n, 2,
        "the attempts of the recent and the dead event are kept"
    );
    let b = store.backlog().await.unwrap();
    assert_eq!((b.pending, b.dead, b.delivered), (1, 1, 1));
}

// Invariant: batches are bounded and two purgers at once never fail nor delete a row twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_purges_share_the_work() {
    let db = TestDatabase::create().await;
    let store = PgOutboxStore::new(db.pool(6));
    for order in 1..=120 {
        store.enqueue(paid(order)).await.unwrap();
    }
    for c in store.claim_due(200, t0(), secs(30)).await.unwrap() {
        store
            .mark_delivered(&c, &acked(secs(1)), secs(1))
            .await
            .unwrap();
    }
    let purge = |store: PgOutboxStore| async move {
        let mut total = 0;
        loop {
            let n = store.purge_delivered(secs(10), 7).await.unwrap();
            assert!(n <= 7);
            total += n;
            if n == 0 {
                return total;
            }
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(purge(store.clone())),
        tokio::spawn(purge(store.clone()))
    );
    assert_eq!(a.unwrap() + b.unwrap(), 120);
    assert_eq!(store.backlog().await.unwrap().delivered, 0);
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
