//! The HTTP gateway client against a real HTTP server started in the test.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use balance::{GatewayCharge, GatewayOutcome, PaymentGateway, PaymentMethod};
use kernel::{ChargeId, Money, UserId};
use payment_gateway::{HttpGateway, HttpGatewaySettings, SandboxGateway};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Seen = Arc<Mutex<Vec<(Option<String>, serde_json::Value)>>>;

/// Starts a gateway whose answer depends on the payment method; records what it got.
async fn fake_gateway() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let data = web::Data::new(seen.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route(
                "/charges",
                web::post().to(
                    |req: HttpRequest,
                     body: web::Json<serde_json::Value>,
                     seen: web::Data<Seen>| async move {
                        let key = req
                            .headers()
                            .get("Idempotency-Key")
                            .and_then(|v| v.to_str().ok())
                            .map(String::from);
                        seen.lock().unwrap().push((key, body.0.clone()));
                        match body["payment_method"].as_str().unwrap_or_default() {
                            "card" => HttpResponse::Ok().json(
                                serde_json::json!({"status": "APPROVED", "transaction_id": "tx-9"}),
                            ),
                            "declined" => HttpResponse::Ok().json(
                                serde_json::json!({"status": "DECLINED", "reason": "no funds"}),
                            ),
                            "payment_required" => HttpResponse::PaymentRequired().finish(),
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

#[actix_web::test]
async fn approval_carries_the_transaction_and_the_request_is_keyed_by_charge() {
    let (url, seen) = fake_gateway().await;
    let outcome = client(&url).authorize(&request("card")).await.unwrap();
    assert_eq!(
        outcome,
        GatewayOutcome::Approved(balance::GatewayTransactionId("tx-9".into()))
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0.as_deref(), Some("charge-41"));
    assert_eq!(seen[0].1["amount"], 5_000);
    assert_eq!(seen[0].1["user_id"], 7);
}

#[actix_web::test]
async fn declines_are_outcomes_not_errors() {
    let (url, _) = fake_gateway().await;
    let gw = client(&url);
    assert!(
        matches!(gw.authorize(&request("declined")).await.unwrap(), GatewayOutcome::Declined { reason } if reason == "no funds")
    );
    assert!(matches!(
        gw.authorize(&request("payment_required")).await.unwrap(),
        GatewayOutcome::Declined { .. }
    ));
}

// Invariant: an unknown outcome (5xx, timeout, refused connection) is never read as a decline.
#[actix_web::test]
async fn server_errors_timeouts_and_refusals_are_unavailable() {
    let (url, _) = fake_gateway().await;
    let gw = client(&url);
    assert!(gw.authorize(&request("boom")).await.is_err());
    assert!(gw.authorize(&request("slow")).await.is_err());
    assert!(client("http://127.0.0.1:9")
        .authorize(&request("card"))
        .await
        .is_err());
}

#[actix_web::test]
async fn sandbox_declines_only_card_declined_and_is_deterministic() {
    let sandbox = SandboxGateway;
    let first = sandbox.authorize(&request("card")).await.unwrap();
    assert_eq!(first, sandbox.authorize(&request("card")).await.unwrap());
    assert!(matches!(
        sandbox.authorize(&request("card_declined")).await.unwrap(),
        GatewayOutcome::Declined { .. }
    ));
}
