//! Payment gateway adapters behind `balance::PaymentGateway`:
//! - [`SandboxGateway`]: built in, for development and tests; approves every method
//!   except `"card_declined"`;
//! - [`HttpGateway`]: a JSON-over-HTTP gateway (`POST {url}/charges`).

use async_trait::async_trait;
use balance::{
    GatewayCharge, GatewayOutcome, GatewayTransactionId, GatewayUnavailable, PaymentGateway,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The method the sandbox declines.
pub const SANDBOX_DECLINED_METHOD: &str = "card_declined";

/// Approves everything but [`SANDBOX_DECLINED_METHOD`]. Deterministic per charge id, so
/// asking twice for the same charge gives the same transaction (as the port demands).
#[derive(Debug, Default, Clone, Copy)]
pub struct SandboxGateway;

#[async_trait]
impl PaymentGateway for SandboxGateway {
    async fn authorize(
        &self,
        request: &GatewayCharge,
    ) -> Result<GatewayOutcome, GatewayUnavailable> {
        if request.method.as_str() == SANDBOX_DECLINED_METHOD {
            Ok(GatewayOutcome::Declined {
                reason: "the sandbox declines card_declined".into(),
            })
        } else {
            Ok(GatewayOutcome::Approved(GatewayTransactionId(format!(
                "sandbox-{}",
                request.charge_id
            ))))
        }
    }
}

/// Settings of [`HttpGateway`].
#[derive(Debug, Clone)]
pub struct HttpGatewaySettings {
    pub url: String,
    pub timeout: Duration,
}

/// A gateway spoken to over HTTP: `POST {url}/charges` with `Idempotency-Key: charge-{id}`.
/// 200/201 with `{"status": "APPROVED", "transaction_id"}` approves,
/// `{"status": "DECLINED", "reason"}` or a 402 declines; anything else (or no answer in
/// time) leaves the outcome unknown.
#[derive(Debug, Clone)]
pub struct HttpGateway {
    client: reqwest::Client,
    charges_url: String,
}

#[derive(Serialize)]
struct ChargeBody<'a> {
    reference: String,
    user_id: i64,
    amount: i64,
    payment_method: &'a str,
}

#[derive(Deserialize)]
struct ChargeAnswer {
    status: String,
    transaction_id: Option<String>,
    reason: Option<String>,
}

impl HttpGateway {
    pub fn new(settings: &HttpGatewaySettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()?;
        Ok(Self {
            client,
            charges_url: format!("{}/charges", settings.url.trim_end_matches('/')),
        })
    }
}

fn unavailable(e: impl Into<anyhow::Error>) -> GatewayUnavailable {
    GatewayUnavailable(e.into())
}

#[async_trait]
impl PaymentGateway for HttpGateway {
    async fn authorize(
        &self,
        request: &GatewayCharge,
    ) -> Result<GatewayOutcome, GatewayUnavailable> {
        let reference = format!("charge-{}", request.charge_id);
        let response = self
            .client
            .post(&self.charges_url)
            .header("Idempotency-Key", &reference)
            .json(&ChargeBody {
                reference: reference.clone(),
                user_id: request.user_id.get(),
                amount: request.amount.won(),
                payment_method: request.method.as_str(),
            })
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        if status == reqwest::StatusCode::PAYMENT_REQUIRED {
            return Ok(GatewayOutcome::Declined {
                reason: "declined by the gateway".into(),
            });
        }
        if !status.is_success() {
            return Err(unavailable(anyhow::anyhow!("gateway answered {status}")));
        }
        let answer: ChargeAnswer = response.json().await.map_err(unavailable)?;
        match (answer.status.as_str(), answer.transaction_id) {
            ("APPROVED", Some(tx)) if !tx.is_empty() => {
                Ok(GatewayOutcome::Approved(GatewayTransactionId(tx)))
            }
            ("DECLINED", _) => Ok(GatewayOutcome::Declined {
                reason: answer
                    .reason
                    .unwrap_or_else(|| "declined by the gateway".into()),
            }),
            (other, _) => Err(unavailable(anyhow::anyhow!(
                "gateway answered status {other:?}"
            ))),
        }
    }
}
