//! `commerce-api sink`: a stand-in data platform for local runs. It accepts
//! `POST /events`, prints one line per event to stdout and answers 200, so `make run`
//! shows the outbox relay at work without the real platform.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context;
use serde_json::Value;
use std::io::Write;

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

async fn receive(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().body("expected a JSON event");
    };
    let key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "sink: {}", describe(key, &event));
    let _ = out.flush();
    HttpResponse::Ok().finish()
}

/// Serves on 127.0.0.1:`port` until Ctrl-C / SIGTERM.
pub async fn run(port: u16) -> anyhow::Result<()> {
    let server = HttpServer::new(|| {
        App::new()
            .app_data(web::PayloadConfig::new(1024 * 1024))
            .route("/events", web::post().to(receive))
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .with_context(|| format!("binding 127.0.0.1:{port} for the sink"))?;
    println!("sink: accepting data-platform events on http://127.0.0.1:{port}/events");
    server.run().await.context("the sink failed")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
