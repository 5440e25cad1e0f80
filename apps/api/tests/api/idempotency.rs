//! `Idempotency-Key` on state-changing POSTs (API.md "Conventions").

use crate::helpers::spawn_app;
use reqwest::{Method, StatusCode};
use serde_json::json;

const CHARGE: &str = "/api/v1/users/21/balance/charges";

// Invariant: a retried charge with the same key moves money once.
#[tokio::test]
async fn the_same_key_and_body_replays_the_first_response_without_charging_again() {
    let app = spawn_app().await;
    let token = app.user_token(21);
    let body = json!({"amount": 7_000, "payment_method": "card"});
    let first = app
        .send(
            Method::POST,
            CHARGE,
            Some(&token),
            Some(&body),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = app
        .send(
            Method::POST,
            CHARGE,
            Some(&token),
            Some(&body),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let balance = app.get("/api/v1/users/21/balance", Some(&token)).await;
    assert_eq!(balance.body["balance"], 7_000);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.user_token(21);
    let send = |amount: i64| {
        let (app, token) = (&app, &token);
        async move {
            app.send(
                Method::POST,
                CHARGE,
                Some(token),
                Some(&json!({"amount": amount, "payment_method": "card"})),
                &[("Idempotency-Key", "k-2")],
            )
            .await
        }
    };
    assert_eq!(send(1_000).await.status, StatusCode::CREATED);
    send(2_000)
        .await
        .assert_problem(422, "IDEMPOTENCY_KEY_REUSED");
    let balance = app.get("/api/v1/users/21/balance", Some(&token)).await;
    assert_eq!(balance.body["balance"], 1_000);
}

#[tokio::test]
async fn a_duplicate_while_the_first_runs_is_409() {
    let app = spawn_app().await;
    let token = app.user_token(21);
    let body = json!({"amount": 1_000, "payment_method": "card"});
    // The first request is mid-flight: its claim is in the table and its lease is live.
    let hash = commerce_api::idempotency::fingerprint("POST", CHARGE, body.to_string().as_bytes());
    let pool = app.pool();
    let mut conn = pool.get().await.unwrap();
    use diesel_async::RunQueryDsl;
    diesel::sql_query(
        "INSERT INTO idempotency_keys (caller, key, request_hash, status, locked_until, expires_at)
         VALUES ('user:21', 'k-3', $1, 'IN_PROGRESS', now() + interval '1 minute', now() + interval '1 day')",
    )
    .bind::<diesel::sql_types::Text, _>(&hash)
    .execute(&mut conn)
    .await
    .unwrap();
    let r = app
        .send(
            Method::POST,
            CHARGE,
            Some(&token),
            Some(&body),
            &[("Idempotency-Key", "k-3")],
        )
        .await;
    r.assert_problem(409, "REQUEST_IN_PROGRESS");
    // When the first request died, its claim is taken over once the lease ends.
    diesel::sql_query(
        "UPDATE idempotency_keys SET locked_until = now() - interval '1 second' WHERE key = 'k-3'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let r = app
        .send(
            Method::POST,
            CHARGE,
            Some(&token),
            Some(&body),
            &[("Idempotency-Key", "k-3")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn error_responses_replay_too_and_keys_are_per_caller() {
    let app = spawn_app().await;
    let declined = json!({"amount": 1_000, "payment_method": "card_declined"});
    let token = app.user_token(21);
    let first = app
        .send(
            Method::POST,
            CHARGE,
            Some(&token),
            Some(&declined),
            &[("Idempotency-Key", "k-4")],
        )
        .await;
    first.assert_problem(402, "PAYMENT_DECLINED");
    let again = app
        .send(
            Method::POST,
            CHARGE,
            Some(&token),
            Some(&declined),
            &[("Idempotency-Key", "k-4")],
        )
        .await;
    again.assert_problem(402, "PAYMENT_DECLINED");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // another caller's identical key is its own
    let other = app
        .send(
            Method::POST,
            "/api/v1/users/22/balance/charges",
            Some(&app.user_token(22)),
            Some(&json!({"amount": 500, "payment_method": "card"})),
            &[("Idempotency-Key", "k-4")],
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_keys_are_400() {
    let app = spawn_app().await;
    let token = app.user_token(21);
    let body = json!({"amount": 1_000, "payment_method": "card"});
    let long = "k".repeat(256);
    for key in [long.as_str(), "has space"] {
        let r = app
            .send(
                Method::POST,
                CHARGE,
                Some(&token),
                Some(&body),
                &[("Idempotency-Key", key)],
            )
            .await;
        r.assert_problem(400, "VALIDATION_ERROR");
    }
    let balance = app.get("/api/v1/users/21/balance", Some(&token)).await;
    assert_eq!(balance.body["balance"], 0);
}
