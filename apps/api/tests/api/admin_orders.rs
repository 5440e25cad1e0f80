//! Admin order search, `GET /admin/orders` (API.md, Orders and payment; issue 13): each
//! filter and their combinations, newest first, keyset paging, and what is refused.

use crate::helpers::{spawn_app, Reply, TestApp};
use crate::shop::{assert_names_field, cancel, ids, place_paid, place_pending};
use reqwest::StatusCode;
use serde_json::Value;

const SEARCH: &str = "/api/v1/admin/orders";

async fn search(app: &TestApp, query: &str) -> Reply {
    app.get(&format!("{SEARCH}?{query}"), Some(&app.admin_token()))
        .await
}

/// The ids of every order matching `query`, following every page of `limit`.
async fn found(app: &TestApp, query: &str, limit: u32) -> Vec<i64> {
    let path = if query.is_empty() {
        SEARCH.to_string()
    } else {
        format!("{SEARCH}?{query}")
    };
    ids(&app.get_all(&path, Some(&app.admin_token()), limit).await)
}

/// A timestamp for a query string (`+` of an offset escaped).
fn q(t: &str) -> String {
    t.replace('+', "%2B")
}

struct Shop {
    app: TestApp,
    /// in the order placed: (id, user, status, created_at)
    orders: Vec<(i64, i64, &'static str, String)>,
}

impl Shop {
    fn ids(&self, keep: impl Fn(usize, i64, &str) -> bool) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .orders
            .iter()
            .enumerate()
            .filter(|(i, (_, user, status, _))| keep(*i, *user, status))
            .map(|(_, (id, ..))| *id)
            .collect();
        ids.reverse(); // newest first
        ids
    }

    fn created(&self, i: usize) -> &str {
        &self.orders[i].3
    }
}

/// Seven orders of three users in every status, placed one after another.
async fn shop() -> Shop {
    let app = spawn_app().await;
    let p = app.product_id("A", 100, 1_000).await;
    for user in [1, 2, 3] {
        app.charge(user, 10_000).await;
    }
    let mut orders = Vec::new();
    for (user, status) in [
        (1, "PENDING"),
        (2, "PAID"),
        (1, "CANCELLED"),
        (3, "PENDING"),
        (1, "PAID"),
        (2, "PENDING"),
        (1, "PENDING"),
    ] {
        let order: Value = match status {
            "PENDING" => place_pending(&app, user, &[(p, 1)]).await,
            "PAID" => place_paid(&app, user, &[(p, 1)], None).await,
            _ => {
                let o = place_paid(&app, user, &[(p, 1)], None).await;
                let r = cancel(&app, &app.user_token(user), o["id"].as_i64().unwrap()).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                o
            }
        };
        orders.push((
            order["id"].as_i64().unwrap(),
            user,
            status,
            order["created_at"].as_str().unwrap().to_string(),
        ));
    }
    Shop { app, orders }
}

// Invariant: each filter keeps exactly the orders it names (status, user, created_from
// inclusive, created_to exclusive), filters combine with AND, and the answer is newest
// first, with each order in full (as GET /orders/{id} shows it).
#[tokio::test]
async fn each_filter_and_their_combinations_keep_exactly_the_matching_orders_newest_first() {
    let shop = shop().await;
    let app = &shop.app;
    let all = shop.ids(|_, _, _| true);
    assert_eq!(found(app, "", 100).await, all);
    for status in ["PENDING", "PAID", "CANCELLED"] {
        assert_eq!(
            found(app, &format!("status={status}"), 100).await,
            shop.ids(|_, _, s| s == status),
            "status={status}"
        );
    }
    for user in [1, 2, 3, 4] {
        assert_eq!(
            found(app, &format!("user_id={user}"), 100).await,
            shop.ids(|_, u, _| u == user),
            "user_id={user}"
        );
    }
    // created_from is inclusive, created_to exclusive: [2, 5) are orders 2, 3, 4
    let from = q(shop.created(2));
    let to = q(shop.created(5));
    assert_eq!(
        found(app, &format!("created_from={from}"), 100).await,
        shop.ids(|i, _, _| i >= 2)
    );
    assert_eq!(
        found(app, &format!("created_to={to}"), 100).await,
        shop.ids(|i, _, _| i < 5)
    );
    assert_eq!(
        found(app, &format!("created_from={from}&created_to={to}"), 100).await,
        shop.ids(|i, _, _| (2..5).contains(&i))
    );
    assert!(
        found(app, &format!("created_from={from}&created_to={from}"), 100)
            .await
            .is_empty(),
        "an empty range"
    );
    // the same instant written with another offset
    let instant = chrono::DateTime::parse_from_rfc3339(shop.created(2)).unwrap();
    let seoul = instant
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    assert!(seoul.ends_with("+09:00"), "{seoul}");
    assert_eq!(
        found(app, &format!("created_from={}", q(&seoul)), 100).await,
        shop.ids(|i, _, _| i >= 2)
    );
    // combinations
    assert_eq!(
        found(app, "status=PENDING&user_id=1", 100).await,
        shop.ids(|_, u, s| u == 1 && s == "PENDING")
    );
    assert_eq!(
        found(
            app,
            &format!("status=PAID&user_id=1&created_from={from}"),
            100
        )
        .await,
        shop.ids(|i, u, s| i >= 2 && u == 1 && s == "PAID")
    );
    assert_eq!(
        found(app, &format!("status=PENDING&created_to={to}"), 100).await,
        shop.ids(|i, _, s| i < 5 && s == "PENDING")
    );
    assert!(found(app, "status=CANCELLED&user_id=2", 100)
        .await
        .is_empty());
    // each order as GET /orders/{id} shows it
    let r = search(app, "user_id=1&status=CANCELLED").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let listed = &r.body["items"][0];
    let one = app
        .get(
            &format!("/api/v1/orders/{}", listed["id"]),
            Some(&app.admin_token()),
        )
        .await;
    assert_eq!(listed, &one.body);
    assert_eq!(r.body["next_cursor"], Value::Null);
}

// Invariant: keyset paging walks every matching order once, newest first, with no
// duplicate and no gap, whatever the page size, and an order placed between two pages
// neither shifts the later pages nor appears in them.
#[tokio::test]
async fn pages_follow_each_other_without_duplicates_or_gaps() {
    let shop = shop().await;
    let app = &shop.app;
    let all = shop.ids(|_, _, _| true);
    for limit in [1, 2, 3, 6, 7, 100] {
        assert_eq!(found(app, "", limit).await, all, "limit={limit}");
    }
    assert_eq!(found(app, "user_id=1", 1).await, shop.ids(|_, u, _| u == 1));
    assert_eq!(
        found(app, "status=PENDING", 2).await,
        shop.ids(|_, _, s| s == "PENDING")
    );

    let first = search(app, "limit=3").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let mut walked = ids(first.body["items"].as_array().unwrap());
    assert_eq!(walked, all[..3]);
    let p = app.product_id("B", 100, 10).await;
    let newer = place_pending(app, 2, &[(p, 1)]).await;
    let mut cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    loop {
        let r = search(app, &format!("limit=3&cursor={cursor}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        walked.extend(ids(r.body["items"].as_array().unwrap()));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(
        walked, all,
        "the new order {} is not in later pages",
        newer["id"]
    );
    assert_eq!(found(app, "", 3).await[0], newer["id"].as_i64().unwrap());
}

// Invariant: a filter the server cannot read is refused naming it (422 for a value,
// 400 for a bad limit or cursor), and only an admin may search.
#[tokio::test]
async fn bad_filters_are_named_and_only_admins_search() {
    let app = spawn_app().await;
    for (query, field) in [
        ("status=SHIPPED", "status"),
        ("status=", "status"),
        ("user_id=0", "user_id"),
        ("user_id=-3", "user_id"),
        ("created_from=2026-01-01T00:00:00", "created_from"),
        ("created_to=2026-01-01T00:00:00", "created_to"),
        ("created_from=2026-01-01", "created_from"),
        ("created_to=yesterday", "created_to"),
    ] {
        let r = search(&app, query).await;
        assert_names_field(&r, field);
    }
    let r = search(&app, "status=SHIPPED&user_id=0&created_from=x").await;
    for field in ["status", "user_id", "created_from"] {
        assert_names_field(&r, field);
    }
    for query in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=not-a-cursor",
        "user_id=abc",
    ] {
        let r = search(&app, query).await;
        assert!(
            r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {} {}",
            r.status,
            r.body
        );
        assert_eq!(r.body["code"], "VALIDATION_ERROR", "{query}: {}", r.body);
    }
    for query in ["limit=0", "limit=101", "cursor=not-a-cursor"] {
        search(&app, query)
            .await
            .assert_problem(400, "VALIDATION_ERROR");
    }
    app.get(SEARCH, Some(&app.user_token(1)))
        .await
        .assert_problem(403, "FORBIDDEN");
    app.get(&format!("{SEARCH}?user_id=1"), Some(&app.user_token(1)))
        .await
        .assert_problem(403, "FORBIDDEN");
    app.get(SEARCH, None)
        .await
        .assert_problem(401, "UNAUTHORIZED");
    let r = app.get(SEARCH, Some(&app.admin_token())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"], serde_json::json!([]));
}

// Invariant (API.md, Conventions): a wrongly typed field is refused with the offending
// field named in `errors`. BUG (reported to the lead): every query parameter that
// `web::Query` cannot parse is named `query` (`error::query_error`), not the parameter,
// so `user_id=abc` or `limit=abc` do not say which parameter is wrong.
#[tokio::test]
async fn a_wrongly_typed_filter_is_named() {
    let app = spawn_app().await;
    for (query, field) in [
        ("user_id=abc", "user_id"),
        ("user_id=", "user_id"),
        ("limit=abc", "limit"),
        // a typo is refused, not ignored
        ("stauts=PAID", "stauts"),
    ] {
        let r = search(&app, query).await;
        assert_eq!(r.body["code"], "VALIDATION_ERROR", "{query}: {}", r.body);
        assert!(
            crate::shop::fields(&r).iter().any(|f| f == field),
            "{query}: expected {field} to be named: {}",
            r.body
        );
    }
}
