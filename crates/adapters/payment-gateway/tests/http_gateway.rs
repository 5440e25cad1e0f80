//! The HTTP gateway client against a real HTTP server started in the test.

use balance::{GatewayCharge, GatewayOutcome, PaymentGateway, PaymentMethod};
use kernel::{ChargeId, Money, UserId};
use payment_gateway::{HttpGateway, HttpGatewaySettings, SandboxGateway};
use std::time::Duration;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A gateway whose answer depends on the payment method: `card` approves, `declined`
/// declines, `payment_required` answers 402, `slow` answers after 3 s, anything else 503.
async fn fake_gateway() -> MockServer {
    let server = MockServer::start().await;
    let answers = [
        (
            "card",
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"status": "APPROVED", "transaction_id": "tx-9"})),
        ),
        (
            "declined",
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"status": "DECLINED", "reason": "no funds"})),
        ),
        ("payment_required", ResponseTemplate::new(402)),
        (
            "slow",
            ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
        ),
    ];
    for (method_name, answer) in answers {
        Mock::given(method("POST"))
            .and(path("/charges"))
            .and(body_partial_json(
                serde_json::json!({"payment_method": method_name}),
            ))
            .respond_with(answer)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    server
}

fn request(method: &str) -> GatewayCharge {
    GatewayCharge {
        charge_id: ChargeId::try_from(41).unwrap(),
        user_id: UserId::try_from(7).unwrap(),
        amount: Money::try_from(5_000).unwrap(),
        method: PaymentMethod::try_from(method.to_string()).unwrap(),
    }
}

fn client(url: &str) -> HttpGateway {
    HttpGateway::new(&HttpGatewaySettings {
        url: url.to_string(),
        timeout: Duration::from_millis(500),
    })
    .unwrap()
}

#[tokio::test]
async fn approval_carries_the_transaction_and_the_request_is_keyed_by_charge() {
    let gateway = fake_gateway().await;
    let outcome = client(&gateway.uri())
        .authorize(&request("card"))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        GatewayOutcome::Approved(balance::GatewayTransactionId("tx-9".into()))
    );
    let seen = gateway.received_requests().await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0]
            .headers
            .get("Idempotency-Key")
            .and_then(|v| v.to_str().ok()),
        Some("charge-41")
    );
    let body: serde_json::Value = seen[0].body_json().unwrap();
    assert_eq!(body["amount"], 5_000);
    assert_eq!(body["user_id"], 7);
}

#[tokio::test]
async fn declines_are_outcomes_not_errors() {
    let gateway = fake_gateway().await;
    let gw = client(&gateway.uri());
    assert!(
        matches!(gw.authorize(&request("declined")).await.unwrap(), GatewayOutcome::Declined { reason } if reason == "no funds")
    );
    assert!(matches!(
        gw.authorize(&request("payment_required")).await.unwrap(),
        GatewayOutcome::Declined { .. }
    ));
}

// Invariant: an unknown outcome (5xx, timeout, refused connection) is never read as a decline.
#[tokio::test]
async fn server_errors_timeouts_and_refusals_are_unavailable() {
    let gateway = fake_gateway().await;
    let gw = client(&gateway.uri());
    assert!(gw.authorize(&request("boom")).await.is_err());
    assert!(gw.authorize(&request("slow")).await.is_err());
    assert!(client("http://127.0.0.1:9")
        .authorize(&request("card"))
        .await
        .is_err());
}

#[tokio::test]
async fn sandbox_declines_only_card_declined_and_is_deterministic() {
    let sandbox = SandboxGateway;
    let first = sandbox.authorize(&request("card")).await.unwrap();
    assert_eq!(first, sandbox.authorize(&request("card")).await.unwrap());
    assert!(matches!(
        sandbox.authorize(&request("card_declined")).await.unwrap(),
        GatewayOutcome::Declined { .. }
    ));
}
