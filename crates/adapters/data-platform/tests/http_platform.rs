//! The data-platform client against a real HTTP server started in the test.

use data_platform::signing::SigningSecret;
use data_platform::{HttpDataPlatform, HttpDataPlatformSettings};
use outbox::{DeliveryError, Destination, Event};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// What the platform received: path, Idempotency-Key, Content-Type, every header, raw body.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    key: Option<String>,
    content_type: Option<String>,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// A platform whose answer depends on the first path segment:
/// `/ok` 200, `/created` 201, `/accepted` 202, `/fail` 503, `/bad` 400, `/slow` 200 after
/// 3 s; any other path 404.
async fn fake_platform() -> MockServer {
    let server = MockServer::start().await;
    for (mode, answer) in [
        ("ok", ResponseTemplate::new(200)),
        (
            "created",
            ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": 1})),
        ),
        ("accepted", ResponseTemplate::new(202)),
        ("fail", ResponseTemplate::new(503)),
        ("bad", ResponseTemplate::new(400)),
        (
            "slow",
            ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
        ),
    ] {
        Mock::given(method("POST"))
            .and(path(format!("/{mode}/events")))
            .respond_with(answer)
            .mount(&server)
            .await;
    }
    server
}

/// Every request the platform received, in arrival order.
async fn received(server: &MockServer) -> Vec<Received> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .into_iter()
        .map(|r| {
            let header = |name: &str| {
                r.headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from)
            };
            Received {
                path: r.url.path().to_string(),
                key: header("Idempotency-Key"),
                content_type: header("Content-Type"),
                headers: r.headers.clone(),
                body: r.body.clone(),
            }
        })
        .collect()
}

fn client(url: &str, timeout: Duration) -> HttpDataPlatform {
    signed_client(url, timeout, &[])
}

fn signed_client(url: &str, timeout: Duration, secrets: &[&str]) -> HttpDataPlatform {
    HttpDataPlatform::new(&HttpDataPlatformSettings {
        url: url.to_string(),
        timeout,
        secrets: secrets
            .iter()
            .map(|s| SigningSecret::parse(s).unwrap())
            .collect(),
    })
    .unwrap()
}

fn event() -> Event {
    let event_id = uuid::Uuid::new_v4();
    let occurred_at = chrono::DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    Event {
        event_id,
        event_type: "order.paid".into(),
        aggregate_id: 7,
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
#[tokio::test]
async fn an_event_is_posted_with_its_id_as_idempotency_key_and_its_body_exactly() {
    let platform = fake_platform().await;
    let url = platform.uri();
    let e = event();
    client(&format!("{url}/ok/"), Duration::from_secs(2))
        .deliver(&e)
        .await
        .unwrap();
    let seen = received(&platform).await;
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

#[tokio::test]
async fn any_2xx_acknowledges() {
    let platform = fake_platform().await;
    let url = platform.uri();
    for mode in ["ok", "created", "accepted"] {
        client(&format!("{url}/{mode}"), Duration::from_secs(2))
            .deliver(&event())
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
    }
    assert_eq!(received(&platform).await.len(), 3);
}

// Invariant: only a 2xx counts as delivered; every other status is a rejection to retry.
#[tokio::test]
async fn a_non_2xx_answer_is_rejected_with_its_status() {
    let platform = fake_platform().await;
    let url = platform.uri();
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
#[tokio::test]
async fn a_slow_platform_is_unreachable_within_the_timeout() {
    let platform = fake_platform().await;
    let url = platform.uri();
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
    assert_eq!(received(&platform).await.len(), 1);
}

#[tokio::test]
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

// ---- Standard Webhooks signatures, checked with the reference Rust library ----------

const SECRET_A: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const SECRET_B: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WRONG: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// One delivery signed with both secrets, as the platform received it.
async fn signed_delivery() -> (Event, Received) {
    let platform = fake_platform().await;
    let url = platform.uri();
    let e = event();
    let ack = signed_client(
        &format!("{url}/ok"),
        Duration::from_secs(2),
        &[SECRET_A, SECRET_B],
    )
    .deliver(&e)
    .await
    .unwrap();
    assert_eq!(ack.status, 200);
    let got = received(&platform).await.remove(0);
    (e, got)
}

fn verifier(secret: &str) -> standardwebhooks::Webhook {
    standardwebhooks::Webhook::new(secret).unwrap()
}

// Invariant: a platform holding either of two rotated secrets verifies a delivery with
// an independent Standard Webhooks implementation; the headers name the event and now.
#[tokio::test]
async fn a_delivery_verifies_with_each_of_two_secrets() {
    let (e, got) = signed_delivery().await;
    verifier(SECRET_A).verify(&got.body, &got.headers).unwrap();
    verifier(SECRET_B).verify(&got.body, &got.headers).unwrap();
    let header = |n: &str| got.headers.get(n).unwrap().to_str().unwrap().to_string();
    assert_eq!(header("webhook-id"), e.event_id.to_string());
    assert_eq!(header("idempotency-key"), e.event_id.to_string());
    assert_eq!(header("webhook-signature").split(' ').count(), 2);
    let sent: i64 = header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - sent).abs() <= 5, "{sent}");
    // the body sent is the stored body, byte for byte what was signed
    assert_eq!(got.body, serde_json::to_vec(&e.body).unwrap());
}

// Invariant: a signature proves the secret, the body and the time: a wrong secret, a
// changed body or an old timestamp fail verification.
#[tokio::test]
async fn a_wrong_secret_a_changed_body_or_an_old_timestamp_fails() {
    let (_, got) = signed_delivery().await;
    assert!(matches!(
        verifier(WRONG).verify(&got.body, &got.headers),
        Err(standardwebhooks::WebhookError::InvalidSignature)
    ));
    let mut changed = got.body.clone();
    let at = changed.iter().position(|b| *b == b'7').unwrap();
    changed[at] = b'8';
    assert!(matches!(
        verifier(SECRET_A).verify(&changed, &got.headers),
        Err(standardwebhooks::WebhookError::InvalidSignature)
    ));
    let mut replayed = got.headers.clone();
    let old = chrono::Utc::now().timestamp() - 10 * 60;
    replayed.insert("webhook-timestamp", old.to_string().parse().unwrap());
    assert!(matches!(
        verifier(SECRET_A).verify(&got.body, &replayed),
        Err(standardwebhooks::WebhookError::TimestampTooOldError)
    ));
    // and our own verifier, used by `commerce-api sink`, agrees on all of it
    let delivery = |body: &'_ [u8], headers: &'_ http::HeaderMap| {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        (
            h("webhook-id"),
            h("webhook-timestamp"),
            h("webhook-signature"),
            body.to_vec(),
        )
    };
    let now = chrono::Utc::now().timestamp();
    let check =
        |secret: &str,
         (id, ts, sig, body): (Option<String>, Option<String>, Option<String>, Vec<u8>)| {
            data_platform::signing::verify(
                &[SigningSecret::parse(secret).unwrap()],
                data_platform::signing::Delivery {
                    id: id.as_deref(),
                    timestamp: ts.as_deref(),
                    signature: sig.as_deref(),
                    body: &body,
                },
                now,
                data_platform::signing::TOLERANCE,
            )
        };
    assert!(check(SECRET_B, delivery(&got.body, &got.headers)).is_ok());
    assert!(check(WRONG, delivery(&got.body, &got.headers)).is_err());
    assert!(check(SECRET_A, delivery(&changed, &got.headers)).is_err());
    assert!(check(SECRET_A, delivery(&got.body, &replayed)).is_err());
}

// Without secrets a delivery carries no signature (development only; production refuses it).
#[tokio::test]
async fn without_secrets_nothing_is_signed() {
    let platform = fake_platform().await;
    let url = platform.uri();
    client(&format!("{url}/ok"), Duration::from_secs(2))
        .deliver(&event())
        .await
        .unwrap();
    let got = received(&platform).await.remove(0);
    assert!(got.headers.get("webhook-signature").is_none());
    assert!(got.headers.get("webhook-id").is_some());
}
