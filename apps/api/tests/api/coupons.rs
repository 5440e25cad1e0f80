//! Coupons: every status and code of the "Coupons" part of API.md, and the
//! first-come-first-served invariants under concurrent HTTP requests.

use crate::helpers::{
    coupon_body, create_coupon, issue_coupon, spawn_app, spawn_on, Reply, TestApp,
};
use futures::stream::{self, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// How many requests are in flight at once in the races (the request counts are not
/// reduced; this only keeps a 2-core machine from timing out).
const IN_FLIGHT: usize = 50;

async fn get_coupon(app: &TestApp, id: i64) -> Value {
    let r = app
        .get(&format!("/api/v1/coupons/{id}"), Some(&app.user_token(1)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn coupons_of(app: &TestApp, user: i64) -> Vec<Value> {
    app.get_all(
        &format!("/api/v1/users/{user}/coupons"),
        Some(&app.user_token(user)),
        100,
    )
    .await
}

async fn notifications_of(app: &TestApp, user: i64) -> Vec<Value> {
    app.get_all(
        &format!("/api/v1/users/{user}/notifications"),
        Some(&app.user_token(user)),
        100,
    )
    .await
}

/// Counts replies by (status, code); 201s count as (201, "").
fn tally<'a>(
    replies: impl IntoIterator<Item = &'a Reply>,
) -> std::collections::BTreeMap<(u16, String), usize> {
    let mut t = std::collections::BTreeMap::new();
    for r in replies {
        let code = r.body["code"].as_str().unwrap_or("").to_string();
        *t.entry((r.status.as_u16(), code)).or_insert(0) += 1;
    }
    t
}

fn key(status: u16, code: &str) -> (u16, String) {
    (status, code.to_string())
}

// Invariant: at most total_quantity units are issued, whatever the number of
// concurrent requests: 200 users, 50 units -> exactly 50 issued, 150 sold out.
#[tokio::test]
async fn two_hundred_users_racing_for_fifty_units_get_exactly_fifty() {
    let app = spawn_app().await;
    let coupon = create_coupon(&app, json!({"total_quantity": 50})).await;
    let id = coupon["id"].as_i64().unwrap();
    let app_ref = &app;
    let replies: Vec<(i64, Reply)> = stream::iter(1..=200_i64)
        .map(|user| async move { (user, issue_coupon(app_ref, id, user).await) })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let t = tally(replies.iter().map(|(_, r)| r));
    assert_eq!(t.get(&key(201, "")), Some(&50), "{t:?}");
    assert_eq!(t.get(&key(409, "COUPON_SOLD_OUT")), Some(&150), "{t:?}");
    assert_eq!(t.values().sum::<usize>(), 200, "{t:?}");
    assert_eq!(get_coupon(&app, id).await["issued_quantity"], 50);
    // each winner owns exactly one copy, each loser none
    let winners: BTreeSet<i64> = replies
        .iter()
        .filter(|(_, r)| r.status == StatusCode::CREATED)
        .map(|(u, r)| {
            assert_eq!(r.body["user_id"], *u);
            assert!(r.body["coupon"]["issued_quantity"].as_i64().unwrap() <= 50);
            *u
        })
        .collect();
    for user in [
        *winners.first().unwrap(),
        *winners.last().unwrap(),
        (1..=200).find(|u| !winners.contains(u)).unwrap(),
    ] {
        let owned = coupons_of(&app, user).await;
        assert_eq!(
            owned.len(),
            usize::from(winners.contains(&user)),
            "user {user}"
        );
    }
}

// Invariant: a user owns a coupon at most once, and a refused duplicate consumes no
// unit: 20 concurrent requests of one user -> one 201, 19 COUPON_ALREADY_ISSUED,
// issued_quantity 1. Repeated on several coupons, after warming the HTTP and database
// connections, so the requests really overlap in the database.
#[tokio::test]
async fn one_user_firing_twenty_concurrent_requests_gets_exactly_one() {
    let app = spawn_app().await;
    let app_ref = &app;
    let token = app.user_token(42);
    let token_ref = &token;
    let _: Vec<Reply> = stream::iter(0..40)
        .map(|_| app_ref.get("/api/v1/users/42/coupons", Some(token_ref)))
        .buffer_unordered(20)
        .collect()
        .await;
    for round in 0..5 {
        let coupon = create_coupon(&app, json!({"total_quantity": 5})).await;
        let id = coupon["id"].as_i64().unwrap();
        let replies: Vec<Reply> = stream::iter(0..20)
            .map(|_| issue_coupon(app_ref, id, 42))
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let t = tally(&replies);
        assert_eq!(t.get(&key(201, "")), Some(&1), "round {round}: {t:?}");
        assert_eq!(
            t.get(&key(409, "COUPON_ALREADY_ISSUED")),
            Some(&19),
            "round {round}: {t:?}"
        );
        assert_eq!(
            get_coupon(&app, id).await["issued_quantity"],
            1,
            "round {round}: a duplicate consumed a unit"
        );
    }
    assert_eq!(coupons_of(&app, 42).await.len(), 5);
}

// Invariant: the quantity limit holds across server instances sharing one database:
// 120 users split over two instances race for 30 units -> exactly 30 issued.
#[tokio::test]
async fn two_instances_on_one_database_still_issue_exactly_total_quantity() {
    let first = spawn_app().await;
    let second = spawn_on(first.db.clone(), |_| {}).await;
    let coupon = create_coupon(&first, json!({"total_quantity": 30})).await;
    let id = coupon["id"].as_i64().unwrap();
    let apps = [&first, &second];
    // one issue through each instance first (each opens its own connections lazily, so
    // an unwarmed one could otherwise lose every unit to the other), then the race
    let mut replies: Vec<(usize, Reply)> = Vec::new();
    for user in [2_i64, 1] {
        let instance = usize::try_from(user % 2).unwrap();
        replies.push((instance, issue_coupon(apps[instance], id, user).await));
    }
    let raced: Vec<(usize, Reply)> = stream::iter(3..=120_i64)
        .map(|user| {
            let instance = usize::try_from(user % 2).unwrap();
            let app = apps[instance];
            async move { (instance, issue_coupon(app, id, user).await) }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    replies.extend(raced);
    let t = tally(replies.iter().map(|(_, r)| r));
    assert_eq!(t.get(&key(201, "")), Some(&30), "{t:?}");
    assert_eq!(t.get(&key(409, "COUPON_SOLD_OUT")), Some(&90), "{t:?}");
    // both instances really took part in issuing
    for instance in 0..2 {
        assert!(
            replies
                .iter()
                .any(|(i, r)| *i == instance && r.status == StatusCode::CREATED),
            "instance {instance} issued nothing"
        );
    }
    assert_eq!(get_coupon(&first, id).await["issued_quantity"], 30);
    assert_eq!(get_coupon(&second, id).await["issued_quantity"], 30);
}

#[tokio::test]
async fn coupons_outside_their_window_are_not_active_and_unknown_ones_not_found() {
    let app = spawn_app().await;
    let now = chrono::Utc::now();
    let later = create_coupon(
        &app,
        json!({
            "valid_from": (now + chrono::Duration::hours(1)).to_rfc3339(),
            "valid_until": (now + chrono::Duration::days(1)).to_rfc3339(),
            "total_quantity": 10,
        }),
    )
    .await;
    let ended = create_coupon(
        &app,
        json!({
            "valid_from": (now - chrono::Duration::days(2)).to_rfc3339(),
            "valid_until": (now - chrono::Duration::days(1)).to_rfc3339(),
        }),
    )
    .await;
    for c in [&later, &ended] {
        let id = c["id"].as_i64().unwrap();
        issue_coupon(&app, id, 3)
            .await
            .assert_problem(409, "COUPON_NOT_ACTIVE");
        assert_eq!(get_coupon(&app, id).await["issued_quantity"], 0);
    }
    assert!(coupons_of(&app, 3).await.is_empty());
    issue_coupon(&app, 999_999, 3)
        .await
        .assert_problem(404, "COUPON_NOT_FOUND");
    app.get("/api/v1/coupons/999999", Some(&app.user_token(3)))
        .await
        .assert_problem(404, "COUPON_NOT_FOUND");
    app.get("/api/v1/coupons/0", Some(&app.user_token(3)))
        .await
        .assert_problem(400, "VALIDATION_ERROR");
}

// Invariant: issue_to gives each distinct user exactly one copy and one notification,
// in the same transaction as the coupon, and issued_quantity counts them.
#[tokio::test]
async fn admin_issue_to_gives_each_user_one_copy_and_one_notification() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/admin/coupons",
            Some(&app.admin_token()),
            &coupon_body(json!({
                "name": "Autumn sale",
                "discount_type": "FIXED",
                "discount_value": 3000,
                "min_order_amount": 20000,
                "total_quantity": 5,
                "issue_to": [11, 12, 11, 13],
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/coupons/{id}").as_str())
    );
    assert_eq!(r.body["issued_quantity"], 3);
    assert_eq!(r.body["total_quantity"], 5);
    assert_eq!(get_coupon(&app, id).await, r.body);
    for user in [11, 12, 13] {
        let owned = coupons_of(&app, user).await;
        assert_eq!(owned.len(), 1, "user {user}");
        assert_eq!(owned[0]["coupon"]["id"], id);
        assert_eq!(owned[0]["status"], "AVAILABLE");
        let notes = notifications_of(&app, user).await;
        assert_eq!(notes.len(), 1, "user {user}");
        let n = notes[0].as_object().unwrap();
        let keys: BTreeSet<&str> = n.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["id", "kind", "message", "coupon_id", "created_at", "read"])
        );
        assert_eq!(n["kind"], "COUPON_ISSUED");
        assert_eq!(n["coupon_id"], id);
        assert_eq!(n["read"], false);
        assert!(n["message"].as_str().unwrap().contains("Autumn sale"));
        assert!(n["created_at"].as_str().unwrap().ends_with('Z'));
    }
    assert!(notifications_of(&app, 14).await.is_empty());
    // the owners cannot take a second copy; two units are left for everyone else
    issue_coupon(&app, id, 11)
        .await
        .assert_problem(409, "COUPON_ALREADY_ISSUED");
    for user in [14, 15] {
        assert_eq!(
            issue_coupon(&app, id, user).await.status,
            StatusCode::CREATED
        );
    }
    issue_coupon(&app, id, 16)
        .await
        .assert_problem(409, "COUPON_SOLD_OUT");
    assert_eq!(get_coupon(&app, id).await["issued_quantity"], 5);
    // first come, first served sends no notification
    assert!(notifications_of(&app, 14).await.is_empty());
}

#[tokio::test]
async fn more_distinct_recipients_than_units_is_422_and_creates_nothing() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/admin/coupons",
            Some(&app.admin_token()),
            &coupon_body(json!({"total_quantity": 2, "issue_to": [1, 2, 3]})),
        )
        .await;
    r.assert_problem(422, "VALIDATION_ERROR");
    assert_eq!(r.body["errors"][0]["field"], "issue_to");
    // duplicates count once: 3 entries, 2 users fit in 2 units
    let ok = create_coupon(&app, json!({"total_quantity": 2, "issue_to": [1, 2, 1]})).await;
    assert_eq!(ok["issued_quantity"], 2);
    // the refused request created nothing (not even a rolled-back row: ids would skip)
    assert_eq!(ok["id"], 1);
    for user in [1, 2] {
        assert_eq!(coupons_of(&app, user).await.len(), 1);
        assert_eq!(notifications_of(&app, user).await.len(), 1);
    }
    assert!(coupons_of(&app, 3).await.is_empty());
    assert!(notifications_of(&app, 3).await.is_empty());
}

#[tokio::test]
async fn creation_validates_every_field() {
    let app = spawn_app().await;
    let token = app.admin_token();
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (
            json!({"discount_type": "FIXED", "discount_value": 0}),
            "discount_value",
        ),
        (
            json!({"discount_type": "FIXED", "discount_value": 100_000_001}),
            "discount_value",
        ),
        (
            json!({"discount_type": "PERCENT", "discount_value": 101}),
            "discount_value",
        ),
        (
            json!({"discount_type": "PERCENT", "discount_value": 0}),
            "discount_value",
        ),
        (
            json!({"discount_type": "PERCENT", "max_discount": 0}),
            "max_discount",
        ),
        (
            json!({"discount_type": "PERCENT", "max_discount": 100_000_001}),
            "max_discount",
        ),
        // a cap is for PERCENT only
        (
            json!({"discount_type": "FIXED", "discount_value": 1_000, "max_discount": 500}),
            "max_discount",
        ),
        (json!({"min_order_amount": -1}), "min_order_amount"),
        (json!({"total_quantity": 0}), "total_quantity"),
        (
            json!({"valid_from": "2026-11-22T00:00:00Z", "valid_until": "2026-11-22T00:00:00Z"}),
            "valid_until",
        ),
        (json!({"issue_to": [1, 0]}), "issue_to[1]"),
        (
            json!({"issue_to": (1..=1001).collect::<Vec<i64>>()}),
            "issue_to",
        ),
    ];
    for (overrides, field) in cases {
        let r = app
            .post(
                "/api/v1/admin/coupons",
                Some(&token),
                &coupon_body(overrides.clone()),
            )
            .await;
        r.assert_problem(422, "VALIDATION_ERROR");
        let fields: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{overrides}: {}", r.body);
    }
    // wrong types, unknown enum values, missing fields
    for body in [
        coupon_body(json!({"discount_type": "BOGO"})),
        coupon_body(json!({"discount_value": "10"})),
        coupon_body(json!({"valid_from": "yesterday"})),
        json!({"name": "x", "discount_type": "FIXED", "discount_value": 1}),
    ] {
        let r = app.post("/api/v1/admin/coupons", Some(&token), &body).await;
        r.assert_problem(422, "VALIDATION_ERROR");
    }
    // nothing was created by any of them
    let c = create_coupon(&app, json!({})).await;
    assert_eq!(c["id"], 1, "a refused request must not create a coupon");
}

#[tokio::test]
async fn defaults_and_the_json_shapes() {
    let app = spawn_app().await;
    let c = create_coupon(
        &app,
        json!({"valid_from": "2026-01-01T09:00:00+09:00", "valid_until": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let keys: BTreeSet<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "id",
            "name",
            "discount_type",
            "discount_value",
            "max_discount",
            "min_order_amount",
            "total_quantity",
            "issued_quantity",
            "valid_from",
            "valid_until",
            "active"
        ])
    );
    assert_eq!(c["max_discount"], Value::Null);
    assert_eq!(c["active"], true);
    assert_eq!(c["discount_type"], "PERCENT");
    assert_eq!(c["discount_value"], 10);
    assert_eq!(c["min_order_amount"], 0);
    assert_eq!(c["total_quantity"], Value::Null);
    assert_eq!(c["issued_quantity"], 0);
    // stored and shown in UTC
    assert_eq!(c["valid_from"], "2026-01-01T00:00:00Z");
    let id = c["id"].as_i64().unwrap();
    let r = issue_coupon(&app, id, 8).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let keys: BTreeSet<&str> = r
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "coupon",
            "user_id",
            "status",
            "issued_at",
            "used_at",
            "order_id"
        ])
    );
    assert_eq!(r.body["user_id"], 8);
    assert_eq!(r.body["status"], "AVAILABLE");
    assert_eq!(r.body["used_at"], Value::Null);
    assert_eq!(r.body["order_id"], Value::Null);
    assert_eq!(r.body["coupon"]["id"], id);
    assert_eq!(r.body["coupon"]["issued_quantity"], 1);
    assert!(r.body["issued_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(coupons_of(&app, 8).await, vec![r.body.clone()]);
}

// EXPIRED is derived when read: an admin may hand out a coupon whose window has ended.
#[tokio::test]
async fn a_users_coupons_page_newest_first_and_show_expired() {
    let app = spawn_app().await;
    let now = chrono::Utc::now();
    let ended = create_coupon(
        &app,
        json!({
            "valid_from": (now - chrono::Duration::days(2)).to_rfc3339(),
            "valid_until": (now - chrono::Duration::days(1)).to_rfc3339(),
            "issue_to": [5],
        }),
    )
    .await;
    let mut ids = vec![ended["id"].as_i64().unwrap()];
    for _ in 0..4 {
        let c = create_coupon(&app, json!({})).await;
        let id = c["id"].as_i64().unwrap();
        assert_eq!(issue_coupon(&app, id, 5).await.status, StatusCode::CREATED);
        ids.push(id);
    }
    let token = app.user_token(5);
    let first = app
        .get("/api/v1/users/5/coupons?limit=2", Some(&token))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    assert!(first.body["next_cursor"].is_string());
    let all = app
        .get_all("/api/v1/users/5/coupons", Some(&token), 2)
        .await;
    let listed: Vec<i64> = all
        .iter()
        .map(|c| c["coupon"]["id"].as_i64().unwrap())
        .collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    assert_eq!(all.last().unwrap()["status"], "EXPIRED");
    assert!(all[..4].iter().all(|c| c["status"] == "AVAILABLE"));
    app.get("/api/v1/users/5/coupons?limit=0", Some(&token))
        .await
        .assert_problem(400, "VALIDATION_ERROR");
    app.get("/api/v1/users/5/notifications?cursor=nope", Some(&token))
        .await
        .assert_problem(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn tokens_and_ownership_are_enforced() {
    let app = spawn_app().await;
    let body = coupon_body(json!({}));
    app.post("/api/v1/admin/coupons", None, &body)
        .await
        .assert_problem(401, "UNAUTHORIZED");
    app.post("/api/v1/admin/coupons", Some("not-a-jwt"), &body)
        .await
        .assert_problem(401, "UNAUTHORIZED");
    app.post("/api/v1/admin/coupons", Some(&app.user_token(1)), &body)
        .await
        .assert_problem(403, "FORBIDDEN");
    let id = create_coupon(&app, json!({"total_quantity": 3})).await["id"]
        .as_i64()
        .unwrap();
    app.get(&format!("/api/v1/coupons/{id}"), None)
        .await
        .assert_problem(401, "UNAUTHORIZED");
    let issue = format!("/api/v1/coupons/{id}/issues");
    app.post(&issue, None, &json!({"user_id": 1}))
        .await
        .assert_problem(401, "UNAUTHORIZED");
    // a user issues only for themselves
    app.post(&issue, Some(&app.user_token(1)), &json!({"user_id": 2}))
        .await
        .assert_problem(403, "FORBIDDEN");
    app.post(&issue, Some(&app.user_token(1)), &json!({"user_id": 0}))
        .await
        .assert_problem(422, "VALIDATION_ERROR");
    // an admin may issue for anyone
    let r = app
        .post(&issue, Some(&app.admin_token()), &json!({"user_id": 2}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["user_id"], 2);
    assert_eq!(get_coupon(&app, id).await["issued_quantity"], 1);
    for path in ["/api/v1/users/2/coupons", "/api/v1/users/2/notifications"] {
        app.get(path, None)
            .await
            .assert_problem(401, "UNAUTHORIZED");
        app.get(path, Some(&app.user_token(1)))
            .await
            .assert_problem(403, "FORBIDDEN");
        assert_eq!(
            app.get(path, Some(&app.admin_token())).await.status,
            StatusCode::OK
        );
    }
}

// Invariant: a retried issue with the same Idempotency-Key replays, it does not issue twice.
#[tokio::test]
async fn an_issue_retried_with_the_same_key_replays_the_first_answer() {
    let app = spawn_app().await;
    let id = create_coupon(&app, json!({"total_quantity": 3})).await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/coupons/{id}/issues");
    let token = app.user_token(4);
    let body = json!({"user_id": 4});
    let send = || {
        app.send(
            reqwest::Method::POST,
            &path,
            Some(&token),
            Some(&body),
            &[("Idempotency-Key", "issue-4")],
        )
    };
    let a = send().await;
    let b = send().await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    assert_eq!(a.body, b.body);
    assert_eq!(get_coupon(&app, id).await["issued_quantity"], 1);
}

#[tokio::test]
async fn every_coupon_route_is_in_the_openapi_document() {
    let app = spawn_app().await;
    let r = app.get("/api-docs/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    for (path, method) in [
        ("/api/v1/admin/coupons", "post"),
        ("/api/v1/coupons/{coupon_id}", "get"),
        ("/api/v1/coupons/{coupon_id}/issues", "post"),
        ("/api/v1/users/{user_id}/coupons", "get"),
        ("/api/v1/users/{user_id}/notifications", "get"),
        ("/api/v1/admin/coupons/{coupon_id}/deactivate", "post"),
        (
            "/api/v1/users/{user_id}/notifications/{notification_id}/read",
            "post",
        ),
    ] {
        assert!(
            r.body["paths"][path][method].is_object(),
            "{method} {path} is missing"
        );
    }
    let schemas = &r.body["components"]["schemas"];
    for name in [
        "CouponView",
        "UserCouponView",
        "NotificationView",
        "CreateCouponRequest",
    ] {
        assert!(schemas[name].is_object(), "schema {name} is missing");
    }
}

// max_discount: PERCENT capped, FIXED with an explicit null is fine, and it shows.
#[tokio::test]
async fn a_percent_coupon_keeps_its_cap_and_fixed_may_say_null() {
    let app = spawn_app().await;
    let capped = create_coupon(
        &app,
        json!({"discount_type": "PERCENT", "discount_value": 20, "max_discount": 5_000}),
    )
    .await;
    assert_eq!(capped["max_discount"], 5_000);
    assert_eq!(
        get_coupon(&app, capped["id"].as_i64().unwrap()).await,
        capped
    );
    let top = create_coupon(
        &app,
        json!({"discount_type": "PERCENT", "max_discount": 100_000_000}),
    )
    .await;
    assert_eq!(top["max_discount"], 100_000_000);
    let fixed = create_coupon(
        &app,
        json!({"discount_type": "FIXED", "discount_value": 1_000, "max_discount": null}),
    )
    .await;
    assert_eq!(fixed["max_discount"], Value::Null);
}

fn deactivate_path(id: i64) -> String {
    format!("/api/v1/admin/coupons/{id}/deactivate")
}

// Invariant: deactivation is admin-only, idempotent, 404 for an unknown coupon, and
// from then on the coupon is neither issued (COUPON_NOT_ACTIVE) nor used on an order
// (COUPON_NOT_USABLE), while an order already placed with it keeps its discount.
#[tokio::test]
async fn a_deactivated_coupon_is_neither_issued_nor_used_and_placed_orders_keep_it() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    let product = app
        .post(
            "/api/v1/admin/products",
            Some(&admin),
            &json!({"name": "Lamp", "price": 20_000, "stock": 10}),
        )
        .await;
    assert_eq!(product.status, StatusCode::CREATED, "{}", product.body);
    let p = product.body["id"].as_i64().unwrap();
    let c = create_coupon(
        &app,
        json!({"discount_type": "PERCENT", "discount_value": 50, "max_discount": 3_000, "issue_to": [1, 2]}),
    )
    .await;
    let id = c["id"].as_i64().unwrap();
    let order = |user: i64| json!({"user_id": user, "items": [{"product_id": p, "quantity": 1}], "coupon_id": id});
    // user 1 orders before: 50% of 20,000 capped at 3,000
    let before = app
        .post("/api/v1/orders", Some(&app.user_token(1)), &order(1))
        .await;
    assert_eq!(before.status, StatusCode::CREATED, "{}", before.body);
    assert_eq!(before.body["discount"], 3_000);
    assert_eq!(before.body["total"], 17_000);

    // only an admin deactivates
    app.post(&deactivate_path(id), None, &json!(null))
        .await
        .assert_problem(401, "UNAUTHORIZED");
    app.post(&deactivate_path(id), Some(&app.user_token(1)), &json!(null))
        .await
        .assert_problem(403, "FORBIDDEN");
    assert_eq!(get_coupon(&app, id).await["active"], true);
    let r = app
        .request(
            reqwest::Method::POST,
            &deactivate_path(id),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["id"], id);
    // idempotent: the same coupon again
    let again = app
        .request(
            reqwest::Method::POST,
            &deactivate_path(id),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, r.body);
    assert_eq!(get_coupon(&app, id).await, r.body);
    app.request(
        reqwest::Method::POST,
        &deactivate_path(999_999),
        Some(&admin),
        None,
    )
    .await
    .assert_problem(404, "COUPON_NOT_FOUND");
    app.request(
        reqwest::Method::POST,
        "/api/v1/admin/coupons/0/deactivate",
        Some(&admin),
        None,
    )
    .await
    .assert_problem(400, "VALIDATION_ERROR");

    // no longer issued
    issue_coupon(&app, id, 3)
        .await
        .assert_problem(409, "COUPON_NOT_ACTIVE");
    assert!(coupons_of(&app, 3).await.is_empty());
    assert_eq!(get_coupon(&app, id).await["issued_quantity"], 2);
    // no longer used: user 2 owns it but cannot order with it, and nothing is reserved
    let stock_before = app.get(&format!("/api/v1/products/{p}"), None).await.body["stock"].clone();
    app.post("/api/v1/orders", Some(&app.user_token(2)), &order(2))
        .await
        .assert_problem(409, "COUPON_NOT_USABLE");
    assert_eq!(
        app.get(&format!("/api/v1/products/{p}"), None).await.body["stock"],
        stock_before
    );
    let owned = coupons_of(&app, 2).await;
    assert_eq!(owned[0]["status"], "AVAILABLE");
    assert_eq!(owned[0]["coupon"]["active"], false);
    // the order placed before is untouched
    let id_before = before.body["id"].as_i64().unwrap();
    let now = app
        .get(
            &format!("/api/v1/orders/{id_before}"),
            Some(&app.user_token(1)),
        )
        .await;
    assert_eq!(now.body["discount"], 3_000);
    assert_eq!(now.body["coupon_id"], id);
    assert_eq!(coupons_of(&app, 1).await[0]["status"], "USED");
}

fn read_path(user: i64, id: i64) -> String {
    format!("/api/v1/users/{user}/notifications/{id}/read")
}

// Invariant: a user marks only their own notification read, idempotently; another
// user's notification is 404 NOTIFICATION_NOT_FOUND and stays unread.
#[tokio::test]
async fn marking_a_notification_read_is_idempotent_and_only_for_its_owner() {
    let app = spawn_app().await;
    create_coupon(&app, json!({"issue_to": [5, 6]})).await;
    let mine = notifications_of(&app, 5).await[0].clone();
    let theirs = notifications_of(&app, 6).await[0].clone();
    assert_eq!(mine["read"], false);
    let (m, t) = (mine["id"].as_i64().unwrap(), theirs["id"].as_i64().unwrap());
    let token = app.user_token(5);
    let post = |path: String, token: Option<String>| {
        let app = &app;
        async move {
            app.request(reqwest::Method::POST, &path, token.as_deref(), None)
                .await
        }
    };
    // another user's notification, through one's own path: not found, untouched
    post(read_path(5, t), Some(token.clone()))
        .await
        .assert_problem(404, "NOTIFICATION_NOT_FOUND");
    // another user's path: forbidden
    post(read_path(6, t), Some(token.clone()))
        .await
        .assert_problem(403, "FORBIDDEN");
    post(read_path(5, m), None)
        .await
        .assert_problem(401, "UNAUTHORIZED");
    post(read_path(5, 999_999), Some(token.clone()))
        .await
        .assert_problem(404, "NOTIFICATION_NOT_FOUND");
    post(read_path(5, 0), Some(token.clone()))
        .await
        .assert_problem(400, "VALIDATION_ERROR");
    assert_eq!(notifications_of(&app, 6).await[0]["read"], false);

    let r = post(read_path(5, m), Some(token.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut expected = mine.clone();
    expected["read"] = json!(true);
    assert_eq!(r.body, expected);
    let again = post(read_path(5, m), Some(token.clone())).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, expected);
    assert_eq!(notifications_of(&app, 5).await, vec![expected]);
    // an admin may mark any user's notification
    let r = post(read_path(6, t), Some(app.admin_token())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["read"], true);
}
