//! `commerce-api sink`: a stand-in data platform for local runs. It accepts
//! `POST /events`, checks each delivery's Standard Webhooks signature when it was given
//! secrets (`--secret`, any of them; and the timestamp within 5 minutes), answers 401 to
//! one that fails, and prints a line and the body of each event it accepts, so `make run`
//! shows the outbox relay at work without the real platform.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;
use data_platform::signing::{self, Delivery, SigningSecret};
use serde_json::Value;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// One line for an event: type, order id, event id, and the idempotency key when it
/// differs from the event id (it should not).
pub fn describe(key: Option<&str>, body: &Value) -> String {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let event_id = text(&body["event_id"]);
    let mut line = format!(
        "{} order={} event={}",
        text(&body["event_type"]),
        body["order"]["id"],
        event_id
    );
    match key {
        Some(k) if k == event_id => {}
        Some(k) => line.push_str(&format!(" idempotency-key={k}")),
        None => line.push_str(" (no idempotency key)"),
    }
    line
}

/// What the sink checks.
#[derive(Debug, Clone, Default)]
pub struct SinkSettings {
    /// A delivery must be signed with one of these; none: nothing is checked.
    pub secrets: Vec<SigningSecret>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The sink's answer to one delivery, and what it prints.
pub fn receive_one(settings: &SinkSettings, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let mut out = std::io::stdout().lock();
    if !settings.secrets.is_empty() {
        let delivery = Delivery {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body,
        };
        if let Err(e) = signing::verify(&settings.secrets, delivery, unix_now(), signing::TOLERANCE)
        {
            let _ = writeln!(out, "sink: REFUSED a delivery (401): {e}");
            let _ = out.flush();
            return HttpResponse::Unauthorized().body(format!("signature check failed: {e}"));
        }
    }
    let Ok(event) = serde_json::from_slice::<Value>(body) else {
        return HttpResponse::BadRequest().body("expected a JSON event");
    };
    let verified = if settings.secrets.is_empty() {
        "unsigned check"
    } else {
        "signature ok"
    };
    let _ = writeln!(
        out,
        "sink: {} ({verified})\n      {}",
        describe(header("Idempotency-Key"), &event),
        String::from_utf8_lossy(body)
    );
    let _ = out.flush();
    HttpResponse::Ok().finish()
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    settings: web::Data<SinkSettings>,
) -> HttpResponse {
    receive_one(&settings, &req, &body)
}

/// Serves on 127.0.0.1:`port` until Ctrl-C / SIGTERM.
pub async fn run(port: u16, settings: SinkSettings) -> anyhow::Result<()> {
    let checking = settings.secrets.len();
    let data = web::Data::new(settings);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(1024 * 1024))
            .route("/events", web::post().to(receive))
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .with_context(|| format!("binding 127.0.0.1:{port} for the sink (is the port taken?)"))?;
    println!("sink: accepting data-platform events on http://127.0.0.1:{port}/events");
    if checking > 0 {
        println!("sink: checking Standard Webhooks signatures with {checking} secret(s); a delivery that fails gets 401");
    } else {
        println!("sink: no --secret given: signatures are not checked");
    }
    server.run().await.context("the sink failed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn an_event_is_described_by_type_order_and_id() {
        let body = serde_json::json!({
            "event_id": "6f1c...", "event_type": "order.paid", "order": {"id": 42}
        });
        assert_eq!(
            describe(Some("6f1c..."), &body),
            "order.paid order=42 event=6f1c..."
        );
        assert!(describe(None, &body).ends_with("(no idempotency key)"));
    }

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const OTHER: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn signed(secret: &str, timestamp: i64, body: &str) -> HttpRequest {
        let sig = SigningSecret::parse(secret)
            .unwrap()
            .sign("evt-1", timestamp, body.as_bytes());
        TestRequest::post()
            .insert_header(("webhook-id", "evt-1"))
            .insert_header(("webhook-timestamp", timestamp.to_string()))
            .insert_header(("webhook-signature", sig))
            .to_http_request()
    }

    // Invariant: with secrets the sink accepts only a delivery signed with one of them,
    // over this exact body, within 5 minutes.
    #[test]
    fn the_sink_accepts_only_verified_deliveries() {
        let settings = SinkSettings {
            secrets: vec![
                SigningSecret::parse(OTHER).unwrap(),
                SigningSecret::parse(SECRET).unwrap(),
            ],
        };
        let body = r#"{"event_id":"evt-1","event_type":"order.paid","order":{"id":1}}"#;
        let now = unix_now();
        assert_eq!(
            receive_one(&settings, &signed(SECRET, now, body), body.as_bytes()).status(),
            200
        );
        assert_eq!(
            receive_one(&settings, &signed(OTHER, now, body), body.as_bytes()).status(),
            200
        );
        let stranger = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(
            receive_one(&settings, &signed(stranger, now, body), body.as_bytes()).status(),
            401
        );
        let changed = body.replace("\"id\":1", "\"id\":2");
        assert_eq!(
            receive_one(&settings, &signed(SECRET, now, body), changed.as_bytes()).status(),
            401
        );
        assert_eq!(
            receive_one(&settings, &signed(SECRET, now - 301, body), body.as_bytes()).status(),
            401
        );
        let unsigned = TestRequest::post().to_http_request();
        assert_eq!(
            receive_one(&settings, &unsigned, body.as_bytes()).status(),
            401
        );
        // without secrets nothing is checked
        assert_eq!(
            receive_one(&SinkSettings::default(), &unsigned, body.as_bytes()).status(),
            200
        );
    }
}
