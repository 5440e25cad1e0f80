//! Prometheus metrics: requests by route template, method and status; latency
//! histograms; database pool use; outbox backlog; business counters. One registry per
//! application (tests run many apps in one process).

use crate::state::AppState;
use actix_web::{web, HttpResponse};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::time::Duration;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool: IntGaugeVec,
    outbox: IntGaugeVec,
    events: IntCounterVec,
}

/// Business events counted by `commerce_events_total{kind}`.
#[derive(Debug, Clone, Copy)]
pub enum Event {
    OrderPlaced,
    OrderPaid,
    OrderCancelled,
    OrderExpired,
    CouponIssued,
    ChargeApproved,
    OutboxDelivered,
    OutboxDeliveryFailed,
}

impl Event {
    fn label(self) -> &'static str {
        match self {
            Event::OrderPlaced => "order_placed",
            Event::OrderPaid => "order_paid",
            Event::OrderCancelled => "order_cancelled",
            Event::OrderExpired => "order_expired",
            Event::CouponIssued => "coupon_issued",
            Event::ChargeApproved => "charge_approved",
            Event::OutboxDelivered => "outbox_delivered",
            Event::OutboxDeliveryFailed => "outbox_delivery_failed",
        }
    }
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("commerce".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route template, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route template and method",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route", "method"],
        )?;
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections by state (in_use, idle, max, waiting)",
            ),
            &["state"],
        )?;
        let outbox = IntGaugeVec::new(
            Opts::new(
                "outbox_events",
                "Outbox events by status (PENDING is the backlog)",
            ),
            &["status"],
        )?;
        let events = IntCounterVec::new(
            Opts::new("events_total", "Business events by kind"),
            &["kind"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        registry.register(Box::new(outbox.clone()))?;
        registry.register(Box::new(events.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            pool,
            outbox,
            events,
        })
    }

    /// Records one finished request. `route` is the matched template, never the raw path.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }

    pub fn count(&self, event: Event) {
        self.events.with_label_values(&[event.label()]).inc();
    }

    pub fn count_n(&self, event: Event, n: u64) {
        self.events.with_label_values(&[event.label()]).inc_by(n);
    }

    fn render(&self) -> anyhow::Result<String> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8(buf)?)
    }
}

/// The pools' figures added up.
#[derive(Default)]
struct PoolTotals {
    size: usize,
    available: usize,
    max_size: usize,
    waiting: usize,
}

/// Reads what is cheap to read at scrape time: pool use and the outbox by status.
async fn refresh(metrics: &Metrics, state: &AppState) {
    // every pool of the process: each HTTP worker's and the jobs'
    let status =
        state
            .pools
            .iter()
            .map(|pool| pool.status())
            .fold(PoolTotals::default(), |sum, s| PoolTotals {
                size: sum.size + s.size,
                available: sum.available + s.available,
                max_size: sum.max_size + s.max_size,
                waiting: sum.waiting + s.waiting,
            });
    let in_use = status.size.saturating_sub(status.available);
    metrics
        .pool
        .with_label_values(&["in_use"])
        .set(in_use as i64);
    metrics
        .pool
        .with_label_values(&["idle"])
        .set(status.available as i64);
    metrics
        .pool
        .with_label_values(&["max"])
        .set(status.max_size as i64);
    metrics
        .pool
        .with_label_values(&["waiting"])
        .set(status.waiting as i64);
    match tokio::time::timeout(Duration::from_secs(1), state.outbox.backlog()).await {
        Ok(Ok(backlog)) => {
            for (status, n) in [
                ("PENDING", backlog.pending),
                ("DELIVERED", backlog.delivered),
                ("DEAD", backlog.dead),
            ] {
                metrics.outbox.with_label_values(&[status]).set(n);
            }
        }
        Ok(Err(e)) => tracing::warn!(
            error = format!("{e:#}"),
            "metrics: outbox counts unavailable"
        ),
        Err(_) => tracing::warn!("metrics: outbox counts timed out"),
    }
}

/// `GET /metrics`
pub async fn metrics(metrics: web::Data<Metrics>, state: web::Data<AppState>) -> HttpResponse {
    refresh(&metrics, &state).await;
    match metrics.render() {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Err(e) => actix_web::ResponseError::error_response(&crate::error::ApiError::internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_template_and_latency_is_bucketed() {
        let m = Metrics::new().unwrap();
        m.observe_request(
            "/api/v1/orders/{order_id}",
            "GET",
            200,
            Duration::from_millis(3),
        );
        m.observe_request(
            "/api/v1/orders/{order_id}",
            "GET",
            200,
            Duration::from_millis(30),
        );
        m.count(Event::OrderPaid);
        let text = m.render().unwrap();
        assert!(text.contains(
            r#"commerce_http_requests_total{method="GET",route="/api/v1/orders/{order_id}",status="200"} 2"#
        ), "{text}");
        assert!(text.contains(r#"commerce_http_request_duration_seconds_count{method="GET",route="/api/v1/orders/{order_id}"} 2"#));
        assert!(text.contains(r#"commerce_events_total{kind="order_paid"} 1"#));
    }
}
