//! HTTP client for the external data platform, behind `order::events::DataPlatform`.
//!
//! `POST {url}/events` with `Idempotency-Key: <event_id>` and the event's stored body
//! as the JSON document. Any 2xx acknowledges; any other status is
//! [`DeliveryError::Rejected`]; no answer within the timeout, or no connection, is
//! [`DeliveryError::Unreachable`]. The client does not retry: the relay does, with backoff.

use async_trait::async_trait;
use order::events::{DataPlatform, DeliveryError, OutboundEvent};
use std::error::Error as _;
use std::time::Duration;

/// Settings of [`HttpDataPlatform`].
#[derive(Debug, Clone)]
pub struct HttpDataPlatformSettings {
    /// Base URL, e.g. `https://platform.example/api`; events go to `{url}/events`.
    pub url: String,
    /// The whole of one attempt: connecting, sending, and the answer's status.
    pub timeout: Duration,
}

/// The data platform spoken to over HTTP.
#[derive(Debug, Clone)]
pub struct HttpDataPlatform {
    client: reqwest::Client,
    events_url: String,
    timeout: Duration,
}

impl HttpDataPlatform {
    pub fn new(settings: &HttpDataPlatformSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()?;
        Ok(Self {
            client,
            events_url: format!("{}/events", settings.url.trim_end_matches('/')),
            timeout: settings.timeout,
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

#[async_trait]
impl DataPlatform for HttpDataPlatform {
    async fn deliver(&self, event: &OutboundEvent) -> Result<(), DeliveryError> {
        let response = self
            .client
            .post(&self.events_url)
            .header("Idempotency-Key", event.event_id.to_string())
            .json(&event.body)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            tracing::debug!(event_id = %event.event_id, %status, "the data platform refused an event");
            Err(DeliveryError::Rejected {
                status: status.as_u16(),
            })
        }
    }
}
