//! HTTP client for the external data platform, behind `outbox::Destination`.
//!
//! `POST {url}/events` with the event's stored body, serialised once and sent byte for
//! byte as signed, and the headers `Idempotency-Key: <event_id>`, `webhook-id:
//! <event_id>`, `webhook-timestamp: <now, Unix seconds>` and, when secrets are
//! configured, `webhook-signature` (Standard Webhooks, see [`signing`]). Any 2xx
//! acknowledges; any other status is [`DeliveryError::Rejected`]; no answer within the
//! timeout, or no connection, is [`DeliveryError::Unreachable`]. The client does not
//! retry: the relay does, with backoff.

pub mod signing;

use async_trait::async_trait;
use outbox::{Acknowledged, DeliveryError, Destination, Event};
use signing::SigningSecret;
use std::error::Error as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Settings of [`HttpDataPlatform`].
#[derive(Debug, Clone)]
pub struct HttpDataPlatformSettings {
    /// Base URL, e.g. `https://platform.example/api`; events go to `{url}/events`.
    pub url: String,
    /// The whole of one attempt: connecting, sending, and the answer's status.
    pub timeout: Duration,
    /// Every delivery is signed with each (none: unsigned).
    pub secrets: Vec<SigningSecret>,
}

/// The data platform spoken to over HTTP.
#[derive(Debug, Clone)]
pub struct HttpDataPlatform {
    client: reqwest::Client,
    events_url: String,
    timeout: Duration,
    secrets: Vec<SigningSecret>,
}

impl HttpDataPlatform {
    /// A client for these settings.
    pub fn new(settings: &HttpDataPlatformSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()?;
        Ok(Self {
            client,
            events_url: format!("{}/events", settings.url.trim_end_matches('/')),
            timeout: settings.timeout,
            secrets: settings.secrets.clone(),
        })
    }

    /// Where events are POSTed.
    pub fn events_url(&self) -> &str {
        &self.events_url
    }

    fn unreachable(&self, e: &reqwest::Error) -> DeliveryError {
        if e.is_timeout() {
            return DeliveryError::Unreachable(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ));
        }
        // reqwest's own message names the URL only; the cause is further down
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        DeliveryError::Unreachable(message)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[async_trait]
impl Destination for HttpDataPlatform {
    async fn deliver(&self, event: &Event) -> Result<Acknowledged, DeliveryError> {
        // serialised once: these exact bytes are signed and sent
        let body = serde_json::to_vec(&event.body)
            .map_err(|e| DeliveryError::Unreachable(format!("cannot serialise the event: {e}")))?;
        let id = event.event_id.to_string();
        let timestamp = unix_now();
        let mut request = self
            .client
            .post(&self.events_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", &id)
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string());
        if !self.secrets.is_empty() {
            request = request.header(
                "webhook-signature",
                signing::signature_header(&self.secrets, &id, timestamp, &body),
            );
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if status.is_success() {
            Ok(Acknowledged {
                status: status.as_u16(),
            })
        } else {
            tracing::debug!(event_id = %event.event_id, %status, "the data platform refused an event");
            Err(DeliveryError::Rejected {
                status: status.as_u16(),
            })
        }
    }
}
