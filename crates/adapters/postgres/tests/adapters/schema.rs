//! What only PostgreSQL adds to the port contract: the schema refuses what the ports
//! must never write (a negative stock slot, more issued than total, a cap on a FIXED coupon,
//! one order using two coupons, history changed), so a bug in Rust cannot break an
//! invariant; and reads join the rows of today (a cart shows current prices).

use crate::ports::stores;
use conformance::fixtures::{charge, coupon, now, orders, place_with, product, CouponSpec};
use conformance::Stores;
use coupon::{Discount, DiscountType};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::RunQueryDsl;
use kernel::testing::uid;
use order::cart::CartQuantity;
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::PgPool;

/// A connection pool on the database behind `s`.
pub(crate) fn pool(s: &Stores) -> PgPool {
    s.keep_alive
        .downcast_ref::<TestDatabase>()
        .expect("the PostgreSQL stores keep their database")
        .pool(1)
}

/// Runs `sql`; the error PostgreSQL answered, if any.
async fn run(pool: &PgPool, sql: &str) -> Result<usize, DieselError> {
    let mut conn = pool.get().await.expect("a connection");
    diesel::sql_query(sql).execute(&mut conn).await
}

fn is_check(r: &Result<usize, DieselError>) -> bool {
    matches!(
        r,
        Err(DieselError::DatabaseError(
            DatabaseErrorKind::CheckViolation,
            _
        ))
    )
}

// Invariant: the schema refuses a negative slot and products outside the domain's
// ranges (price, name, purchase limit).
#[tokio::test]
async fn the_schema_refuses_negative_stock_and_invalid_products() {
    let s = stores().await;
    let pool = pool(&s);
    let p = product(&s, 100, 1).await;
    let r = run(
        &pool,
        &format!("UPDATE stock_slots SET units = units - 2 WHERE product_id = {p}"),
    )
    .await;
    assert!(is_check(&r), "{r:?}");
    for bad in [
        "INSERT INTO products (name, price, created_at, updated_at) VALUES ('x', 0, now(), now())",
        "INSERT INTO products (name, price, created_at, updated_at) VALUES ('x', 100000001, now(), now())",
        "INSERT INTO products (name, price, created_at, updated_at) VALUES ('   ', 1, now(), now())",
        "INSERT INTO products (name, price, max_per_user, created_at, updated_at) VALUES ('x', 1, 0, now(), now())",
        "INSERT INTO products (name, price, max_per_user, created_at, updated_at) VALUES ('x', 1, 1001, now(), now())",
    ] {
        let r = run(&pool, bad).await;
        assert!(is_check(&r), "{bad}: {r:?}");
    }
    assert_eq!(s.stock.get(p).await.unwrap().unwrap().stock, 1);
}

// Invariant: a product's stock is the exact sum of its slots, spread evenly over all
// of them when it is created (so concurrent buyers find units in every slot).
#[tokio::test]
async fn a_new_product_spreads_its_stock_over_its_slots() {
    #[derive(diesel::QueryableByName)]
    struct Slots {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        least: i64,
    }
    let s = stores().await;
    let pool = pool(&s);
    let p = product(&s, 100, 1_003).await;
    let mut conn = pool.get().await.expect("a connection");
    let slots: Slots = diesel::sql_query(format!(
        "SELECT count(*) AS n, sum(units)::int8 AS total, min(units) AS least \
           FROM stock_slots WHERE product_id = {p}"
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(slots.n, i64::from(stock::SLOTS));
    assert_eq!(slots.total, 1_003);
    assert_eq!(slots.least, 1_003 / i64::from(stock::SLOTS));
    assert_eq!(s.stock.get(p).await.unwrap().unwrap().stock, 1_003);
}

// Invariant: the schema refuses more issued than total, a negative count, a cap on a
// FIXED coupon and a cap outside 1..=100,000,000.
#[tokio::test]
async fn the_schema_guards_coupon_quantities_and_caps() {
    let s = stores().await;
    let pool = pool(&s);
    let fixed = coupon(
        &s,
        CouponSpec {
            discount: Discount::new(DiscountType::Fixed, 1_000).unwrap(),
            total: Some(1),
            ..CouponSpec::default()
        },
    )
    .await;
    let percent = coupon(&s, CouponSpec::default()).await;
    for bad in [
        format!("UPDATE coupon_slots SET remaining = remaining - 2 WHERE coupon_id = {fixed}"),
        format!("UPDATE coupon_slots SET issued = -1 WHERE coupon_id = {fixed}"),
        format!("UPDATE coupon_definitions SET max_discount = 100 WHERE id = {fixed}"),
        format!("UPDATE coupon_definitions SET max_discount = 0 WHERE id = {percent}"),
        format!("UPDATE coupon_definitions SET max_discount = 100000001 WHERE id = {percent}"),
    ] {
        let r = run(&pool, &bad).await;
        assert!(is_check(&r), "{bad}: {r:?}");
    }
    run(
        &pool,
        &format!("UPDATE coupon_definitions SET max_discount = 100000000 WHERE id = {percent}"),
    )
    .await
    .unwrap();
}

// Invariant: one order uses at most one coupon (a unique index on the order).
#[tokio::test]
async fn the_schema_lets_one_order_use_one_coupon() {
    let s = stores().await;
    let pool = pool(&s);
    let p = product(&s, 5_000, 10).await;
    let a = coupon(
        &s,
        CouponSpec {
            issue_to: vec![1],
            ..CouponSpec::default()
        },
    )
    .await;
    let b = coupon(
        &s,
        CouponSpec {
            issue_to: vec![1],
            ..CouponSpec::default()
        },
    )
    .await;
    let order = orders(&s)
        .place(place_with(1, &[(p, 1)], a, false), None)
        .await
        .unwrap();
    let r = run(
        &pool,
        &format!(
            "UPDATE user_coupons SET status = 'USED', order_id = {}, used_at = now() \
             WHERE coupon_id = {b}",
            order.id
        ),
    )
    .await;
    assert!(
        matches!(
            r,
            Err(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        ),
        "{r:?}"
    );
}

// Invariant: history is append-only and a balance never negative, whatever the code does.
#[tokio::test]
async fn history_rows_cannot_be_changed_or_deleted() {
    let s = stores().await;
    let pool = pool(&s);
    charge(&s, 5, 100).await;
    for bad in [
        "UPDATE balance_history SET amount = 1000000",
        "DELETE FROM balance_history",
        "UPDATE balances SET balance = -1",
    ] {
        assert!(run(&pool, bad).await.is_err(), "{bad} must be refused");
    }
}

// Invariant: a cart's lines join the product row of today: a price or a name changed
// underneath the cart shows at once.
#[tokio::test]
async fn cart_lines_show_the_current_price_and_name() {
    let s = stores().await;
    let pool = pool(&s);
    let a = product(&s, 1_000, 10).await;
    let two = CartQuantity::try_from(2).unwrap();
    s.carts.set_quantity(uid(1), a, two, now()).await.unwrap();
    run(
        &pool,
        &format!("UPDATE products SET price = 1500, name = 'new name' WHERE id = {a}"),
    )
    .await
    .unwrap();
    let lines = s.carts.lines(uid(1)).await.unwrap();
    assert_eq!(
        (
            lines[0].name.as_str(),
            lines[0].price.won(),
            lines[0].quantity.get()
        ),
        ("new name", 1_500, 2)
    );
}
