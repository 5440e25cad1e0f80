//! The outbox: the admin endpoints of API.md "Data platform (outbound)", and the relay
//! inside the running app delivering to a recording fake platform over real HTTP.
//! (Orders do not write events yet; the tests enqueue them directly.)

use crate::helpers::{
    spawn_app, spawn_app_with, spawn_app_with_platform, spawn_relaying_on, FakePlatform, TestApp,
};
use chrono::{DateTime, Utc};
use order::events::{EventType, OutboundEvent};
use outbox::{AfterFailure, AttemptOutcome, OutboxStatus, OutboxStore};
use postgres_adapter::PgOutboxStore;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

/// Generous: the machine may be busy; tests finish as soon as the condition holds.
const WITHIN: Duration = Duration::from_secs(30);

fn event(order_id: i64, event_type: EventType) -> OutboundEvent {
    let occurred_at = kernel::Clock::now(&kernel::SystemClock);
    OutboundEvent::new(
        Uuid::new_v4(),
        event_type,
        order_id,
        occurred_at,
        json!({"id": order_id}),
    )
}

fn store(app: &TestApp) -> PgOutboxStore {
    PgOutboxStore::new(app.pool())
}

async fn enqueue(store: &PgOutboxStore, order_id: i64, event_type: EventType) -> OutboundEvent {
    let e = event(order_id, event_type);
    store.enqueue(&e).await.unwrap();
    e
}

fn event_id_of(body: &Value) -> String {
    body["event_id"].as_str().unwrap().to_string()
}

/// The admin view of one event (every page scanned).
async fn view(app: &TestApp, event_id: Uuid) -> Value {
    app.get_all("/api/v1/admin/outbox", Some(&app.admin_token()), 100)
        .await
        .into_iter()
        .find(|e| e["event_id"] == event_id.to_string())
        .unwrap_or_else(|| panic!("event {event_id} not listed"))
}

/// Polls the admin view of an event until `done` holds.
async fn wait_for_view(
    app: &TestApp,
    event_id: Uuid,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let v = view(app, event_id).await;
        if done(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An attempt as a relay records it: refused with 503, or acknowledged.
fn attempt(at: DateTime<Utc>, error: Option<&str>) -> AttemptOutcome {
    AttemptOutcome {
        started_at: at,
        duration: Duration::from_millis(3),
        status_code: Some(if error.is_some() { 503 } else { 200 }),
        error: error.map(str::to_string),
    }
}

/// Claims every due event and parks it as DEAD / marks it delivered, as a relay would.
async fn settle(store: &PgOutboxStore, dead: &[Uuid], delivered: &[Uuid]) {
    let now: DateTime<Utc> = Utc::now() + chrono::Duration::seconds(1);
    for claim in store
        .claim_due(100, now, now + chrono::Duration::seconds(60))
        .await
        .unwrap()
    {
        if dead.contains(&claim.event.event_id) {
            assert!(store
                .mark_failed(
                    &claim,
                    &attempt(now, Some("the platform answered 503")),
                    AfterFailure::Dead,
                    now
                )
                .await
                .unwrap());
        } else if delivered.contains(&claim.event.event_id) {
            assert!(store
                .mark_delivered(&claim, &attempt(now, None), now)
                .await
                .unwrap());
        }
    }
}

// ---- admin endpoints ------------------------------------------------------------------

#[tokio::test]
async fn the_outbox_endpoints_need_an_admin() {
    let app = spawn_app().await;
    let retry = format!("/api/v1/admin/outbox/{}/retry", Uuid::new_v4());
    app.get("/api/v1/admin/outbox", None)
        .await
        .assert_problem(401, "UNAUTHORIZED");
    app.post(&retry, None, &json!({}))
        .await
        .assert_problem(401, "UNAUTHORIZED");
    let user = app.user_token(1);
    app.get("/api/v1/admin/outbox", Some(&user))
        .await
        .assert_problem(403, "FORBIDDEN");
    app.post(&retry, Some(&user), &json!({}))
        .await
        .assert_problem(403, "FORBIDDEN");
}

#[tokio::test]
async fn the_list_shows_every_field_filters_by_status_and_pages() {
    let app = spawn_app().await;
    let store = store(&app);
    let pending = enqueue(&store, 1, EventType::OrderPaid).await;
    let dead = enqueue(&store, 2, EventType::OrderPaid).await;
    let delivered = enqueue(&store, 3, EventType::OrderCancelled).await;
    settle(&store, &[dead.event_id], &[delivered.event_id]).await;
    let admin = app.admin_token();

    let all = app.get_all("/api/v1/admin/outbox", Some(&admin), 1).await;
    let ids: Vec<String> = all.iter().map(event_id_of).collect();
    assert_eq!(
        ids,
        [pending.event_id, dead.event_id, delivered.event_id].map(|id| id.to_string()),
        "all events, in write order, across pages of one"
    );

    let only = |status: &str| {
        let app = &app;
        let admin = admin.clone();
        let status = status.to_string();
        async move {
            let r = app
                .get(
                    &format!("/api/v1/admin/outbox?status={status}"),
                    Some(&admin),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert_eq!(r.body["next_cursor"], Value::Null);
            r.body["items"].as_array().unwrap().clone()
        }
    };
    let p = only("PENDING").await;
    assert_eq!(p.len(), 1);
    let p = &p[0];
    assert_eq!(p["event_id"], pending.event_id.to_string());
    assert_eq!(p["event_type"], "order.paid");
    assert_eq!(p["order_id"], 1);
    assert_eq!(p["status"], "PENDING");
    assert_eq!(p["attempts"], 0);
    assert_eq!(p["last_error"], Value::Null);
    assert_eq!(p["delivered_at"], Value::Null);
    let created: DateTime<Utc> = p["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(created, pending.occurred_at);
    assert!(p["next_attempt_at"].as_str().unwrap().ends_with('Z'));

    let d = only("DEAD").await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["event_id"], dead.event_id.to_string());
    assert_eq!(
        (d[0]["status"].as_str(), d[0]["attempts"].as_i64()),
        (Some("DEAD"), Some(1))
    );
    assert_eq!(d[0]["last_error"], "the platform answered 503");

    let v = only("DELIVERED").await;
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["event_type"], "order.cancelled");
    assert!(v[0]["delivered_at"].is_string());
}

#[tokio::test]
async fn a_bad_status_or_page_is_a_validation_error() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    for query in [
        "status=FAILED",
        "status=dead",
        "status=",
        "limit=0",
        "limit=101",
        "cursor=nope",
    ] {
        app.get(&format!("/api/v1/admin/outbox?{query}"), Some(&admin))
            .await
            .assert_problem(400, "VALIDATION_ERROR");
    }
}

#[tokio::test]
async fn retry_makes_a_dead_event_pending_and_refuses_anything_else() {
    let app = spawn_app().await;
    let store = store(&app);
    let dead = enqueue(&store, 1, EventType::OrderPaid).await;
    let pending = enqueue(&store, 2, EventType::OrderPaid).await;
    settle(&store, &[dead.event_id], &[]).await;
    let admin = app.admin_token();
    let retry = |id: &str| format!("/api/v1/admin/outbox/{id}/retry");

    let r = app
        .post(&retry(&dead.event_id.to_string()), Some(&admin), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["event_id"], dead.event_id.to_string());
    assert_eq!(r.body["status"], "PENDING");
    assert_eq!(r.body["attempts"], 0);
    assert_eq!(r.body["last_error"], "the platform answered 503");
    let due: DateTime<Utc> = r.body["next_attempt_at"].as_str().unwrap().parse().unwrap();
    assert!(due <= Utc::now());
    assert_eq!(view(&app, dead.event_id).await["status"], "PENDING");

    // now PENDING, like the other one: not DEAD, so 409
    for id in [dead.event_id, pending.event_id] {
        app.post(&retry(&id.to_string()), Some(&admin), &json!({}))
            .await
            .assert_problem(409, "INVALID_EVENT_STATE");
    }
    app.post(
        &retry(&Uuid::new_v4().to_string()),
        Some(&admin),
        &json!({}),
    )
    .await
    .assert_problem(404, "EVENT_NOT_FOUND");
    app.post(&retry("not-a-uuid"), Some(&admin), &json!({}))
        .await
        .assert_problem(400, "VALIDATION_ERROR");
}

// ---- the relay ------------------------------------------------------------------------

// Invariant: an event is delivered once the platform accepts it, however many attempts
// failed before; every attempt carries the same key and the same body.
#[tokio::test]
async fn an_event_refused_a_few_times_is_delivered_after_retries() {
    let platform = FakePlatform::start().await;
    platform.fail_next(3);
    let app = spawn_app_with_platform(&platform.url, |_| {}).await;
    let e = enqueue(&store(&app), 42, EventType::OrderPaid).await;

    platform
        .wait_for(WITHIN, "the delivery", |acked| acked.len() == 1)
        .await;
    let requests = platform.requests();
    assert_eq!(requests.len(), 4, "3 refused + 1 accepted: {requests:?}");
    for r in &requests {
        assert_eq!(
            r.idempotency_key.as_deref(),
            Some(e.event_id.to_string().as_str())
        );
        assert_eq!(r.body, e.body);
    }
    assert!(requests[3].acknowledged && !requests[2].acknowledged);

    let v = wait_for_view(&app, e.event_id, "DELIVERED", |v| {
        v["status"] == "DELIVERED"
    })
    .await;
    assert_eq!(v["attempts"], 4);
    assert!(v["last_error"].as_str().unwrap().contains("503"), "{v}");
    assert!(v["delivered_at"].is_string());
}

// Invariant: nothing written while the platform is down is lost; all of it arrives
// once the platform is back.
#[tokio::test]
async fn events_written_while_the_platform_is_down_all_arrive_when_it_is_back() {
    let port = FakePlatform::free_port();
    // enough attempts that nothing goes DEAD while the platform is down
    let app = spawn_app_with_platform(&format!("http://127.0.0.1:{port}"), |s| {
        s.data_platform.max_attempts = 10_000;
    })
    .await;
    let store = store(&app);
    let mut expected = HashSet::new();
    for order in 1..=20 {
        expected.insert(
            enqueue(&store, order, EventType::OrderPaid)
                .await
                .event_id
                .to_string(),
        );
    }
    // the relay is trying, and failing
    let first = expected.iter().next().unwrap().parse().unwrap();
    let v = wait_for_view(&app, first, "a failed attempt", |v| {
        v["attempts"].as_i64().unwrap() >= 2
    })
    .await;
    assert_eq!(v["status"], "PENDING");
    assert!(v["last_error"].is_string());

    let platform = FakePlatform::start_on(port).await;
    let acked = platform
        .wait_for(WITHIN, "all 20 events", |acked| {
            acked.iter().map(event_id_of).collect::<HashSet<_>>().len() == 20
        })
        .await;
    let got: HashSet<String> = acked.iter().map(event_id_of).collect();
    assert_eq!(got, expected);
    for id in &expected {
        let v = wait_for_view(&app, id.parse().unwrap(), "DELIVERED", |v| {
            v["status"] == "DELIVERED"
        })
        .await;
        assert!(v["attempts"].as_i64().unwrap() >= 1);
    }
}

// Invariant: the events of one order reach the platform in the order they happened; a
// later event is not even sent before the earlier one is acknowledged.
#[tokio::test]
async fn the_events_of_one_order_arrive_in_order_even_when_the_first_needs_retries() {
    let platform = FakePlatform::start().await;
    platform.fail_next(2);
    let app = spawn_app_with_platform(&platform.url, |_| {}).await;
    let store = store(&app);
    let paid = enqueue(&store, 7, EventType::OrderPaid).await;
    let cancelled = enqueue(&store, 7, EventType::OrderCancelled).await;

    let acked = platform
        .wait_for(WITHIN, "both events", |acked| acked.len() == 2)
        .await;
    assert_eq!(acked[0]["event_id"], paid.event_id.to_string());
    assert_eq!(acked[1]["event_id"], cancelled.event_id.to_string());
    let requests = platform.requests();
    let order: Vec<(String, bool)> = requests
        .iter()
        .map(|r| {
            (
                r.body["event_type"].as_str().unwrap().to_string(),
                r.acknowledged,
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ("order.paid".to_string(), false),
            ("order.paid".to_string(), false),
            ("order.paid".to_string(), true),
            ("order.cancelled".to_string(), true),
        ]
    );
}

// Invariant: after max_attempts failures an event is parked (no more attempts), and an
// operator's retry sends it again.
#[tokio::test]
async fn an_event_dead_after_max_attempts_is_delivered_after_an_admin_retry() {
    let platform = FakePlatform::start().await;
    platform.fail_next(usize::MAX);
    let app = spawn_app_with_platform(&platform.url, |s| s.data_platform.max_attempts = 3).await;
    let e = enqueue(&store(&app), 9, EventType::OrderPaid).await;

    let v = wait_for_view(&app, e.event_id, "DEAD", |v| v["status"] == "DEAD").await;
    assert_eq!(v["attempts"], 3);
    assert!(v["last_error"].as_str().unwrap().contains("503"));
    // parked: a few retry periods later, still 3 attempts
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(platform.requests().len(), 3);

    platform.fail_next(0);
    let r = app
        .post(
            &format!("/api/v1/admin/outbox/{}/retry", e.event_id),
            Some(&app.admin_token()),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    platform
        .wait_for(WITHIN, "the retried event", |acked| acked.len() == 1)
        .await;
    let v = wait_for_view(&app, e.event_id, "DELIVERED", |v| {
        v["status"] == "DELIVERED"
    })
    .await;
    assert_eq!(v["attempts"], 1);
    assert_eq!(platform.requests().len(), 4);
}

// Invariant: with two relays on one database every event is delivered, none is lost,
// none is sent twice (never two attempts of one event at the same time), and each
// order's events still arrive in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_relays_share_the_work_without_sending_an_event_twice() {
    let platform = FakePlatform::start().await;
    platform.set_delay(Duration::from_millis(20));
    let a = spawn_app_with_platform(&platform.url, |_| {}).await;
    let _b = spawn_relaying_on(a.db.clone(), &platform.url, |_| {}).await;
    let store = store(&a);
    let mut expected = Vec::new();
    for order in 1..=30 {
        expected.push(enqueue(&store, order, EventType::OrderPaid).await);
        expected.push(enqueue(&store, order, EventType::OrderCancelled).await);
    }

    let acked = platform
        .wait_for(WITHIN, "all 60 events", |acked| acked.len() >= 60)
        .await;
    assert_eq!(
        platform.overlaps(),
        0,
        "an event was sent twice at the same time"
    );
    let mut times: HashMap<String, usize> = HashMap::new();
    for body in &acked {
        *times.entry(event_id_of(body)).or_default() += 1;
    }
    let expected_ids: HashSet<String> = expected.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(times.keys().cloned().collect::<HashSet<_>>(), expected_ids);
    assert!(times.values().all(|n| *n == 1), "duplicates: {times:?}");
    assert_eq!(platform.requests().len(), 60);
    for order in 1..=30 {
        let kinds: Vec<&str> = acked
            .iter()
            .filter(|b| b["order"]["id"] == order)
            .map(|b| b["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            vec!["order.paid", "order.cancelled"],
            "order {order}"
        );
    }
}

// Invariant: stopping the server does not lose a claim: the delivery under way is
// finished and recorded, and nothing new is started.
#[tokio::test]
async fn shutdown_finishes_the_delivery_under_way_and_starts_no_other() {
    let platform = FakePlatform::start().await;
    platform.set_delay(Duration::from_millis(500));
    let app = spawn_app_with_platform(&platform.url, |_| {}).await;
    let store = store(&app);
    let first = enqueue(&store, 1, EventType::OrderPaid).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while platform.requests().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    app.stop().await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let row = store.get(first.event_id).await.unwrap().unwrap().entry;
        if row.status == OutboxStatus::Delivered {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not recorded: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let second = enqueue(&store, 2, EventType::OrderPaid).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let row = store.get(second.event_id).await.unwrap().unwrap().entry;
    assert_eq!((row.status, row.attempts), (OutboxStatus::Pending, 0));
    assert_eq!(platform.requests().len(), 1);
}

// Without a platform URL the relay is off: events wait, untouched.
#[tokio::test]
async fn without_a_platform_url_events_wait_in_the_outbox() {
    let app = spawn_app_with(|s| s.jobs.enabled = true).await;
    let e = enqueue(&store(&app), 1, EventType::OrderPaid).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let v = view(&app, e.event_id).await;
    assert_eq!(
        (v["status"].as_str(), v["attempts"].as_i64()),
        (Some("PENDING"), Some(0))
    );
}
