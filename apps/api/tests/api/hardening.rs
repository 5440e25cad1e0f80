//! Hardening (issue 14 and the newcomer's list of issue 13): nothing a client sends
//! grows the server without bound, hangs it, answers 5xx, or comes back echoed at length.

use crate::helpers::{spawn_app, spawn_app_with, spawn_behind_proxy, Reply, TestApp};
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Some pseudo-random uppercase letters (no `rand` in this crate: UUID v4 bytes).
fn letters(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in uuid::Uuid::new_v4().as_bytes() {
            out.push((b'A' + b % 26) as char);
        }
    }
    out.truncate(n);
    out
}

async fn scrape(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The values of one label across the request metrics.
fn label_values(text: &str, label: &str) -> BTreeSet<String> {
    let needle = format!("{label}=\"");
    text.lines()
        .filter(|l| l.starts_with("commerce_http_request"))
        .filter_map(|l| l.split_once(&needle))
        .map(|(_, rest)| rest.split('"').next().unwrap_or_default().to_string())
        .collect()
}

/// Invariant (item 1): request metrics are labelled from fixed sets only (methods, route
/// templates, "unmatched"), so no caller can grow `/metrics` or memory by sending
/// made-up methods and paths.
#[tokio::test]
async fn metrics_stay_small_whatever_methods_and_paths_are_sent() {
    let app = spawn_app().await;
    let before = scrape(&app).await.len();
    let mut sent = Vec::new();
    for i in 0..300 {
        let method = Method::from_bytes(letters(3 + (i * 37) % 2_000).as_bytes()).unwrap();
        let path = match i % 3 {
            0 => format!("/api/v1/{}", letters(20 + i % 200)),
            1 => format!("/{}/{}", letters(8), letters(30)),
            _ => "/health/live".to_string(),
        };
        let res = app
            .client
            .request(method.clone(), app.url(&path))
            .send()
            .await
            .unwrap();
        assert!(!res.status().is_server_error(), "{method} {path}");
        sent.push(method.to_string());
    }
    let text = scrape(&app).await;
    assert!(
        text.len() < before + 8_000,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
    let methods = label_values(&text, "method");
    let allowed: BTreeSet<String> = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER",
    ]
    .iter()
    .map(|m| m.to_string())
    .collect();
    assert!(methods.is_subset(&allowed), "{methods:?}");
    assert!(methods.contains("OTHER"));
    let routes = label_values(&text, "route");
    for route in &routes {
        assert!(
            route == "unmatched"
                || route.starts_with("/health")
                || route.starts_with("/api/v1")
                || route == "/metrics",
            "{route}"
        );
        assert!(route.len() < 80, "{route}");
    }
    assert!(routes.len() <= 4, "{routes:?}");
    assert!(sent.iter().all(|m| !text.contains(m.as_str())));
}

#[derive(QueryableByName)]
struct StoredSize {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Text)]
    key: String,
}

/// Invariant (item 4): an error body echoes at most a short excerpt of the input, and
/// what an Idempotency-Key stores of it is as small.
#[tokio::test]
async fn error_bodies_echo_a_short_excerpt_and_stored_replays_stay_small() {
    let app = spawn_app().await;
    let token = app.user_token(1);
    let huge = "7".repeat(65_000);
    let raw_len = |r: &Reply| r.body.to_string().len();
    let r = app
        .send(
            Method::POST,
            "/api/v1/users/1/balance/charges",
            Some(&token),
            Some(&json!({"amount": huge, "payment_method": "card"})),
            &[("Idempotency-Key", "huge-1")],
        )
        .await;
    r.assert_problem(422, "VALIDATION_ERROR");
    assert_eq!(r.body["errors"][0]["field"], "amount", "{}", r.body);
    assert!(raw_len(&r) < 1_000, "{} bytes", raw_len(&r));
    // an unknown field named with 65,000 characters
    let mut body = json!({"amount": 1000, "payment_method": "card"});
    body[huge.as_str()] = json!(1);
    let r = app
        .post("/api/v1/users/1/balance/charges", Some(&token), &body)
        .await;
    r.assert_problem(422, "VALIDATION_ERROR");
    assert!(raw_len(&r) < 1_000, "{} bytes", raw_len(&r));
    // a thousand invalid ids: a bounded list of field errors
    let admin = app.admin_token();
    let r = app
        .post(
            "/api/v1/admin/coupons",
            Some(&admin),
            &crate::helpers::coupon_body(json!({"issue_to": vec![-1; 1000]})),
        )
        .await;
    r.assert_problem(422, "VALIDATION_ERROR");
    assert!(r.body["errors"].as_array().unwrap().len() <= 20);
    assert!(raw_len(&r) < 4_000, "{} bytes", raw_len(&r));

    let pool = app.pool();
    let mut conn = pool.get().await.unwrap();
    let stored: Vec<StoredSize> = diesel::sql_query(
        "SELECT key, coalesce(length(response_body), 0)::bigint AS n FROM idempotency_keys",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].key, "huge-1");
    assert!(stored[0].n < 1_000, "stored {} bytes", stored[0].n);
}

/// Invariant (item 3, one text rule): NUL and control characters in any name-like
/// field are a 422 naming it, never a 500, and nothing is stored.
#[tokio::test]
async fn nul_and_control_characters_in_names_are_422_never_500() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    for name in ["a\u{0}b", "two\nlines", "esc\u{1b}[31m", "   "] {
        let r = app
            .post(
                "/api/v1/admin/coupons",
                Some(&admin),
                &crate::helpers::coupon_body(json!({"name": name})),
            )
            .await;
        r.assert_problem(422, "VALIDATION_ERROR");
        assert_eq!(r.body["errors"][0]["field"], "name", "{}", r.body);
        let r = app
            .post(
                "/api/v1/admin/products",
                Some(&admin),
                &json!({"name": name, "price": 1000, "stock": 1}),
            )
            .await;
        r.assert_problem(422, "VALIDATION_ERROR");
        let r = app
            .post(
                "/api/v1/users/1/balance/charges",
                Some(&app.user_token(1)),
                &json!({"amount": 1000, "payment_method": name}),
            )
            .await;
        r.assert_problem(422, "VALIDATION_ERROR");
        assert_eq!(r.body["errors"][0]["field"], "payment_method");
    }
    let r = app.get("/api/v1/products", None).await;
    assert_eq!(r.body["items"], json!([]));
    let r = app
        .get("/api/v1/users/1/balance", Some(&app.user_token(1)))
        .await;
    assert_eq!(r.body["balance"], 0);
}

/// Invariant (issue 13): a wrongly typed field, a date without a time zone, a missing
/// field and a field the request does not know are each a 422 naming that field; a
/// typo (`coupon` for `coupon_id`) places no order.
#[tokio::test]
async fn wrongly_typed_missing_and_unknown_fields_are_named_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.user_token(1);
    app.charge(1, 100_000).await;
    let product = app.product_id("Named field", 1_000, 5).await;
    let field_of = |r: &Reply| {
        r.body["errors"][0]["field"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };

    let r = app
        .post(
            "/api/v1/users/1/balance/charges",
            Some(&token),
            &json!({"amount": "1000", "payment_method": "card"}),
        )
        .await;
    r.assert_problem(422, "VALIDATION_ERROR");
    assert_eq!(field_of(&r), "amount");

    let r = app
        .post(
            "/api/v1/admin/coupons",
            Some(&app.admin_token()),
            &crate::helpers::coupon_body(json!({"valid_from": "2026-11-01T00:00:00"})),
        )
        .await;
    r.assert_problem(422, "VALIDATION_ERROR");
    assert_eq!(field_of(&r), "valid_from");

    let cases = [
        (
            json!({"user_id": 1, "items": [{"product_id": product, "quantity": "2"}]}),
            "items[0].quantity",
        ),
        (
            json!({"user_id": 1, "items": [{"product_id": product, "qty": 2}]}),
            "items[0].qty",
        ),
        (
            json!({"user_id": 1, "items": [{"product_id": product}]}),
            "items[0].quantity",
        ),
        (
            json!({"items": [{"product_id": product, "quantity": 1}]}),
            "user_id",
        ),
        (
            json!({"user_id": 1, "items": [{"product_id": product, "quantity": 1}], "coupon": 5}),
            "coupon",
        ),
        (
            json!({"user_id": 1, "items": [{"product_id": product, "quantity": 1}], "pay_now": "yes"}),
            "pay_now",
        ),
    ];
    for (body, field) in cases {
        let r = app.post("/api/v1/orders", Some(&token), &body).await;
        r.assert_problem(422, "VALIDATION_ERROR");
        assert_eq!(field_of(&r), field, "{body}: {}", r.body);
    }
    // nothing was placed, nothing reserved, nothing paid
    let r = app.get("/api/v1/users/1/orders", Some(&token)).await;
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(app.product(product).await["stock"], 5);
    // malformed JSON stays a 400 about the body
    let raw = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"user_id\": 1,")
        .send()
        .await
        .unwrap();
    let r = Reply::read(raw).await;
    r.assert_problem(400, "VALIDATION_ERROR");
    assert_eq!(field_of(&r), "body");
}

/// Invariant (issue 15): the 413 names the configured limit, whichever layer refuses.
#[tokio::test]
async fn the_body_limit_in_every_413_is_the_configured_one() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 2048).await;
    let token = app.user_token(1);
    let big = json!({"amount": 10, "payment_method": "x".repeat(3_000)});
    for headers in [vec![], vec![("Idempotency-Key", "big")]] {
        let r = app
            .send(
                Method::POST,
                "/api/v1/users/1/balance/charges",
                Some(&token),
                Some(&big),
                &headers,
            )
            .await;
        r.assert_problem(413, "PAYLOAD_TOO_LARGE");
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .ends_with("larger than 2 KiB"),
            "{}",
            r.body
        );
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Invariant (items 7 and 8): a 401 carries one fixed message per kind and nothing of
/// the token or of a library; `nbf` in the future and a `sub` that is not plain
/// decimal are refused.
#[tokio::test]
async fn a_401_has_a_fixed_message_per_kind_and_never_echoes_the_token() {
    let app = spawn_app().await;
    let secret = commerce_api::config::DEV_JWT_SECRET;
    let good = |extra: Value| {
        let mut c = json!({"sub": "1", "role": "user", "exp": now() + 600});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "a bearer token is required"),
        (Some("Basic dXNlcjpwYXNz".into()), "malformed"),
        (Some("Bearer not-a-jwt".into()), "malformed"),
        (Some("Bearer a.b!.c".into()), "malformed"),
        (
            Some(format!(
                "Bearer {}",
                sign(&good(json!({"role": "superuser"})), secret)
            )),
            "malformed",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(&good(json!({"sub": "+1"})), secret)
            )),
            "malformed",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(&good(json!({"sub": "01"})), secret)
            )),
            "malformed",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(&good(json!({"sub": " 1"})), secret)
            )),
            "malformed",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(&good(json!({})), "another-secret-entirely!")
            )),
            "signature",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(&good(json!({"exp": now() - 3_600})), secret)
            )),
            "expired",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(&good(json!({"nbf": now() + 3_600})), secret)
            )),
            "not valid yet",
        ),
    ];
    for (authorization, kind) in cases {
        let mut req = app.client.get(app.url("/api/v1/users/1/balance"));
        if let Some(a) = &authorization {
            req = req.header("Authorization", a);
        }
        let r = Reply::read(req.send().await.unwrap()).await;
        r.assert_problem(401, "UNAUTHORIZED");
        let body = r.body.to_string();
        assert!(
            r.body["detail"].as_str().unwrap().contains(kind),
            "{authorization:?}: {body}"
        );
        for leak in [
            "superuser",
            "Base64",
            "base64",
            "variant",
            "Json",
            "InvalidToken",
            "+1",
            "not-a-jwt",
        ] {
            assert!(
                !body.contains(leak),
                "{authorization:?} leaked {leak}: {body}"
            );
        }
    }
    // a valid token still works, and one whose nbf has passed too
    let ok = sign(&good(json!({"nbf": now() - 10})), secret);
    let r = app.get("/api/v1/users/1/balance", Some(&ok)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Invariant (item 8): ids in paths are plain decimal; `01`, `+1`, ` 1` are 400
/// VALIDATION_ERROR naming the parameter, never taken as id 1.
#[tokio::test]
async fn ids_in_paths_are_plain_decimal_only() {
    let app = spawn_app().await;
    let product = app.product_id("Only one", 1_000, 5).await;
    assert_eq!(product, 1);
    let token = app.user_token(1);
    for bad in ["01", "+1", "%201", "1%20", "1.0", "0"] {
        let r = app.get(&format!("/api/v1/products/{bad}"), None).await;
        r.assert_problem(400, "VALIDATION_ERROR");
        assert_eq!(r.body["errors"][0]["field"], "id", "{bad}");
        let r = app
            .get(&format!("/api/v1/users/{bad}/balance"), Some(&token))
            .await;
        r.assert_problem(400, "VALIDATION_ERROR");
        assert_eq!(r.body["errors"][0]["field"], "user_id", "{bad}");
        let r = app
            .get(&format!("/api/v1/orders/{bad}"), Some(&token))
            .await;
        r.assert_problem(400, "VALIDATION_ERROR");
        assert_eq!(r.body["errors"][0]["field"], "order_id", "{bad}");
        let r = app
            .put(
                &format!("/api/v1/users/1/cart/items/{bad}"),
                Some(&token),
                &json!({"quantity": 1}),
            )
            .await;
        r.assert_problem(400, "VALIDATION_ERROR");
        assert_eq!(r.body["errors"][0]["field"], "product_id", "{bad}");
    }
    let r = app.get("/api/v1/products/1", None).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// Invariant (item 9): HEAD is answered wherever GET is, with the same status and
/// headers and no body; where GET is not, neither is HEAD.
#[tokio::test]
async fn head_is_answered_wherever_get_is() {
    let app = spawn_app().await;
    let product = app.product_id("Headed", 1_000, 5).await;
    let token = app.user_token(1);
    let paths = [
        "/health/live".to_string(),
        "/health/ready".to_string(),
        "/api/v1/products".to_string(),
        format!("/api/v1/products/{product}"),
        "/api/v1/products/999".to_string(),
        "/api/v1/users/1/balance".to_string(),
        "/api-docs/openapi.json".to_string(),
        "/docs/".to_string(),
        "/metrics".to_string(),
    ];
    for path in &paths {
        let get = app
            .client
            .get(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (get_status, get_type) = (get.status(), get.headers().get("content-type").cloned());
        let get_len = get.bytes().await.unwrap().len();
        let head = app
            .client
            .head(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), get_status, "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type").cloned(),
            get_type,
            "HEAD {path}"
        );
        if path != "/metrics" {
            // the scrape itself moves the counters between the two requests
            let length = head
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            assert_eq!(length, Some(get_len), "HEAD {path}");
        }
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has a body"
        );
    }
    let r = app
        .request(Method::HEAD, "/api/v1/orders", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// Invariant (item 2): with the database behind a link that stops forwarding, reads,
/// charges and pay-now orders answer 503 SERVICE_UNAVAILABLE within the configured
/// bound instead of hanging, change nothing, and succeed again once the link does.
#[tokio::test]
async fn a_stalled_database_answers_503_within_the_bound_and_recovers() {
    let (app, proxy) = spawn_behind_proxy().await;
    let token = app.user_token(1);
    app.charge(1, 50_000).await;
    let product = app.product_id("Stalled", 1_000, 10).await;

    proxy.stall();
    let requests = || {
        let app = &app;
        let token = token.clone();
        async move {
            let charge_body = json!({"amount": 1_000, "payment_method": "card"});
            let order_body = json!({"user_id": 1, "items": [{"product_id": product, "quantity": 1}], "pay_now": true});
            let read = app.get("/api/v1/users/1/balance", Some(&token));
            let product_read = app.get("/api/v1/products", None);
            let charge = app.post(
                "/api/v1/users/1/balance/charges",
                Some(&token),
                &charge_body,
            );
            let pay_now = app.post("/api/v1/orders", Some(&token), &order_body);
            let (a, b, c, d) = tokio::join!(read, product_read, charge, pay_now);
            vec![a, b, c, d]
        }
    };
    let started = Instant::now();
    let answers = requests().await;
    let took = started.elapsed();
    for r in &answers {
        r.assert_problem(503, "SERVICE_UNAVAILABLE");
        assert!(!r.body.to_string().contains("postgres"), "{}", r.body);
    }
    // each waited for one statement or one connection: the bound plus a little grace
    assert!(took < Duration::from_millis(3_500), "took {took:?}");

    proxy.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    let answers = loop {
        let answers = requests().await;
        if answers.iter().all(|r| !r.status.is_server_error()) {
            break answers;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {:?}",
            answers.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        answers[2].status,
        StatusCode::CREATED,
        "{}",
        answers[2].body
    );
    assert_eq!(
        answers[3].status,
        StatusCode::CREATED,
        "{}",
        answers[3].body
    );
    // nothing half-done: the balance is its history, and the stock counts one order
    let balance = app.get("/api/v1/users/1/balance", Some(&token)).await.body["balance"]
        .as_i64()
        .unwrap();
    let history = app
        .get_all("/api/v1/users/1/balance/history", Some(&token), 100)
        .await;
    let sum: i64 = history.iter().map(|h| h["amount"].as_i64().unwrap()).sum();
    assert_eq!(balance, sum);
    let orders = app
        .get_all("/api/v1/users/1/orders", Some(&token), 100)
        .await;
    let units: i64 = orders
        .iter()
        .map(|o| o["items"][0]["quantity"].as_i64().unwrap())
        .sum();
    assert_eq!(app.product(product).await["stock"], 10 - units);
    drop(proxy);
}
