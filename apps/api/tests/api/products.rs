//! Products and stock: every status and code of the "Products and stock" part of API.md
//! (except `GET /products/popular`, which belongs to the orders slice).

use crate::helpers::{spawn_app, Reply, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ADMIN_PRODUCTS: &str = "/api/v1/admin/products";

async fn create_raw(app: &TestApp, body: Value) -> Reply {
    app.post(ADMIN_PRODUCTS, Some(&app.admin_token()), &body)
        .await
}

async fn adjust(app: &TestApp, id: i64, body: Value) -> Reply {
    app.post(
        &format!("/api/v1/admin/products/{id}/stock"),
        Some(&app.admin_token()),
        &body,
    )
    .await
}

async fn all_products(app: &TestApp) -> Vec<Value> {
    app.get_all("/api/v1/products", None, 100).await
}

#[tokio::test]
async fn an_admin_creates_a_product_201_with_its_location() {
    let app = spawn_app().await;
    let r = create_raw(
        &app,
        json!({"name": "Mechanical keyboard", "price": 89_000, "stock": 50}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert!(id > 0);
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/products/{id}").as_str())
    );
    assert_eq!(r.body["name"], "Mechanical keyboard");
    assert_eq!(r.body["price"], 89_000);
    assert_eq!(r.body["stock"], 50);
    let created_at = r.body["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok() && created_at.ends_with('Z'),
        "{created_at}"
    );
    // exactly API.md's Product
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "id",
            "max_per_user",
            "name",
            "price",
            "stock",
            "updated_at"
        ],
        "{keys:?}"
    );
    assert_eq!(r.body["max_per_user"], serde_json::Value::Null);

    // the Location answers with the same product, to anyone
    let location = r.header("location").unwrap().to_string();
    let fetched = app.get(&location, None).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, r.body);
}

#[tokio::test]
async fn anyone_reads_products_and_an_unknown_one_is_404() {
    let app = spawn_app().await;
    let a = app.create_product("a", 1_000, 1).await;
    let b = app.create_product("b", 2_000, 0).await;

    let r = app.get("/api/v1/products", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"], json!([a, b]));
    assert_eq!(r.body["next_cursor"], Value::Null);
    for token in [app.user_token(3), app.admin_token()] {
        let r = app.get("/api/v1/products", Some(&token)).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let id = b["id"].as_i64().unwrap();
    assert_eq!(app.product(id).await, b);

    let r = app.get("/api/v1/products/999999", None).await;
    r.assert_problem(404, "PRODUCT_NOT_FOUND");
    assert_eq!(r.body["product_ids"], json!([999_999]));
    for bad in ["0", "-1", "abc", "99999999999999999999"] {
        app.get(&format!("/api/v1/products/{bad}"), None)
            .await
            .assert_problem(400, "VALIDATION_ERROR");
    }
}

#[tokio::test]
async fn admin_endpoints_are_401_without_a_token_and_403_for_users() {
    let app = spawn_app().await;
    let id = app.product_id("p", 100, 5).await;
    let body = json!({"name": "x", "price": 1, "stock": 1});
    let stock_url = format!("/api/v1/admin/products/{id}/stock");
    for token in [None, Some("not-a-jwt")] {
        app.post(ADMIN_PRODUCTS, token, &body)
            .await
            .assert_problem(401, "UNAUTHORIZED");
        app.post(&stock_url, token, &json!({"delta": 1}))
            .await
            .assert_problem(401, "UNAUTHORIZED");
    }
    let user = app.user_token(1);
    app.post(ADMIN_PRODUCTS, Some(&user), &body)
        .await
        .assert_problem(403, "FORBIDDEN");
    app.post(&stock_url, Some(&user), &json!({"delta": 1}))
        .await
        .assert_problem(403, "FORBIDDEN");
    // auth is checked before the body
    app.post(ADMIN_PRODUCTS, None, &json!({"price": "nope"}))
        .await
        .assert_problem(401, "UNAUTHORIZED");
    app.post(&stock_url, Some(&user), &json!({"delta": 0}))
        .await
        .assert_problem(403, "FORBIDDEN");
    // nothing changed
    let all = all_products(&app).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["stock"], 5);
}

#[tokio::test]
async fn out_of_range_fields_are_422_naming_each_field_and_create_nothing() {
    let app = spawn_app().await;
    let cases = [
        (json!({"name": "x", "price": 0, "stock": 1}), vec!["price"]),
        (json!({"name": "x", "price": -5, "stock": 1}), vec!["price"]),
        (
            json!({"name": "x", "price": 100_000_001, "stock": 1}),
            vec!["price"],
        ),
        (json!({"name": "x", "price": 1, "stock": -1}), vec!["stock"]),
        (
            json!({"name": "x", "price": 1, "stock": 1_000_000_001}),
            vec!["stock"],
        ),
        (json!({"name": "", "price": 1, "stock": 1}), vec!["name"]),
        (
            json!({"name": "  \t ", "price": 1, "stock": 1}),
            vec!["name"],
        ),
        (
            json!({"name": "x".repeat(201), "price": 1, "stock": 1}),
            vec!["name"],
        ),
        (
            json!({"name": "a\u{0}b", "price": 1, "stock": 1}),
            vec!["name"],
        ),
        (
            json!({"name": " ", "price": 0, "stock": -1}),
            vec!["name", "price", "stock"],
        ),
    ];
    for (body, fields) in cases {
        let r = create_raw(&app, body.clone()).await;
        r.assert_problem(422, "VALIDATION_ERROR");
        let named: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{body}");
    }
    assert!(all_products(&app).await.is_empty());

    // the bounds themselves are accepted
    for body in [
        json!({"name": "x", "price": 1, "stock": 0}),
        json!({"name": "가".repeat(200), "price": 100_000_000, "stock": 1_000_000_000}),
    ] {
        let r = create_raw(&app, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    assert_eq!(all_products(&app).await.len(), 2);
}

#[tokio::test]
async fn wrongly_typed_missing_and_malformed_bodies_are_validation_errors() {
    let app = spawn_app().await;
    for body in [
        json!({"name": "x", "price": "100", "stock": 1}),
        json!({"name": "x", "price": 1.5, "stock": 1}),
        json!({"name": "x", "price": 1, "stock": null}),
        json!({"name": 5, "price": 1, "stock": 1}),
        json!({"name": "x", "price": 1}),
        json!({"price": 1, "stock": 1}),
        json!({"name": "x", "price": 1e20, "stock": 1}),
        json!([1, 2, 3]),
    ] {
        create_raw(&app, body)
            .await
            .assert_problem(422, "VALIDATION_ERROR");
    }
    let raw = app
        .client
        .post(app.url(ADMIN_PRODUCTS))
        .bearer_auth(app.admin_token())
        .header("content-type", "application/json")
        .body("{\"name\": \"x\",")
        .send()
        .await
        .unwrap();
    Reply::read(raw)
        .await
        .assert_problem(400, "VALIDATION_ERROR");
    let raw = app
        .client
        .post(app.url(ADMIN_PRODUCTS))
        .bearer_auth(app.admin_token())
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    Reply::read(raw)
        .await
        .assert_problem(415, "UNSUPPORTED_MEDIA_TYPE");
    assert!(all_products(&app).await.is_empty());
}

#[tokio::test]
async fn restocks_and_write_offs_answer_the_product_and_never_go_below_zero() {
    let app = spawn_app().await;
    let id = app.product_id("p", 500, 5).await;

    let r = adjust(&app, id, json!({"delta": 7})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["stock"], 12);
    assert_eq!(r.body["price"], 500);
    let r = adjust(&app, id, json!({"delta": -12})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["stock"], 0);

    let r = adjust(&app, id, json!({"delta": -1})).await;
    r.assert_problem(409, "OUT_OF_STOCK");
    assert_eq!(r.body["product_ids"], json!([id]));
    assert_eq!(app.product(id).await["stock"], 0);

    let r = adjust(&app, 999_999, json!({"delta": 1})).await;
    r.assert_problem(404, "PRODUCT_NOT_FOUND");
    assert_eq!(r.body["product_ids"], json!([999_999]));

    for body in [
        json!({"delta": 0}),
        json!({"delta": "5"}),
        json!({"delta": 1.5}),
        json!({}),
        json!({"delta": 1_000_000_001}),
        json!({"delta": -1_000_000_001}),
    ] {
        adjust(&app, id, body.clone())
            .await
            .assert_problem(422, "VALIDATION_ERROR");
    }
    // a restock may reach 1,000,000,000 but not pass it
    let r = adjust(&app, id, json!({"delta": 1_000_000_000})).await;
    assert_eq!(r.body["stock"], 1_000_000_000, "{}", r.body);
    let r = adjust(&app, id, json!({"delta": 1})).await;
    r.assert_problem(422, "VALIDATION_ERROR");
    assert_eq!(r.body["errors"][0]["field"], "delta");
    app.post(
        "/api/v1/admin/products/abc/stock",
        Some(&app.admin_token()),
        &json!({"delta": 1}),
    )
    .await
    .assert_problem(400, "VALIDATION_ERROR");
    assert_eq!(app.product(id).await["stock"], 1_000_000_000);
}

#[tokio::test]
async fn products_page_in_ascending_id_with_an_opaque_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(app.product_id(&format!("p{i}"), i * 100, i).await);
    }
    let ids_of = |r: &Reply| -> Vec<i64> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    let first = app.get("/api/v1/products?limit=2", None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(ids_of(&first), ids[..2]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let second = app
        .get(&format!("/api/v1/products?limit=2&cursor={cursor}"), None)
        .await;
    assert_eq!(ids_of(&second), ids[2..4]);
    let cursor = second.body["next_cursor"].as_str().unwrap().to_string();
    let third = app
        .get(&format!("/api/v1/products?limit=2&cursor={cursor}"), None)
        .await;
    assert_eq!(ids_of(&third), ids[4..]);
    assert_eq!(third.body["next_cursor"], Value::Null);

    // default limit 20 covers all five, no next page
    let all = app.get("/api/v1/products", None).await;
    assert_eq!(ids_of(&all), ids);
    assert_eq!(all.body["next_cursor"], Value::Null);
    let followed: Vec<i64> = app
        .get_all("/api/v1/products", None, 1)
        .await
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(followed, ids);

    for bad in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "cursor=garbage",
        "cursor=",
    ] {
        app.get(&format!("/api/v1/products?{bad}"), None)
            .await
            .assert_problem(400, "VALIDATION_ERROR");
    }
}

#[tokio::test]
async fn an_idempotent_create_replays_the_201_and_its_location_without_a_second_product() {
    let app = spawn_app().await;
    let body = json!({"name": "once", "price": 100, "stock": 1});
    let token = app.admin_token();
    let first = app
        .send(
            Method::POST,
            ADMIN_PRODUCTS,
            Some(&token),
            Some(&body),
            &[("Idempotency-Key", "create-once")],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = app
        .send(
            Method::POST,
            ADMIN_PRODUCTS,
            Some(&token),
            Some(&body),
            &[("Idempotency-Key", "create-once")],
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(all_products(&app).await.len(), 1);
}

// Invariant: stock never goes below zero: 30 concurrent write-offs of 1 unit from a
// product with 20 in stock: exactly 20 succeed, 10 are 409 OUT_OF_STOCK, stock ends at 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_write_offs_succeed_exactly_as_often_as_there_is_stock() {
    let app = spawn_app().await;
    let id = app.product_id("scarce", 1_000, 20).await;
    let replies =
        futures::future::join_all((0..30).map(|_| adjust(&app, id, json!({"delta": -1})))).await;
    let ok = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let refused: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .collect();
    for r in &refused {
        r.assert_problem(409, "OUT_OF_STOCK");
    }
    assert_eq!((ok, refused.len()), (20, 10));
    assert_eq!(app.product(id).await["stock"], 0);
}

#[tokio::test]
async fn the_openapi_document_describes_the_catalogue_and_cart() {
    let app = spawn_app().await;
    let r = app.get("/api-docs/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = &r.body["paths"];
    for (path, method) in [
        ("/api/v1/products", "get"),
        ("/api/v1/products/{id}", "get"),
        ("/api/v1/admin/products", "post"),
        ("/api/v1/admin/products/{id}/stock", "post"),
        ("/api/v1/users/{user_id}/cart", "get"),
        ("/api/v1/users/{user_id}/cart/items/{product_id}", "put"),
        ("/api/v1/users/{user_id}/cart/items/{product_id}", "delete"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    let schemas = &r.body["components"]["schemas"];
    for name in ["ProductView", "CartView", "CreateProductRequest"] {
        assert!(schemas[name].is_object(), "schema {name} missing");
    }
}
