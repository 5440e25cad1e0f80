//! Delivery to the standard of Stripe and Svix (issue 12), through the running app and a
//! real HTTP platform: signed deliveries, the attempt log, an event with its payload,
//! bulk retry, what holds an event back, and a relay that survives a stalled database.

use crate::helpers::{
    spawn_app, spawn_on, spawn_relaying_on, Answer, FakePlatform, PlatformRequest, TestApp,
};
use chrono::{DateTime, Utc};
use order::events::{EventType, OutboundEvent};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::testing_proxy::{postgres_addr, TcpProxy};
use postgres_adapter::PgOutboxStore;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Generous: the machine may be busy; tests finish as soon as the condition holds.
const WITHIN: Duration = Duration::from_secs(30);

const SECRET_A: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const SECRET_B: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn store(app: &TestApp) -> PgOutboxStore {
    PgOutboxStore::new(app.pool())
}

async fn enqueue(store: &PgOutboxStore, order_id: i64, event_type: EventType) -> OutboundEvent {
    let e = OutboundEvent::new(
        Uuid::new_v4(),
        event_type,
        order_id,
        kernel::Clock::now(&kernel::SystemClock),
        json!({"id": order_id, "status": "PAID"}),
    );
    store.enqueue(&e).await.unwrap();
    e
}

/// An `order.paid` then an `order.cancelled` event for each order, in that order.
async fn paid_then_cancelled(store: &PgOutboxStore, orders: [i64; 2]) -> Vec<OutboundEvent> {
    let mut events = Vec::new();
    for order in orders {
        events.push(enqueue(store, order, EventType::OrderPaid).await);
        events.push(enqueue(store, order, EventType::OrderCancelled).await);
    }
    events
}

/// Polls `GET path` as admin until `done` holds for the body.
async fn wait_until(app: &TestApp, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let r = app.get(path, Some(&app.admin_token())).await;
        if r.status == StatusCode::OK && done(&r.body) {
            return r.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {} {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn all_of(app: &TestApp, status: &str) -> Vec<Value> {
    app.get_all(
        &format!("/api/v1/admin/outbox?status={status}"),
        Some(&app.admin_token()),
        100,
    )
    .await
}

/// How many times the platform acknowledged each event id.
fn acknowledged_times(requests: &[PlatformRequest]) -> HashMap<String, usize> {
    let mut times = HashMap::new();
    for r in requests.iter().filter(|r| r.acknowledged) {
        *times
            .entry(r.body["event_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    times
}

// Invariant: every delivery of the running app is signed with each configured secret, so
// a platform holding either (rotation) verifies it with the reference Standard Webhooks
// library, over the exact body it received.
#[tokio::test]
async fn deliveries_are_signed_with_every_configured_secret() {
    let platform = FakePlatform::start().await;
    let db = Arc::new(TestDatabase::create().await);
    let app = spawn_relaying_on(db, &platform.url, |s| {
        s.data_platform.signing_secrets = format!("{SECRET_A},{SECRET_B}");
    })
    .await;
    let e = enqueue(&store(&app), 3, EventType::OrderPaid).await;
    platform
        .wait_for(WITHIN, "the delivery", |acked| acked.len() == 1)
        .await;
    let got = &platform.requests()[0];
    for secret in [SECRET_A, SECRET_B] {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&got.raw_body, &got.headers)
            .unwrap_or_else(|err| panic!("{secret}: {err}"));
    }
    assert!(
        standardwebhooks::Webhook::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .unwrap()
            .verify(&got.raw_body, &got.headers)
            .is_err()
    );
    assert_eq!(got.headers["webhook-id"], e.event_id.to_string());
    assert_eq!(got.headers["idempotency-key"], e.event_id.to_string());
    // the payload the admin sees is what was sent
    let detail = app
        .get(
            &format!("/api/v1/admin/outbox/{}", e.event_id),
            Some(&app.admin_token()),
        )
        .await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    let sent: Value = serde_json::from_slice(&got.raw_body).unwrap();
    assert_eq!(detail.body["payload"], sent);
}

// Invariant: each attempt is logged with its outcome: a 500, a hang past the timeout
// (no status), then the 200 that delivered it; the event shows it was delivered, with no
// future next_attempt_at.
#[tokio::test]
async fn the_attempt_log_shows_a_500_a_timeout_then_the_delivery() {
    let platform = FakePlatform::start().await;
    platform.answer_next(&[Answer::Status(500), Answer::Hang(Duration::from_secs(3))]);
    let db = Arc::new(TestDatabase::create().await);
    let app = spawn_relaying_on(db, &platform.url, |s| s.data_platform.timeout_ms = 400).await;
    let e = enqueue(&store(&app), 8, EventType::OrderPaid).await;
    let path = format!("/api/v1/admin/outbox/{}", e.event_id);
    let detail = wait_until(&app, &path, "DELIVERED", |v| v["status"] == "DELIVERED").await;

    let attempts = wait_until(&app, &format!("{path}/attempts"), "3 attempts", |v| {
        v["items"].as_array().is_some_and(|a| a.len() == 3)
    })
    .await;
    assert_eq!(attempts["next_cursor"], Value::Null);
    let a = attempts["items"].as_array().unwrap();
    assert_eq!(
        a.iter()
            .map(|x| x["attempt"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(a[0]["status_code"], 500);
    assert!(a[0]["error"].as_str().unwrap().contains("500"), "{}", a[0]);
    assert_eq!(a[1]["status_code"], Value::Null, "no answer: {}", a[1]);
    assert!(
        a[1]["error"].as_str().unwrap().contains("400 ms"),
        "{}",
        a[1]
    );
    assert!(a[1]["duration_ms"].as_u64().unwrap() >= 400, "{}", a[1]);
    assert_eq!(a[2]["status_code"], 200);
    assert_eq!(a[2]["error"], Value::Null);
    let started: Vec<DateTime<Utc>> = a
        .iter()
        .map(|x| x["started_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        started.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {started:?}"
    );

    assert_eq!(detail["attempts"], 3);
    assert_eq!(detail["payload"], e.body);
    assert_eq!(detail["blocked_by"], Value::Null);
    let next: DateTime<Utc> = detail["next_attempt_at"].as_str().unwrap().parse().unwrap();
    let delivered: DateTime<Utc> = detail["delivered_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(next, delivered, "a DELIVERED event has no future attempt");
    assert!(next <= Utc::now());
}

// Invariant: one call revives every matching DEAD event; each is then delivered exactly
// once, and an order's later event, held back behind its DEAD one (and saying so in the
// listing), arrives after it.
#[tokio::test]
async fn a_bulk_retry_of_50_dead_events_delivers_each_once_in_order() {
    let platform = FakePlatform::start().await;
    platform.fail_next(usize::MAX);
    let db = Arc::new(TestDatabase::create().await);
    let app = spawn_relaying_on(db, &platform.url, |s| s.data_platform.max_attempts = 1).await;
    let store = store(&app);
    let mut paid = Vec::new();
    for order in 1..=50 {
        paid.push(enqueue(&store, order, EventType::OrderPaid).await);
    }
    wait_until(
        &app,
        "/api/v1/admin/outbox?status=DEAD&limit=100",
        "50 DEAD",
        |v| v["items"].as_array().is_some_and(|a| a.len() == 50),
    )
    .await;
    let mut later = Vec::new();
    for order in 1..=10 {
        later.push(enqueue(&store, order, EventType::OrderCancelled).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pending = all_of(&app, "PENDING").await;
    assert_eq!(pending.len(), 10, "held back: never attempted");
    for (view, e) in pending.iter().zip(&later) {
        let order = e.order_id as usize;
        assert_eq!(view["event_id"], e.event_id.to_string());
        assert_eq!(view["attempts"], 0);
        assert_eq!(
            view["blocked_by"],
            paid[order - 1].event_id.to_string(),
            "{view}"
        );
    }

    platform.fail_next(0);
    let admin = app.admin_token();
    let r = app
        .post(
            "/api/v1/admin/outbox/retries",
            Some(&admin),
            &json!({"status": "DEAD", "event_type": "order.paid"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!({"retried": 50}));

    platform
        .wait_for(WITHIN, "all 60 events", |acked| acked.len() >= 60)
        .await;
    wait_until(
        &app,
        "/api/v1/admin/outbox?status=DELIVERED&limit=100",
        "60 DELIVERED",
        |v| v["items"].as_array().is_some_and(|a| a.len() == 60),
    )
    .await;
    let times = acknowledged_times(&platform.requests());
    assert_eq!(times.len(), 60);
    assert!(
        times.values().all(|n| *n == 1),
        "delivered twice: {times:?}"
    );
    let acked = platform.acknowledged();
    for e in &later {
        let position = |id: Uuid| {
            acked
                .iter()
                .position(|b| b["event_id"] == id.to_string())
                .unwrap()
        };
        let first = &paid[e.order_id as usize - 1];
        assert!(
            position(first.event_id) < position(e.event_id),
            "order {}: cancelled before paid",
            e.order_id
        );
    }
    // nothing is DEAD any more
    let r = app
        .post(
            "/api/v1/admin/outbox/retries",
            Some(&admin),
            &json!({"status": "DEAD"}),
        )
        .await;
    assert_eq!(r.body, json!({"retried": 0}));
}

// Bad filters are 422 naming the field, and change nothing; unknown events are 404.
#[tokio::test]
async fn bad_retry_filters_and_unknown_events_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    let retries = "/api/v1/admin/outbox/retries";
    for (body, field) in [
        (json!({}), "status"),
        (json!({"status": "PENDING"}), "status"),
        (
            json!({"status": "DEAD", "event_type": "order.shipped"}),
            "event_type",
        ),
        (
            json!({"status": "DEAD", "created_from": "yesterday"}),
            "created_from",
        ),
        (
            json!({"status": "DEAD", "created_from": "2026-11-22T00:00:00Z", "created_to": "2026-11-21T00:00:00Z"}),
            "created_to",
        ),
    ] {
        let r = app.post(retries, Some(&admin), &body).await;
        r.assert_problem(422, "VALIDATION_ERROR");
        assert!(
            r.body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body}: {}",
            r.body
        );
    }
    app.post(
        retries,
        Some(&admin),
        &json!({"status": "DEAD", "statuss": 1}),
    )
    .await
    .assert_problem(422, "VALIDATION_ERROR");
    app.post(retries, None, &json!({"status": "DEAD"}))
        .await
        .assert_problem(401, "UNAUTHORIZED");
    app.post(
        retries,
        Some(&app.user_token(1)),
        &json!({"status": "DEAD"}),
    )
    .await
    .assert_problem(403, "FORBIDDEN");

    let unknown = Uuid::new_v4();
    for path in [
        format!("/api/v1/admin/outbox/{unknown}"),
        format!("/api/v1/admin/outbox/{unknown}/attempts"),
    ] {
        app.get(&path, Some(&admin))
            .await
            .assert_problem(404, "EVENT_NOT_FOUND");
        app.get(&path, Some(&app.user_token(1)))
            .await
            .assert_problem(403, "FORBIDDEN");
    }
    app.get("/api/v1/admin/outbox/not-a-uuid", Some(&admin))
        .await
        .assert_problem(400, "VALIDATION_ERROR");
    app.get("/api/v1/admin/outbox/not-a-uuid/attempts", Some(&admin))
        .await
        .assert_problem(400, "VALIDATION_ERROR");
}

/// The app relaying to `platform` with its database behind `proxy` (the test's own
/// connections go straight to the database).
async fn relaying_behind(
    proxy: &TcpProxy,
    db: Arc<TestDatabase>,
    platform: &FakePlatform,
) -> TestApp {
    let url = proxy.postgres_url(&db.url);
    let platform_url = platform.url.clone();
    spawn_on(db, move |s| {
        s.jobs.enabled = true;
        s.database.url = url;
        s.data_platform.url = platform_url;
        s.data_platform.timeout_ms = 2_000;
        s.data_platform.backoff_base_ms = 20;
        s.data_platform.backoff_max_ms = 200;
    })
    .await
}

async fn proxy_to(db: &TestDatabase) -> TcpProxy {
    TcpProxy::start(postgres_addr(&db.url).expect("a host:port database URL"))
        .await
        .expect("starting the proxy")
}

/// Waits for `events` to be acknowledged, and says how long it took.
async fn delivered_within(
    platform: &FakePlatform,
    events: &[OutboundEvent],
    bound: Duration,
) -> Duration {
    let started = tokio::time::Instant::now();
    let ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    platform
        .wait_for(
            bound,
            "the events written while the database was away",
            |acked| {
                ids.iter()
                    .all(|id| acked.iter().any(|b| b["event_id"] == id.as_str()))
            },
        )
        .await;
    started.elapsed()
}

// Invariant: a relay whose database stalled (longer than its timeouts), or dropped its
// connections, resumes delivering by itself once the database answers, within a bound,
// with no restart, and keeps each order's events in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_relay_recovers_from_a_stalled_then_dropped_database_without_a_restart() {
    let platform = FakePlatform::start().await;
    let db = Arc::new(TestDatabase::create().await);
    let proxy = proxy_to(&db).await;
    let app = relaying_behind(&proxy, db.clone(), &platform).await;
    let direct = PgOutboxStore::new(db.pool(2));
    let first = enqueue(&direct, 1, EventType::OrderPaid).await;
    delivered_within(&platform, std::slice::from_ref(&first), WITHIN).await;

    // 1. the database stalls past the relay's 5 s database timeout; events are written
    //    meanwhile (by another path); then it answers again
    proxy.stall();
    let during = paid_then_cancelled(&direct, [2, 3]).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        platform.acknowledged().len(),
        1,
        "nothing passes a stalled database"
    );
    proxy.resume();
    let took = delivered_within(&platform, &during, Duration::from_secs(15)).await;
    println!("delivery resumed {took:?} after the database answered again");

    // 2. the database drops every connection (a restart) while stalled
    proxy.stall();
    let after = paid_then_cancelled(&direct, [4, 5]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let accepted = proxy.accepted();
    proxy.break_connections();
    proxy.resume();
    let took = delivered_within(&platform, &after, Duration::from_secs(15)).await;
    println!("delivery resumed {took:?} after the connections were dropped");
    assert!(proxy.accepted() > accepted, "the relay reconnected");

    // each order's events in order, each once
    let acked = platform.acknowledged();
    for order in 2..=5 {
        let kinds: Vec<&str> = acked
            .iter()
            .filter(|b| b["order"]["id"] == order)
            .map(|b| b["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["order.paid", "order.cancelled"], "order {order}");
    }
    // the same app still serves and relays
    let last = enqueue(&direct, 6, EventType::OrderPaid).await;
    delivered_within(&platform, &[last], Duration::from_secs(10)).await;
    drop(app);
}

// Invariant: connections that went silent for good (no answer, no reset: a failover or
// a forgetful NAT) cost the relay its database timeout, not a restart: it closes them,
// reconnects, and delivers what was written meanwhile within a bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_relay_recovers_from_connections_that_went_silent() {
    let platform = FakePlatform::start().await;
    let db = Arc::new(TestDatabase::create().await);
    let proxy = proxy_to(&db).await;
    let app = relaying_behind(&proxy, db.clone(), &platform).await;
    let direct = PgOutboxStore::new(db.pool(2));
    let first = enqueue(&direct, 1, EventType::OrderPaid).await;
    delivered_within(&platform, std::slice::from_ref(&first), WITHIN).await;

    proxy.black_hole_connections();
    let meanwhile = paid_then_cancelled(&direct, [2, 3]).await;
    // the relay's database timeout is 5 s; the listener pings a silent link after 10 s
    let took = delivered_within(&platform, &meanwhile, Duration::from_secs(15)).await;
    println!("delivery resumed {took:?} after the connections went silent");
    let acked = platform.acknowledged();
    for order in [2, 3] {
        let kinds: Vec<&str> = acked
            .iter()
            .filter(|b| b["order"]["id"] == order)
            .map(|b| b["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["order.paid", "order.cancelled"], "order {order}");
    }
    drop(app);
}
