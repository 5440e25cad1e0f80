//! Ordering the cart, `POST /orders` with `"from_cart": true` (API.md, Orders and
//! payment; issue 13).

use crate::helpers::{spawn_app, TestApp};
use crate::shop::{
    assert_names_field, balance_of, coupon_for, orders_of, pay, place, product_ids, stock_of,
};
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn put(app: &TestApp, user: i64, product: i64, quantity: i64) {
    let r = app
        .put(
            &format!("/api/v1/users/{user}/cart/items/{product}"),
            Some(&app.user_token(user)),
            &json!({ "quantity": quantity }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// `(product_id, quantity)` of the cart's lines, by product.
async fn cart_lines(app: &TestApp, user: i64) -> Vec<(i64, i64)> {
    let r = app
        .get(
            &format!("/api/v1/users/{user}/cart"),
            Some(&app.user_token(user)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut lines: Vec<(i64, i64)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["product_id"].as_i64().unwrap(),
                i["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    lines.sort_unstable();
    lines
}

/// `(product_id, unit_price, quantity)` of an order's lines, by product.
fn order_lines(order: &Value) -> Vec<(i64, i64, i64)> {
    let mut lines: Vec<(i64, i64, i64)> = order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["product_id"].as_i64().unwrap(),
                l["unit_price"].as_i64().unwrap(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    lines.sort_unstable();
    lines
}

/// No endpoint changes a price on this branch yet (PATCH /admin/products comes with
/// issue 11): change the row, as `cart::totals_use_the_current_prices` does.
async fn set_price(app: &TestApp, product: i64, price: i64) {
    let pool = app.pool();
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query(format!(
        "UPDATE products SET price = {price} WHERE id = {product}"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
}

// Invariant: an order from the cart has exactly the cart's lines at today's prices and
// reserves their stock; the cart keeps them until the order is paid, and paying takes
// out only the order's products.
#[tokio::test]
async fn an_order_from_the_cart_takes_its_lines_at_todays_prices() {
    let app = spawn_app().await;
    let a = app.product_id("Pen", 1_000, 10).await;
    let b = app.product_id("Ink", 300, 10).await;
    let c = app.product_id("Paper", 50, 10).await;
    put(&app, 1, a, 2).await;
    put(&app, 1, b, 3).await;
    set_price(&app, a, 1_250).await;

    let r = place(&app, 1, json!({"user_id": 1, "from_cart": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/orders/{id}").as_str())
    );
    assert_eq!(r.body["status"], "PENDING");
    assert_eq!(order_lines(&r.body), [(a, 1_250, 2), (b, 300, 3)]);
    assert_eq!(r.body["subtotal"], 2 * 1_250 + 3 * 300);
    assert_eq!(r.body["total"], 3_400);
    assert_eq!((stock_of(&app, a).await, stock_of(&app, b).await), (8, 7));
    assert_eq!(
        cart_lines(&app, 1).await,
        [(a, 2), (b, 3)],
        "unpaid: the cart keeps its lines"
    );

    // a product put in the cart after the order stays when the order is paid
    put(&app, 1, c, 1).await;
    app.charge(1, 3_400).await;
    let r = pay(&app, &app.user_token(1), id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(cart_lines(&app, 1).await, [(c, 1)]);
    assert_eq!(balance_of(&app, 1).await, 0);
}

// Invariant: from_cart with pay_now places and pays in one step, with the coupon, and
// the paid products leave the cart; without enough balance nothing is created and the
// cart is untouched.
#[tokio::test]
async fn from_cart_with_pay_now_pays_and_empties_the_cart_of_those_products() {
    let app = spawn_app().await;
    let a = app.product_id("Tea", 2_000, 10).await;
    let b = app.product_id("Honey", 5_000, 10).await;
    let coupon = coupon_for(&app, "PERCENT", 10, &[2]).await;
    put(&app, 2, a, 3).await;
    put(&app, 2, b, 1).await;
    app.charge(2, 9_899).await;
    let body = json!({"user_id": 2, "from_cart": true, "coupon_id": coupon, "pay_now": true});
    place(&app, 2, body.clone())
        .await
        .assert_problem(409, "INSUFFICIENT_BALANCE");
    assert_eq!(cart_lines(&app, 2).await, [(a, 3), (b, 1)]);
    assert_eq!((stock_of(&app, a).await, stock_of(&app, b).await), (10, 10));
    assert!(orders_of(&app, 2).await.is_empty());

    app.charge(2, 1).await;
    let r = place(&app, 2, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "PAID");
    assert_eq!(order_lines(&r.body), [(a, 2_000, 3), (b, 5_000, 1)]);
    assert_eq!(
        (
            r.body["subtotal"].as_i64(),
            r.body["discount"].as_i64(),
            r.body["total"].as_i64()
        ),
        (Some(11_000), Some(1_100), Some(9_900))
    );
    assert_eq!(r.body["coupon_id"], coupon);
    assert!(cart_lines(&app, 2).await.is_empty());
    assert_eq!(balance_of(&app, 2).await, 0);
    assert_eq!((stock_of(&app, a).await, stock_of(&app, b).await), (7, 9));
}

// Invariant: the body says where the lines come from exactly once: an empty cart is 422
// naming from_cart, items together with from_cart is 422 naming from_cart, neither is
// 422 naming items; nothing is created.
#[tokio::test]
async fn an_empty_cart_and_ambiguous_bodies_are_422() {
    let app = spawn_app().await;
    let a = app.product_id("A", 100, 10).await;
    for (body, field) in [
        (json!({"user_id": 3, "from_cart": true}), "from_cart"),
        (
            json!({"user_id": 3, "from_cart": true, "pay_now": true}),
            "from_cart",
        ),
        (
            json!({"user_id": 3, "from_cart": true, "items": [{"product_id": a, "quantity": 1}]}),
            "from_cart",
        ),
        (json!({"user_id": 3}), "items"),
        (json!({"user_id": 3, "from_cart": false}), "items"),
        (json!({"user_id": 3, "from_cart": "yes"}), "from_cart"),
    ] {
        let r = place(&app, 3, body.clone()).await;
        assert_names_field(&r, field);
    }
    put(&app, 3, a, 1).await;
    let r = place(
        &app,
        3,
        json!({"user_id": 3, "from_cart": true, "items": [{"product_id": a, "quantity": 1}]}),
    )
    .await;
    assert_names_field(&r, "from_cart");
    // another user's cart
    place(&app, 3, json!({"user_id": 4, "from_cart": true}))
        .await
        .assert_problem(403, "FORBIDDEN");
    assert!(orders_of(&app, 3).await.is_empty());
    assert_eq!(stock_of(&app, a).await, 10);
}

// Invariant: a cart line asking for more than is in stock refuses the whole order with
// 409 OUT_OF_STOCK naming that product; nothing is reserved and the cart is unchanged.
#[tokio::test]
async fn a_cart_line_out_of_stock_refuses_the_order_naming_it() {
    let app = spawn_app().await;
    let a = app.product_id("Plenty", 100, 10).await;
    let b = app.product_id("Scarce", 100, 2).await;
    put(&app, 5, a, 4).await;
    put(&app, 5, b, 3).await;
    app.charge(5, 10_000).await;
    for pay_now in [false, true] {
        let r = place(
            &app,
            5,
            json!({"user_id": 5, "from_cart": true, "pay_now": pay_now}),
        )
        .await;
        r.assert_problem(409, "OUT_OF_STOCK");
        assert_eq!(product_ids(&r), [b]);
    }
    assert_eq!((stock_of(&app, a).await, stock_of(&app, b).await), (10, 2));
    assert_eq!(cart_lines(&app, 5).await, [(a, 4), (b, 3)]);
    assert!(orders_of(&app, 5).await.is_empty());
    assert_eq!(balance_of(&app, 5).await, 10_000);
}

// Invariant: a cart of more lines than an order may have (50) is refused as 422 naming
// from_cart, not placed in part.
#[tokio::test]
async fn a_cart_of_more_than_50_products_is_422_naming_from_cart() {
    let app = spawn_app().await;
    for i in 0..51 {
        let p = app.product_id(&format!("P{i}"), 10, 5).await;
        put(&app, 6, p, 1).await;
    }
    let r = place(&app, 6, json!({"user_id": 6, "from_cart": true})).await;
    r.assert_problem(422, "VALIDATION_ERROR");
    assert!(
        crate::shop::fields(&r)
            .iter()
            .any(|f| f.starts_with("from_cart")),
        "{}",
        r.body
    );
    assert!(orders_of(&app, 6).await.is_empty());
}
