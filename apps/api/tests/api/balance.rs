//! Balance (points): every status and code of the "Balance" part of API.md.

use crate::helpers::{spawn_app, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn balance_of(app: &TestApp, user: i64) -> i64 {
    let r = app
        .get(
            &format!("/api/v1/users/{user}/balance"),
            Some(&app.user_token(user)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["user_id"], user);
    r.body["balance"].as_i64().unwrap()
}

async fn history_of(app: &TestApp, user: i64) -> Vec<Value> {
    app.get_all(
        &format!("/api/v1/users/{user}/balance/history"),
        Some(&app.user_token(user)),
        100,
    )
    .await
}

async fn charge_raw(app: &TestApp, user: i64, body: Value) -> crate::helpers::Reply {
    app.post(
        &format!("/api/v1/users/{user}/balance/charges"),
        Some(&app.user_token(user)),
        &body,
    )
    .await
}

#[tokio::test]
async fn a_user_never_charged_has_a_zero_balance_and_no_history() {
    let app = spawn_app().await;
    assert_eq!(balance_of(&app, 5).await, 0);
    assert!(history_of(&app, 5).await.is_empty());
}

// Invariant: an approved charge credits exactly its amount and writes one CHARGE row.
#[tokio::test]
async fn an_approved_charge_is_credited_and_recorded() {
    let app = spawn_app().await;
    let r = app.charge(3, 10_000).await;
    assert!(r.body["charge_id"].as_i64().unwrap() > 0);
    assert_eq!(r.body["user_id"], 3);
    assert_eq!(r.body["amount"], 10_000);
    assert_eq!(r.body["balance"], 10_000);
    assert_eq!(r.body["status"], "APPROVED");
    assert!(r.body["gateway_transaction_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));

    let r = app.charge(3, 2_500).await;
    assert_eq!(r.body["balance"], 12_500);
    assert_eq!(balance_of(&app, 3).await, 12_500);

    let history = history_of(&app, 3).await;
    assert_eq!(history.len(), 2);
    // newest first
    assert_eq!(history[0]["kind"], "CHARGE");
    assert_eq!(history[0]["amount"], 2_500);
    assert_eq!(history[0]["balance_after"], 12_500);
    assert_eq!(history[0]["order_id"], Value::Null);
    assert!(history[0]["id"].as_i64() > history[1]["id"].as_i64());
    assert_eq!(history[1]["amount"], 10_000);
    assert!(history[1]["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn amounts_outside_1_to_10_million_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    for amount in [0, -1, 10_000_001] {
        let r = charge_raw(&app, 4, json!({"amount": amount, "payment_method": "card"})).await;
        r.assert_problem(422, "VALIDATION_ERROR");
        assert_eq!(r.body["errors"][0]["field"], "amount");
    }
    assert_eq!(app.charge(4, 1).await.body["balance"], 1);
    assert_eq!(app.charge(4, 10_000_000).await.body["balance"], 10_000_001);
    assert_eq!(history_of(&app, 4).await.len(), 2);
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_validation_errors() {
    let app = spawn_app().await;
    let url = "/api/v1/users/4/balance/charges";
    let token = app.user_token(4);
    for body in [
        json!({"amount": "100", "payment_method": "card"}),
        json!({"amount": 1.5, "payment_method": "card"}),
        json!({"amount": 100}),
        json!({"payment_method": "card"}),
        json!({"amount": 100, "payment_method": ""}),
        json!([1, 2]),
    ] {
        let r = app.post(url, Some(&token), &body).await;
        r.assert_problem(422, "VALIDATION_ERROR");
    }
    let r = app
        .send(
            reqwest::Method::POST,
            url,
            Some(&token),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert!(r.status == 400 || r.status == 422, "{:?}", r);
    assert_eq!(r.body["code"], "VALIDATION_ERROR");
    let raw = app
        .client
        .post(app.url(url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"amount\": 5,")
        .send()
        .await
        .unwrap();
    crate::helpers::Reply::read(raw)
        .await
        .assert_problem(400, "VALIDATION_ERROR");
    assert_eq!(balance_of(&app, 4).await, 0);
}

// Invariant: a declined charge leaves the balance and its history untouched.
#[tokio::test]
async fn a_declined_charge_is_402_and_changes_nothing() {
    let app = spawn_app().await;
    app.charge(6, 1_000).await;
    let r = charge_raw(
        &app,
        6,
        json!({"amount": 5_000, "payment_method": "card_declined"}),
    )
    .await;
    r.assert_problem(402, "PAYMENT_DECLINED");
    assert_eq!(balance_of(&app, 6).await, 1_000);
    assert_eq!(history_of(&app, 6).await.len(), 1);
}

// Invariant: no charge takes a balance past 1,000,000,000; exactly the limit is allowed.
#[tokio::test]
async fn the_balance_may_reach_but_not_pass_one_billion() {
    let app = spawn_app().await;
    let token = app.user_token(8);
    let one = |amount: i64| {
        let (app, token) = (&app, &token);
        async move {
            app.post(
                "/api/v1/users/8/balance/charges",
                Some(token),
                &json!({"amount": amount, "payment_method": "card"}),
            )
            .await
        }
    };
    for chunk in 0..10 {
        let replies = futures::future::join_all((0..10).map(|_| one(10_000_000))).await;
        for r in replies {
            assert_eq!(r.status, StatusCode::CREATED, "chunk {chunk}: {}", r.body);
        }
    }
    assert_eq!(balance_of(&app, 8).await, 1_000_000_000);
    one(1).await.assert_problem(422, "BALANCE_LIMIT_EXCEEDED");
    assert_eq!(balance_of(&app, 8).await, 1_000_000_000);
    assert_eq!(history_of(&app, 8).await.len(), 100);
}

#[tokio::test]
async fn history_pages_with_an_opaque_cursor_newest_first() {
    let app = spawn_app().await;
    for amount in 1..=5 {
        app.charge(9, amount * 100).await;
    }
    let token = app.user_token(9);
    let first = app
        .get("/api/v1/users/9/balance/history?limit=2", Some(&token))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let amounts: Vec<i64> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, vec![500, 400]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let second = app
        .get(
            &format!("/api/v1/users/9/balance/history?limit=2&cursor={cursor}"),
            Some(&token),
        )
        .await;
    let amounts: Vec<i64> = second.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, vec![300, 200]);
    let all = app
        .get_all("/api/v1/users/9/balance/history", Some(&token), 2)
        .await;
    assert_eq!(all.len(), 5);
    let last = app
        .get("/api/v1/users/9/balance/history?limit=100", Some(&token))
        .await;
    assert_eq!(last.body["next_cursor"], Value::Null);

    for bad in ["limit=0", "limit=101", "limit=abc", "cursor=garbage"] {
        app.get(
            &format!("/api/v1/users/9/balance/history?{bad}"),
            Some(&token),
        )
        .await
        .assert_problem(400, "VALIDATION_ERROR");
    }
}

#[tokio::test]
async fn users_reach_only_their_own_balance_and_admins_reach_any() {
    let app = spawn_app().await;
    app.get("/api/v1/users/1/balance", None)
        .await
        .assert_problem(401, "UNAUTHORIZED");
    app.get("/api/v1/users/1/balance", Some("not-a-jwt"))
        .await
        .assert_problem(401, "UNAUTHORIZED");
    app.get("/api/v1/users/1/balance", Some(&app.user_token(2)))
        .await
        .assert_problem(403, "FORBIDDEN");
    app.post(
        "/api/v1/users/1/balance/charges",
        Some(&app.user_token(2)),
        &json!({"amount": 10, "payment_method": "card"}),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    app.get("/api/v1/users/1/balance/history", Some(&app.user_token(2)))
        .await
        .assert_problem(403, "FORBIDDEN");
    let r = app
        .get("/api/v1/users/1/balance", Some(&app.admin_token()))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .post(
            "/api/v1/users/1/balance/charges",
            Some(&app.admin_token()),
            &json!({"amount": 10, "payment_method": "card"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    for bad in ["0", "-3", "abc", "99999999999999999999"] {
        app.get(
            &format!("/api/v1/users/{bad}/balance"),
            Some(&app.admin_token()),
        )
        .await
        .assert_problem(400, "VALIDATION_ERROR");
    }
    assert_eq!(balance_of(&app, 2).await, 0);
}

// Invariant: under 50 concurrent charges, balance == sum of amounts == sum of history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_charges_keep_balance_equal_to_the_sum_of_history() {
    let app = spawn_app().await;
    let token = app.user_token(11);
    let replies = futures::future::join_all((1..=50).map(|i| {
        let (app, token) = (&app, &token);
        async move {
            app.post(
                "/api/v1/users/11/balance/charges",
                Some(token),
                &json!({"amount": i * 1_000, "payment_method": "card"}),
            )
            .await
        }
    }))
    .await;
    assert!(replies.iter().all(|r| r.status == StatusCode::CREATED));
    let expected: i64 = (1..=50).map(|i| i * 1_000).sum();
    assert_eq!(balance_of(&app, 11).await, expected);
    let history = history_of(&app, 11).await;
    assert_eq!(history.len(), 50);
    assert_eq!(
        history
            .iter()
            .map(|h| h["amount"].as_i64().unwrap())
            .sum::<i64>(),
        expected
    );
    // each charge saw a distinct balance: the balances after form a chain
    let mut afters: Vec<i64> = history
        .iter()
        .map(|h| h["balance_after"].as_i64().unwrap())
        .collect();
    afters.sort_unstable();
    afters.dedup();
    assert_eq!(afters.len(), 50);
    assert_eq!(*afters.last().unwrap(), expected);
}
