//! `OutboxStore`: claims with a lease that no two relays share, one event of an
//! aggregate at a time in write order, fenced outcomes, the attempt log, operators'
//! retries and retention.

use crate::Stores;
use chrono::{DateTime, Duration as Span, Utc};
use kernel::testing::t0;
use kernel::PageRequest;
use outbox::{
    AfterFailure, AttemptOutcome, ClaimedEvent, Event, OutboxStatus, OutboxStore, RetryEventError,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// `n` seconds after [`t0`].
pub fn secs(n: i64) -> DateTime<Utc> {
    t0() + Span::seconds(n)
}

/// An event of `order_id` of this type that happened at `at`.
pub fn event_at(order_id: i64, event_type: &str, at: DateTime<Utc>) -> Event {
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

/// An `order.paid` event of `order_id` at [`t0`].
pub fn paid(order_id: i64) -> Event {
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
pub fn failed(error: &str) -> AttemptOutcome {
    AttemptOutcome {
        started_at: t0(),
        duration: Duration::from_millis(15),
        status_code: Some(503),
        error: Some(error.to_string()),
    }
}

/// Claims the one due event (panics when none is due).
async fn claim_one(s: &Stores, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> ClaimedEvent {
    s.outbox
        .claim_due(1, now, lease_until)
        .await
        .unwrap()
        .remove(0)
}

async fn claim_ids(s: &Stores, now: DateTime<Utc>, lease: i64) -> Vec<Uuid> {
    s.outbox
        .claim_due(100, now, now + Span::seconds(lease))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.event.event_id)
        .collect()
}

/// Invariant: an event written to the outbox is PENDING, due from when it happened,
/// and claimed with its body unchanged.
pub async fn an_enqueued_event_is_pending_and_due_at_once_with_its_body_unchanged(s: Stores) {
    let e = paid(7);
    (s.enqueue)(e.clone()).await.unwrap();

    let row = s.outbox.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!(row.status, OutboxStatus::Pending);
    assert_eq!((row.attempts, row.aggregate_id), (0, 7));
    assert_eq!(row.event_type, "order.paid");
    assert_eq!((row.created_at, row.next_attempt_at), (t0(), t0()));
    assert_eq!(
        (row.last_error, row.delivered_at, row.blocked_by),
        (None, None, None)
    );

    // not due before it happened, due from then on
    assert!(claim_ids(&s, secs(-1), 30).await.is_empty());
    let claims = s.outbox.claim_due(10, t0(), secs(30)).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].event, e);
    assert_eq!((claims[0].attempts, claims[0].lease_until), (0, secs(30)));
}

/// Invariant: a claim is committed with a lease; while it holds nobody else gets the
/// event, and when it ends (the relay died) the event is due again.
pub async fn a_claim_holds_until_its_lease_ends_then_the_event_is_due_again(s: Stores) {
    let e = paid(1);
    (s.enqueue)(e.clone()).await.unwrap();
    assert_eq!(claim_ids(&s, secs(1), 30).await, vec![e.event_id]);
    assert!(claim_ids(&s, secs(2), 30).await.is_empty());
    assert!(claim_ids(&s, secs(30), 30).await.is_empty());
    // the relay that claimed it never came back
    assert_eq!(claim_ids(&s, secs(31), 30).await, vec![e.event_id]);
    let row = s.outbox.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 0));
    assert_eq!(row.next_attempt_at, secs(61));
}

/// Invariant: events of one order are handed out one at a time, in write order; a DEAD
/// event holds back the later events of its order until it is delivered.
pub async fn a_later_event_of_an_order_waits_until_the_earlier_one_is_delivered(s: Stores) {
    let first = paid(5);
    let second = event_at(5, "order.cancelled", secs(1));
    let other = paid(6);
    for e in [&first, &second, &other] {
        (s.enqueue)(e.clone()).await.unwrap();
    }

    let claims = s.outbox.claim_due(10, secs(10), secs(40)).await.unwrap();
    let ids: Vec<Uuid> = claims.iter().map(|c| c.event.event_id).collect();
    assert_eq!(ids, vec![first.event_id, other.event_id]);
    assert!(s
        .outbox
        .mark_delivered(&claims[1], &acked(secs(10)), secs(10))
        .await
        .unwrap());

    // the first fails and waits for its retry: the second still may not pass it
    assert!(s
        .outbox
        .mark_failed(
            &claims[0],
            &failed("503"),
            AfterFailure::RetryAt(secs(20)),
            secs(11)
        )
        .await
        .unwrap());
    assert!(claim_ids(&s, secs(12), 30).await.is_empty());

    // parked as DEAD: the second waits behind it
    let retry = s.outbox.claim_due(10, secs(20), secs(50)).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    assert!(s
        .outbox
        .mark_failed(&retry[0], &failed("503"), AfterFailure::Dead, secs(21))
        .await
        .unwrap());
    assert!(claim_ids(&s, secs(100), 30).await.is_empty());

    // an operator sends it again; once it is delivered the second is due
    s.outbox
        .retry_dead(first.event_id, secs(200))
        .await
        .unwrap();
    let again = s.outbox.claim_due(10, secs(200), secs(230)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].event.event_id, first.event_id);
    assert!(claim_ids(&s, secs(201), 30).await.is_empty());
    assert!(s
        .outbox
        .mark_delivered(&again[0], &acked(secs(201)), secs(201))
        .await
        .unwrap());
    assert_eq!(claim_ids(&s, secs(202), 30).await, vec![second.event_id]);
}

/// Invariant: a claim takes the oldest due events first, at most the batch size.
pub async fn a_batch_is_oldest_first_and_bounded(s: Stores) {
    let events: Vec<Event> = (1..=5).map(paid).collect();
    for e in &events {
        (s.enqueue)(e.clone()).await.unwrap();
    }
    let first = s.outbox.claim_due(3, t0(), secs(30)).await.unwrap();
    let ids: Vec<Uuid> = first.iter().map(|c| c.event.event_id).collect();
    let expected: Vec<Uuid> = events[..3].iter().map(|e| e.event_id).collect();
    assert_eq!(ids, expected);
    assert_eq!(claim_ids(&s, t0(), 30).await.len(), 2);
}

/// Invariant: a failure is recorded with its (bounded) error and its retry time; a
/// delivery with its time; recording a delivery twice changes nothing.
pub async fn delivery_and_failure_are_recorded(s: Stores) {
    let e = paid(1);
    (s.enqueue)(e.clone()).await.unwrap();
    let claim = claim_one(&s, t0(), secs(30)).await;
    let long_error = "x".repeat(5_000);
    assert!(s
        .outbox
        .mark_failed(
            &claim,
            &failed(&long_error),
            AfterFailure::RetryAt(secs(5)),
            secs(1)
        )
        .await
        .unwrap());
    let row = s.outbox.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 1));
    assert_eq!(row.next_attempt_at, secs(5));
    assert!(row.last_error.unwrap().len() < 1_100);

    let claim = claim_one(&s, secs(5), secs(35)).await;
    assert!(s
        .outbox
        .mark_delivered(&claim, &acked(secs(6)), secs(6))
        .await
        .unwrap());
    let row = s.outbox.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Delivered, 2));
    assert_eq!(row.delivered_at, Some(secs(6)));
    // a DELIVERED event shows when it was delivered, not the lease of its claim
    assert_eq!(row.next_attempt_at, secs(6));
    // recording twice changes nothing
    assert!(!s
        .outbox
        .mark_delivered(&claim, &acked(secs(7)), secs(7))
        .await
        .unwrap());
    assert!(claim_ids(&s, secs(1_000), 30).await.is_empty());
}

/// Invariant: a relay whose lease ended cannot overwrite the outcome of the relay that
/// claimed the event after it (the lease value fences the claim).
pub async fn a_failure_from_a_lost_claim_changes_nothing(s: Stores) {
    let e = paid(1);
    (s.enqueue)(e.clone()).await.unwrap();
    let stale = claim_one(&s, t0(), secs(30)).await;
    let current = claim_one(&s, secs(31), secs(61)).await;
    assert!(!s
        .outbox
        .mark_failed(&stale, &failed("late"), AfterFailure::Dead, secs(40))
        .await
        .unwrap());
    let row = s.outbox.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 0));
    assert_eq!(row.next_attempt_at, secs(61));
    assert!(s
        .outbox
        .mark_failed(
            &current,
            &failed("503"),
            AfterFailure::RetryAt(secs(70)),
            secs(41)
        )
        .await
        .unwrap());
}

/// Invariant: only a DEAD event is retried; it starts over (PENDING, no attempts, due
/// now) and keeps its last error.
pub async fn only_a_dead_event_can_be_retried_and_it_starts_over(s: Stores) {
    let e = paid(1);
    (s.enqueue)(e.clone()).await.unwrap();
    assert!(matches!(
        s.outbox.retry_dead(e.event_id, secs(1)).await,
        Err(RetryEventError::NotDead {
            status: OutboxStatus::Pending,
            ..
        })
    ));
    assert!(matches!(
        s.outbox.retry_dead(Uuid::new_v4(), secs(1)).await,
        Err(RetryEventError::NotFound(_))
    ));
    let claim = claim_one(&s, t0(), secs(30)).await;
    s.outbox
        .mark_failed(&claim, &failed("gone"), AfterFailure::Dead, secs(2))
        .await
        .unwrap();
    let dead = s.outbox.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!((dead.status, dead.attempts), (OutboxStatus::Dead, 1));
    assert_eq!(dead.next_attempt_at, secs(2));

    let revived = s.outbox.retry_dead(e.event_id, secs(100)).await.unwrap();
    assert_eq!(
        (revived.status, revived.attempts),
        (OutboxStatus::Pending, 0)
    );
    assert_eq!(revived.next_attempt_at, secs(100));
    assert_eq!(revived.last_error.as_deref(), Some("gone"));
    assert!(matches!(
        s.outbox.retry_dead(e.event_id, secs(101)).await,
        Err(RetryEventError::NotDead { .. })
    ));
}

/// Invariant: the operators' list runs in write order, page by page, filtered by
/// status; the backlog counts what waits.
pub async fn the_list_filters_by_status_and_pages_in_write_order(s: Stores) {
    let events: Vec<Event> = (1..=5).map(paid).collect();
    for e in &events {
        (s.enqueue)(e.clone()).await.unwrap();
    }
    // deliver orders 1 and 3, kill order 5
    for claim in s.outbox.claim_due(10, t0(), secs(30)).await.unwrap() {
        match claim.event.aggregate_id {
            1 | 3 => assert!(s
                .outbox
                .mark_delivered(&claim, &acked(secs(1)), secs(1))
                .await
                .unwrap()),
            5 => assert!(s
                .outbox
                .mark_failed(&claim, &failed("x"), AfterFailure::Dead, secs(1))
                .await
                .unwrap()),
            _ => {}
        }
    }
    let orders = |page: &kernel::Page<outbox::OutboxEntry>| -> Vec<i64> {
        page.items.iter().map(|e| e.aggregate_id).collect()
    };
    let delivered = s
        .outbox
        .list(Some(OutboxStatus::Delivered), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(orders(&delivered), vec![1, 3]);
    let dead = s
        .outbox
        .list(Some(OutboxStatus::Dead), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(orders(&dead), vec![5]);

    let first = s
        .outbox
        .list(None, PageRequest::new(2, None).unwrap())
        .await
        .unwrap();
    assert_eq!(orders(&first), vec![1, 2]);
    let second = s
        .outbox
        .list(None, PageRequest::new(2, first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(orders(&second), vec![3, 4]);
    let last = s
        .outbox
        .list(None, PageRequest::new(2, second.next).unwrap())
        .await
        .unwrap();
    assert_eq!((orders(&last), last.next), (vec![5], None));

    let backlog = s.outbox.backlog().await.unwrap();
    assert_eq!((backlog.pending, backlog.dead), (2, 1));
    assert_eq!(backlog.oldest_pending_at, Some(t0()));
}

/// Invariant: an empty outbox has no backlog.
pub async fn an_empty_outbox_has_no_backlog(s: Stores) {
    let backlog = s.outbox.backlog().await.unwrap();
    assert_eq!(
        (backlog.pending, backlog.dead, backlog.oldest_pending_at),
        (0, 0, None)
    );
}

/// Invariant: relays claiming at the same moment never get the same event,
/// and together they get every due event.
pub async fn concurrent_claimers_share_the_events_without_overlap(s: Stores) {
    let events: Vec<Event> = (1..=200).map(paid).collect();
    for e in &events {
        (s.enqueue)(e.clone()).await.unwrap();
    }
    let start = Arc::new(tokio::sync::Barrier::new(6));
    let claimers = (0..6).map(|_| {
        let (store, start) = (s.outbox.clone(), start.clone());
        tokio::spawn(async move {
            start.wait().await;
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_due(7, secs(1), secs(600)).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|c| c.event.event_id));
                // a relay delivers its batch before it claims the next
                tokio::time::sleep(Duration::from_millis(1)).await;
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

/// Invariant: every attempt is logged with its event, oldest first, numbered across
/// operator retries; the log pages like every list.
pub async fn every_attempt_is_logged_with_its_outcome(s: Stores) {
    let e = paid(1);
    (s.enqueue)(e.clone()).await.unwrap();
    let unreachable = AttemptOutcome {
        started_at: secs(1),
        duration: Duration::from_millis(5_000),
        status_code: None,
        error: Some("no answer within 5000 ms".into()),
    };
    let c = claim_one(&s, secs(1), secs(30)).await;
    assert!(s
        .outbox
        .mark_failed(
            &c,
            &failed("the data platform answered 503"),
            AfterFailure::Dead,
            secs(2)
        )
        .await
        .unwrap());
    s.outbox.retry_dead(e.event_id, secs(3)).await.unwrap();
    let c = claim_one(&s, secs(3), secs(33)).await;
    assert!(s
        .outbox
        .mark_failed(&c, &unreachable, AfterFailure::RetryAt(secs(10)), secs(6))
        .await
        .unwrap());
    let c = claim_one(&s, secs(10), secs(40)).await;
    assert!(s
        .outbox
        .mark_delivered(&c, &acked(secs(11)), secs(11))
        .await
        .unwrap());

    let log = s
        .outbox
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
    let row = s.outbox.get(e.event_id).await.unwrap().unwrap().entry;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Delivered, 2));

    let first = s
        .outbox
        .attempts(e.event_id, PageRequest::new(2, None).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let rest = s
        .outbox
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
        s.outbox
            .attempts(Uuid::new_v4(), PageRequest::default())
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.outbox.get(Uuid::new_v4()).await.unwrap(), None);
}

/// Invariant: an event held back behind an undelivered earlier event of its order names
/// it; nothing else is shown as blocked.
pub async fn an_event_waiting_behind_an_undelivered_one_names_it(s: Stores) {
    let paid5 = paid(5);
    let cancelled5 = event_at(5, "order.cancelled", secs(1));
    let refunded5 = event_at(5, "order.refunded", secs(2));
    let paid6 = paid(6);
    for e in [&paid5, &cancelled5, &refunded5, &paid6] {
        (s.enqueue)(e.clone()).await.unwrap();
    }
    let claims = s.outbox.claim_due(10, secs(5), secs(35)).await.unwrap();
    for c in &claims {
        if c.event.aggregate_id == 5 {
            s.outbox
                .mark_failed(c, &failed("503"), AfterFailure::Dead, secs(6))
                .await
                .unwrap();
        } else {
            s.outbox
                .mark_delivered(c, &acked(secs(6)), secs(6))
                .await
                .unwrap();
        }
    }
    let list = s.outbox.list(None, PageRequest::default()).await.unwrap();
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
    let one = s.outbox.get(refunded5.event_id).await.unwrap().unwrap();
    assert_eq!(one.entry.blocked_by, Some(paid5.event_id));
}

/// Invariant: a bulk retry revives exactly the DEAD events the filter matches, in one
/// statement, and nothing else.
pub async fn a_bulk_retry_revives_exactly_the_matching_dead_events(s: Stores) {
    let events = [
        event_at(1, "order.paid", secs(0)),
        event_at(2, "order.paid", secs(10)),
        event_at(3, "order.cancelled", secs(10)),
        event_at(4, "order.paid", secs(20)),
        event_at(5, "order.paid", secs(10)), // stays PENDING
    ];
    for e in &events {
        (s.enqueue)(e.clone()).await.unwrap();
    }
    for c in s.outbox.claim_due(10, secs(30), secs(60)).await.unwrap() {
        if c.event.aggregate_id != 5 {
            s.outbox
                .mark_failed(&c, &failed("503"), AfterFailure::Dead, secs(31))
                .await
                .unwrap();
        }
    }
    let filter =
        outbox::RetryFilter::new(Some("order.paid".into()), Some(secs(10)), Some(secs(20)))
            .unwrap();
    assert_eq!(
        s.outbox
            .retry_dead_matching(&filter, secs(40))
            .await
            .unwrap(),
        1
    );
    let status = |id: usize| {
        let store = s.outbox.clone();
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
    assert_eq!(
        s.outbox.retry_dead_matching(&all, secs(41)).await.unwrap(),
        3
    );
    assert_eq!(
        s.outbox.retry_dead_matching(&all, secs(42)).await.unwrap(),
        0
    );
    assert_eq!(s.outbox.backlog().await.unwrap().dead, 0);
}

/// Invariant: retention deletes DELIVERED events delivered before the cutoff, and their
/// attempts, never a PENDING or DEAD one however old, nor a recent delivery.
pub async fn retention_deletes_only_old_delivered_events(s: Stores) {
    let old = paid(1);
    let recent = paid(2);
    let dead = paid(3);
    let pending = paid(4);
    for e in [&old, &recent, &dead, &pending] {
        (s.enqueue)(e.clone()).await.unwrap();
    }
    for c in s.outbox.claim_due(10, t0(), secs(30)).await.unwrap() {
        match c.event.aggregate_id {
            1 => assert!(s
                .outbox
                .mark_delivered(&c, &acked(secs(1)), secs(1))
                .await
                .unwrap()),
            2 => assert!(s
                .outbox
                .mark_delivered(&c, &acked(secs(100)), secs(100))
                .await
                .unwrap()),
            3 => assert!(s
                .outbox
                .mark_failed(&c, &failed("x"), AfterFailure::Dead, secs(1))
                .await
                .unwrap()),
            _ => {}
        }
    }
    assert_eq!(s.outbox.purge_delivered(secs(50), 10).await.unwrap(), 1);
    assert_eq!(s.outbox.purge_delivered(secs(50), 10).await.unwrap(), 0);
    assert_eq!(s.outbox.get(old.event_id).await.unwrap(), None);
    for e in [&recent, &dead, &pending] {
        assert!(s.outbox.get(e.event_id).await.unwrap().is_some());
    }
    // the old event's attempts went with it; the others' are kept
    assert_eq!(
        s.outbox
            .attempts(old.event_id, PageRequest::default())
            .await
            .unwrap(),
        None
    );
    for e in [&recent, &dead] {
        let log = s
            .outbox
            .attempts(e.event_id, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(log.map(|l| l.items.len()), Some(1));
    }
    let b = s.outbox.backlog().await.unwrap();
    assert_eq!((b.pending, b.dead, b.delivered), (1, 1, 1));
}

/// Invariant: batches are bounded and two purgers at once never fail nor delete a row twice.
pub async fn concurrent_purges_share_the_work(s: Stores) {
    for order in 1..=120 {
        (s.enqueue)(paid(order)).await.unwrap();
    }
    for c in s.outbox.claim_due(200, t0(), secs(30)).await.unwrap() {
        s.outbox
            .mark_delivered(&c, &acked(secs(1)), secs(1))
            .await
            .unwrap();
    }
    let purge = |store: Arc<dyn OutboxStore>| async move {
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
        tokio::spawn(purge(s.outbox.clone())),
        tokio::spawn(purge(s.outbox.clone()))
    );
    assert_eq!(a.unwrap() + b.unwrap(), 120);
    assert_eq!(s.outbox.backlog().await.unwrap().delivered, 0);
}
