//! The relay's outcomes on `/metrics` (issue 7): every failed attempt and every
//! delivery is counted in `commerce_events_total`, next to the outbox backlog gauge.

use crate::helpers::{spawn_app_with_platform, FakePlatform, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

/// Generous: the machine may be busy; the test finishes as soon as the condition holds.
const WITHIN: Duration = Duration::from_secs(30);

/// The value of the sample `series` (name and labels exactly as rendered), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

pub const DELIVERED: &str = r#"commerce_events_total{kind="outbox_delivered"}"#;
pub const FAILED: &str = r#"commerce_events_total{kind="outbox_delivery_failed"}"#;

async fn scrape(app: &TestApp) -> String {
    let r = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scraping /metrics");
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.expect("reading /metrics")
}

// A platform that refuses twice then accepts: two failed attempts and one delivery are
// counted, and the backlog gauge shows the event delivered.
#[tokio::test]
async fn relay_failures_and_deliveries_are_counted_on_metrics() {
    let platform = FakePlatform::start().await;
    platform.fail_next(2);
    let app = spawn_app_with_platform(&platform.url, |_| {}).await;
    let before = scrape(&app).await;
    assert_eq!(sample(&before, DELIVERED), None, "{before}");
    assert_eq!(sample(&before, FAILED), None, "{before}");

    // a real paid order writes the event
    let product = app.product_id("Metered", 1_000, 5).await;
    app.charge(7, 1_000).await;
    let r = app
        .post(
            "/api/v1/orders",
            Some(&app.user_token(7)),
            &json!({"user_id": 7, "items": [{"product_id": product, "quantity": 1}], "pay_now": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let deadline = tokio::time::Instant::now() + WITHIN;
    let text = loop {
        let text = scrape(&app).await;
        // the counters and the backlog gauge are read at slightly different moments of
        // one scrape: wait until both show the delivery
        let gauge = sample(&text, r#"commerce_outbox_events{status="DELIVERED"}"#);
        if sample(&text, DELIVERED).is_some() && gauge == Some(1.0) {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery counted: {text}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(sample(&text, DELIVERED), Some(1.0), "{text}");
    assert_eq!(sample(&text, FAILED), Some(2.0), "{text}");
    assert_eq!(
        sample(&text, r#"commerce_outbox_events{status="DELIVERED"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"commerce_outbox_events{status="PENDING"}"#),
        Some(0.0),
        "{text}"
    );
    let requests = platform.requests();
    let answers: Vec<bool> = requests.iter().map(|r| r.acknowledged).collect();
    assert_eq!(answers, vec![false, false, true], "{requests:?}");
}
