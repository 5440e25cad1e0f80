//! The conventions of API.md that hold for every route: problem+json, 404/405/413/415,
//! health, docs, request ids.

use crate::helpers::spawn_app;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_problems() {
    let app = spawn_app().await;
    app.get("/api/v1/nope", None)
        .await
        .assert_problem(404, "NOT_FOUND");
    app.get("/nothing/here", None)
        .await
        .assert_problem(404, "NOT_FOUND");
    let r = app
        .request(
            Method::DELETE,
            "/api/v1/users/1/balance",
            Some(&app.user_token(1)),
            None,
        )
        .await;
    r.assert_problem(405, "METHOD_NOT_ALLOWED");
    let r = app.request(Method::PUT, "/health/live", None, None).await;
    r.assert_problem(405, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_and_non_json_is_415() {
    let app = spawn_app().await;
    let token = app.user_token(1);
    let big = json!({"amount": 10, "payment_method": "x".repeat(70 * 1024)});
    let r = app
        .post("/api/v1/users/1/balance/charges", Some(&token), &big)
        .await;
    r.assert_problem(413, "PAYLOAD_TOO_LARGE");
    // the same through the idempotency layer, which reads bodies itself
    let r = app
        .send(
            Method::POST,
            "/api/v1/users/1/balance/charges",
            Some(&token),
            Some(&big),
            &[("Idempotency-Key", "big-1")],
        )
        .await;
    r.assert_problem(413, "PAYLOAD_TOO_LARGE");
    let raw = app
        .client
        .post(app.url("/api/v1/users/1/balance/charges"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("amount=10")
        .send()
        .await
        .unwrap();
    crate::helpers::Reply::read(raw)
        .await
        .assert_problem(415, "UNSUPPORTED_MEDIA_TYPE");
    let r = app.get("/api/v1/users/1/balance", Some(&token)).await;
    assert_eq!(r.body["balance"], 0);
}

#[tokio::test]
async fn health_answers_and_request_ids_are_echoed() {
    let app = spawn_app().await;
    let r = app.get("/health/live", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.get("/health/ready", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));
    let r = app
        .send(
            Method::GET,
            "/health/live",
            None,
            None,
            &[("X-Request-Id", "trace-abc-123")],
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("trace-abc-123"));
}

#[tokio::test]
async fn readiness_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(app.db.admin_url())
        .await
        .unwrap();
    // refuse new connections to the app's database, then cut the open ones
    let db = app.db.name().to_string();
    diesel::sql_query(format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS false"))
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let r = app.get("/health/ready", None).await;
    r.assert_problem(503, "NOT_READY");
    let r = app
        .get("/api/v1/users/1/balance", Some(&app.user_token(1)))
        .await;
    assert!(r.status.is_server_error());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(
        !r.body.to_string().contains("postgres"),
        "no internals shown: {}",
        r.body
    );
    diesel::sql_query(format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS true"))
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_openapi_document_and_swagger_ui_are_served() {
    let app = spawn_app().await;
    let r = app.get("/api-docs/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
    assert!(r.body["paths"]["/api/v1/users/{user_id}/balance/charges"]["post"].is_object());
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("swagger"));
}

// A newcomer typing `/docs` (no slash) or `/` lands on Swagger UI, not a JSON 404.
#[tokio::test]
async fn docs_without_the_slash_and_the_root_lead_to_swagger_ui() {
    let app = spawn_app().await;
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, status) in [
        ("/docs", StatusCode::PERMANENT_REDIRECT),
        ("/", StatusCode::TEMPORARY_REDIRECT),
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let r = no_follow
                .request(method.clone(), app.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), status, "{method} {path}");
            assert_eq!(
                r.headers().get("location").and_then(|v| v.to_str().ok()),
                Some("/docs/"),
                "{method} {path}"
            );
        }
        // a browser (or curl -L) that follows it gets the page
        let page = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert_eq!(page.url().path(), "/docs/");
        assert!(page.text().await.unwrap().contains("swagger"), "{path}");
    }
    // other unknown paths are still a problem+json 404
    app.get("/doc", None).await.assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn metrics_show_requests_by_route_template_pool_use_and_outbox_backlog() {
    let app = spawn_app().await;
    for user in [1, 2, 3] {
        app.get(
            &format!("/api/v1/users/{user}/balance"),
            Some(&app.user_token(user)),
        )
        .await;
    }
    app.get("/api/v1/users/1/balance", None).await;
    app.get("/no/such/path", None).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.starts_with(needle))
            .map(str::to_string)
    };
    assert_eq!(
        line(r#"commerce_http_requests_total{method="GET",route="/api/v1/users/{user_id}/balance",status="200"}"#)
            .as_deref()
            .and_then(|l| l.rsplit(' ').next()),
        Some("3"),
        "{text}"
    );
    assert!(line(r#"commerce_http_requests_total{method="GET",route="/api/v1/users/{user_id}/balance",status="401"} 1"#).is_some());
    assert!(
        line(r#"commerce_http_requests_total{method="GET",route="unmatched",status="404"} 1"#)
            .is_some()
    );
    assert!(line(r#"commerce_http_request_duration_seconds_count{method="GET",route="/api/v1/users/{user_id}/balance"} 4"#).is_some());
    assert!(
        // every pool of the process: POOL_SIZE 10 split over the HTTP workers, plus the
        // background jobs' pool of 4
        line(r#"commerce_db_pool_connections{state="max"} 14"#).is_some(),
        "{text}"
    );
    assert!(
        line(r#"commerce_outbox_events{status="PENDING"} 0"#).is_some(),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_count_business_events_once_each_and_refusals_not_at_all() {
    use crate::helpers::{create_coupon, issue_coupon};
    let app = spawn_app().await;
    let scrape = || async {
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let count = |text: &str, kind: &str| -> u64 {
        let prefix = format!(r#"commerce_events_total{{kind="{kind}"}} "#);
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map_or(0, |n| n.parse().unwrap())
    };
    let user = 7;
    let token = app.user_token(user);
    let product = app.product_id("Counted widget", 1_000, 10).await;
    app.charge(user, 10_000).await;
    let items = json!([{"product_id": product, "quantity": 1}]);

    // place, then pay
    let r = app
        .post(
            "/api/v1/orders",
            Some(&token),
            &json!({"user_id": user, "items": items}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = r.body["id"].as_i64().unwrap();
    let r = app
        .post(
            &format!("/api/v1/orders/{order}/payment"),
            Some(&token),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let text = scrape().await;
    assert!(
        text.lines()
            .any(|l| l == r#"commerce_events_total{kind="order_paid"} 1"#),
        "{text}"
    );
    assert_eq!(count(&text, "order_placed"), 1, "{text}");
    assert_eq!(count(&text, "charge_approved"), 1, "{text}");

    // a refused payment counts nothing; a cancel counts once
    let r = app
        .post(
            &format!("/api/v1/orders/{order}/payment"),
            Some(&token),
            &json!({}),
        )
        .await;
    r.assert_problem(409, "INVALID_ORDER_STATE");
    let r = app
        .post(
            &format!("/api/v1/orders/{order}/cancel"),
            Some(&token),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // pay_now places and pays in one step
    let r = app
        .post(
            "/api/v1/orders",
            Some(&token),
            &json!({"user_id": user, "items": items, "pay_now": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // issue_to users and first-come issues are each an issued coupon
    let coupon = create_coupon(&app, json!({"issue_to": [8, 9, 9]})).await;
    assert_eq!(coupon["issued_quantity"], 2);
    let r = issue_coupon(&app, coupon["id"].as_i64().unwrap(), user).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = issue_coupon(&app, coupon["id"].as_i64().unwrap(), user).await;
    r.assert_problem(409, "COUPON_ALREADY_ISSUED");

    let text = scrape().await;
    assert_eq!(count(&text, "order_placed"), 2, "{text}");
    assert_eq!(count(&text, "order_paid"), 2, "{text}");
    assert_eq!(count(&text, "order_cancelled"), 1, "{text}");
    assert_eq!(count(&text, "charge_approved"), 1, "{text}");
    assert_eq!(count(&text, "coupon_issued"), 3, "{text}");
}
