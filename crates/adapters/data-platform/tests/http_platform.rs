//! The data-platform client against a real HTTP server started in the test.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use data_platform::{HttpDataPlatform, HttpDataPlatformSettings};
use order::events::{DataPlatform, DeliveryError, EventType, OutboundEvent};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server received: path, Idempotency-Key, Content-Type, raw body.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    key: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

type Seen = Arc<Mutex<Vec<Received>>>;

/// A platform whose answer depends on the first path segment:
/// `/ok` 200, `/created` 201, `/accepted` 202, `/fail` 503, `/bad` 400, `/slow` 200 after 3 s.
async fn fake_platform() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let data = web::Data::new(seen.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route(
            "/{mode}/events",
            web::post().to(
                |req: HttpRequest, body: web::Bytes, seen: web::Data<Seen>| async move {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(String::from)
                    };
                    seen.lock().unwrap().push(Received {
                        path: req.path().to_string(),
                        key: header("Idempotency-Key"),
                        content_type: header("Content-Type"),
                        body: body.to_vec(),
                    });
                    match req.match_info().get("mode").unwrap_or_default() {
                        "ok" => HttpResponse::Ok().finish(),
                        "created" => HttpResponse::Created().json(serde_json::json!({"id": 1})),
                        "accepted" => HttpResponse::Accepted().finish(),
                        "bad" => HttpResponse::BadRequest().finish(),
                        "slow" => {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                            HttpResponse::Ok().finish()
                        }
                        _ => HttpResponse::ServiceUnavailable().finish(),
                    }
                },
            ),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{addr}"), seen)
}

fn client(url: &str, timeout: Duration) -> HttpDataPlatform {
    HttpDataPlatform::new(&HttpDataPlatformSettings {
        url: url.to_string(),
        timeout,
    })
    .unwrap()
}

fn event() -> OutboundEvent {
    let event_id = uuid::Uuid::new_v4();
    let occurred_at = chrono::DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    OutboundEvent {
        event_id,
        event_type: EventType::OrderPaid,
        order_id: 7,
        occurred_at,
        body: serde_json::json!({
            "event_id": event_id,
            "event_type": "order.paid",
            "occurred_at": "2026-11-21T09:00:00Z",
            "order": {"id": 7, "total": 12_000, "items": [{"product_id": 1, "quantity": 2}],
                      "name": "한글 ✓ \"quoted\""}
        }),
    }
}

// Invariant: the platform can drop duplicates (key = event id) and gets the stored body unchanged.
#[actix_web::test]
async fn an_event_is_posted_with_its_id_as_idempotency_key_and_its_body_exactly() {
    let (url, seen) = fake_platform().await;
    let e = event();
    client(&format!("{url}/ok/"), Duration::from_secs(2))
        .deliver(&e)
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/ok/events");
    assert_eq!(
        seen[0].key.as_deref(),
        Some(e.event_id.to_string().as_str())
    );
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body, e.body);
    assert_eq!(seen[0].body, serde_json::to_vec(&e.body).unwrap());
}

#[actix_web::test]
async fn any_2xx_acknowledges() {
    let (url, seen) = fake_platform().await;
    for mode in ["ok", "created", "accepted"] {
        client(&format!("{url}/{mode}"), Duration::from_secs(2))
            .deliver(&event())
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
    }
    assert_eq!(seen.lock().unwrap().len(), 3);
}

// Invariant: only a 2xx counts as delivered; every other status is a rejection to retry.
#[actix_web::test]
async fn a_non_2xx_answer_is_rejected_with_its_status() {
    let (url, _) = fake_platform().await;
    for (mode, expected) in [("fail", 503), ("bad", 400)] {
        let err = client(&format!("{url}/{mode}"), Duration::from_secs(2))
            .deliver(&event())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeliveryError::Rejected { status } if status == expected),
            "{mode}: {err}"
        );
    }
    // a path the platform does not know is a 404, also a rejection
    let err = client(&format!("{url}/nowhere/deeper"), Duration::from_secs(2))
        .deliver(&event())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Rejected { status: 404 }),
        "{err}"
    );
}

// Invariant: one attempt never outlives its timeout; a slow platform is unreachable, not delivered.
#[actix_web::test]
async fn a_slow_platform_is_unreachable_within_the_timeout() {
    let (url, seen) = fake_platform().await;
    let started = Instant::now();
    let err = client(&format!("{url}/slow"), Duration::from_millis(300))
        .deliver(&event())
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, DeliveryError::Unreachable(m) if m.contains("300 ms")),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(300),
        "gave up early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(2_500),
        "waited for the answer: {took:?}"
    );
    // the request did arrive: the platform may still process it (hence the idempotency key)
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[actix_web::test]
async fn a_refused_connection_is_unreachable() {
    // a port that was just free: nothing listens there
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = client(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2))
        .deliver(&event())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Unreachable(_)), "{err}");
}
