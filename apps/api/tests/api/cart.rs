//! The cart: every status and code of the "Cart" part of API.md.

use crate::helpers::{spawn_app, Reply, TestApp};
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn item_url(user: i64, product: i64) -> String {
    format!("/api/v1/users/{user}/cart/items/{product}")
}

async fn put_item(app: &TestApp, user: i64, product: i64, quantity: Value) -> Reply {
    app.put(
        &item_url(user, product),
        Some(&app.user_token(user)),
        &json!({ "quantity": quantity }),
    )
    .await
}

async fn cart_of(app: &TestApp, user: i64) -> Value {
    let r = app
        .get(
            &format!("/api/v1/users/{user}/cart"),
            Some(&app.user_token(user)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn a_user_who_never_added_anything_has_an_empty_cart() {
    let app = spawn_app().await;
    assert_eq!(
        cart_of(&app, 5).await,
        json!({"user_id": 5, "items": [], "total": 0})
    );
}

#[tokio::test]
async fn put_sets_the_quantity_and_answers_the_priced_cart() {
    let app = spawn_app().await;
    let a = app.product_id("Keyboard", 89_000, 10).await;
    let b = app.product_id("Mouse", 35_000, 10).await;

    let r = put_item(&app, 1, b, json!(2)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 70_000);
    let r = put_item(&app, 1, a, json!(1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({
            "user_id": 1,
            "items": [
                {"product_id": a, "name": "Keyboard", "price": 89_000, "quantity": 1, "subtotal": 89_000},
                {"product_id": b, "name": "Mouse", "price": 35_000, "quantity": 2, "subtotal": 70_000},
            ],
            "total": 159_000
        })
    );
    // PUT sets, it does not add
    let r = put_item(&app, 1, b, json!(5)).await;
    assert_eq!(r.body["items"][1]["quantity"], 5);
    assert_eq!(r.body["items"][1]["subtotal"], 175_000);
    assert_eq!(r.body["total"], 264_000);
    assert_eq!(cart_of(&app, 1).await, r.body);
    // the quantity is not limited by stock (the cart reserves nothing)
    let r = put_item(&app, 1, b, json!(1_000)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 89_000 + 35_000_000);
    // and it is this user's cart only
    assert_eq!(cart_of(&app, 2).await["items"], json!([]));
}

// Invariant: a cart always shows current prices: subtotals and total follow a price change.
#[tokio::test]
async fn totals_use_the_current_prices() {
    let app = spawn_app().await;
    let a = app.product_id("a", 1_000, 10).await;
    let b = app.product_id("b", 100_000_000, 10).await;
    put_item(&app, 3, a, json!(3)).await;
    put_item(&app, 3, b, json!(1_000)).await;
    assert_eq!(cart_of(&app, 3).await["total"], 3_000 + 100_000_000_000_i64);

    // no endpoint changes prices yet: change the row underneath the cart
    let pool = app.pool();
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query(format!("UPDATE products SET price = 1250 WHERE id = {a}"))
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let cart = cart_of(&app, 3).await;
    assert_eq!(cart["items"][0]["price"], 1_250);
    assert_eq!(cart["items"][0]["subtotal"], 3_750);
    assert_eq!(cart["total"], 3_750 + 100_000_000_000_i64);
}

#[tokio::test]
async fn an_unknown_product_is_404_and_changes_nothing() {
    let app = spawn_app().await;
    let a = app.product_id("a", 100, 1).await;
    put_item(&app, 1, a, json!(1)).await;
    let r = put_item(&app, 1, 999_999, json!(1)).await;
    r.assert_problem(404, "PRODUCT_NOT_FOUND");
    assert_eq!(r.body["product_ids"], json!([999_999]));
    let cart = cart_of(&app, 1).await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 1);
    assert_eq!(cart["total"], 100);
}

#[tokio::test]
async fn quantities_outside_1_to_1000_and_bad_bodies_are_validation_errors() {
    let app = spawn_app().await;
    let a = app.product_id("a", 100, 1).await;
    for q in [json!(0), json!(-1), json!(1_001), json!(i64::MAX)] {
        let r = put_item(&app, 1, a, q.clone()).await;
        r.assert_problem(422, "VALIDATION_ERROR");
        assert_eq!(r.body["errors"][0]["field"], "quantity", "{q}");
    }
    for q in [json!("2"), json!(1.5), json!(null)] {
        put_item(&app, 1, a, q)
            .await
            .assert_problem(422, "VALIDATION_ERROR");
    }
    app.put(&item_url(1, a), Some(&app.user_token(1)), &json!({}))
        .await
        .assert_problem(422, "VALIDATION_ERROR");
    let raw = app
        .client
        .put(app.url(&item_url(1, a)))
        .bearer_auth(app.user_token(1))
        .header("content-type", "application/json")
        .body("{\"quantity\":")
        .send()
        .await
        .unwrap();
    Reply::read(raw)
        .await
        .assert_problem(400, "VALIDATION_ERROR");
    for bad in ["0", "-2", "abc"] {
        app.put(
            &format!("/api/v1/users/1/cart/items/{bad}"),
            Some(&app.user_token(1)),
            &json!({"quantity": 1}),
        )
        .await
        .assert_problem(400, "VALIDATION_ERROR");
    }
    assert_eq!(cart_of(&app, 1).await["items"], json!([]));
    // the bounds themselves are accepted
    assert_eq!(put_item(&app, 1, a, json!(1)).await.status, StatusCode::OK);
    assert_eq!(
        put_item(&app, 1, a, json!(1_000)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn delete_is_204_whether_or_not_the_item_was_there() {
    let app = spawn_app().await;
    let a = app.product_id("a", 100, 1).await;
    let b = app.product_id("b", 200, 1).await;
    put_item(&app, 1, a, json!(1)).await;
    put_item(&app, 1, b, json!(2)).await;
    let token = app.user_token(1);
    for _ in 0..2 {
        let r = app.delete(&item_url(1, a), Some(&token)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(r.body, Value::Null);
    }
    // a product that does not exist at all: nothing to remove, still 204
    let r = app.delete(&item_url(1, 999_999), Some(&token)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let cart = cart_of(&app, 1).await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 1);
    assert_eq!(cart["items"][0]["product_id"], b);
    assert_eq!(cart["total"], 400);
}

#[tokio::test]
async fn users_reach_only_their_own_cart_and_admins_reach_any() {
    let app = spawn_app().await;
    let a = app.product_id("a", 100, 1).await;
    let cart = "/api/v1/users/1/cart";
    let item = item_url(1, a);
    let body = json!({"quantity": 1});
    for token in [None, Some("not-a-jwt")] {
        app.get(cart, token)
            .await
            .assert_problem(401, "UNAUTHORIZED");
        app.put(&item, token, &body)
            .await
            .assert_problem(401, "UNAUTHORIZED");
        app.delete(&item, token)
            .await
            .assert_problem(401, "UNAUTHORIZED");
    }
    let other = app.user_token(2);
    app.get(cart, Some(&other))
        .await
        .assert_problem(403, "FORBIDDEN");
    app.put(&item, Some(&other), &body)
        .await
        .assert_problem(403, "FORBIDDEN");
    app.delete(&item, Some(&other))
        .await
        .assert_problem(403, "FORBIDDEN");
    assert_eq!(cart_of(&app, 1).await["items"], json!([]));

    let admin = app.admin_token();
    let r = app.put(&item, Some(&admin), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["user_id"], 1);
    let r = app.get(cart, Some(&admin)).await;
    assert_eq!(r.body["total"], 100);
    assert_eq!(
        app.delete(&item, Some(&admin)).await.status,
        StatusCode::NO_CONTENT
    );
    for bad in ["0", "-3", "abc"] {
        app.get(&format!("/api/v1/users/{bad}/cart"), Some(&admin))
            .await
            .assert_problem(400, "VALIDATION_ERROR");
    }
    // a wrong method is a problem too
    app.request(reqwest::Method::POST, &item, Some(&admin), Some(&body))
        .await
        .assert_problem(405, "METHOD_NOT_ALLOWED");
}
