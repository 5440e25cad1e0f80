//! `PgCartStore`: quantities are set (not added), prices are always current, unknown
//! products are refused, paid products leave the cart.

use diesel_async::RunQueryDsl;
use kernel::{Clock, ProductId, SystemClock, UserId};
use order::cart::{CartQuantity, CartStore, SetCartItemError};
use postgres_adapter::cart::PgCartStore;
use postgres_adapter::stock::PgStockStore;
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::PgPool;
use stock::{NewProduct, Price, ProductName, StockLevel, StockStore};

async fn add_product(pool: &PgPool, name: &str, price: i64) -> ProductId {
    PgStockStore::new(pool.clone())
        .create(
            NewProduct {
                name: ProductName::try_from(name.to_string()).unwrap(),
                price: Price::try_from(price).unwrap(),
                stock: StockLevel::try_from(10).unwrap(),
                max_per_user: None,
            },
            SystemClock.now(),
        )
        .await
        .unwrap()
        .id
}

fn user(v: i64) -> UserId {
    UserId::try_from(v).unwrap()
}

fn qty(v: i64) -> CartQuantity {
    CartQuantity::try_from(v).unwrap()
}

/// (product, name, price, quantity) of each line
async fn lines(store: &PgCartStore, u: UserId) -> Vec<(ProductId, String, i64, u32)> {
    store
        .lines(u)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.product_id, l.name, l.price.won(), l.quantity.get()))
        .collect()
}

#[tokio::test]
async fn quantities_are_set_not_added_and_lines_come_in_product_order() {
    let db = TestDatabase::create().await;
    let pool = db.pool(2);
    let store = PgCartStore::new(pool.clone());
    let a = add_product(&pool, "a", 1_000).await;
    let b = add_product(&pool, "b", 250).await;
    assert!(store.lines(user(1)).await.unwrap().is_empty());

    store
        .set_quantity(user(1), b, qty(2), SystemClock.now())
        .await
        .unwrap();
    let after = store
        .set_quantity(user(1), a, qty(3), SystemClock.now())
        .await
        .unwrap();
    assert_eq!(after.len(), 2);
    let after = store
        .set_quantity(user(1), a, qty(1_000), SystemClock.now())
        .await
        .unwrap();
    assert_eq!(after[0].quantity.get(), 1_000);
    assert_eq!(
        lines(&store, user(1)).await,
        vec![(a, "a".into(), 1_000, 1_000), (b, "b".into(), 250, 2)]
    );
    // another user's cart is separate
    assert!(store.lines(user(2)).await.unwrap().is_empty());
}

#[tokio::test]
async fn lines_show_the_current_price_and_name() {
    let db = TestDatabase::create().await;
    let pool = db.pool(2);
    let store = PgCartStore::new(pool.clone());
    let a = add_product(&pool, "old name", 1_000).await;
    store
        .set_quantity(user(1), a, qty(2), SystemClock.now())
        .await
        .unwrap();
    // no endpoint changes prices yet; change the row underneath the cart
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query(format!(
        "UPDATE products SET price = 1500, name = 'new name' WHERE id = {a}"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        lines(&store, user(1)).await,
        vec![(a, "new name".into(), 1_500, 2)]
    );
}

#[tokio::test]
async fn an_unknown_product_is_refused_and_changes_nothing() {
    let db = TestDatabase::create().await;
    let pool = db.pool(2);
    let store = PgCartStore::new(pool.clone());
    let a = add_product(&pool, "a", 100).await;
    store
        .set_quantity(user(1), a, qty(1), SystemClock.now())
        .await
        .unwrap();
    let missing = ProductId::try_from(9_999).unwrap();
    let err = store
        .set_quantity(user(1), missing, qty(1), SystemClock.now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SetCartItemError::ProductNotFound(p) if p == missing),
        "{err:?}"
    );
    assert_eq!(lines(&store, user(1)).await, vec![(a, "a".into(), 100, 1)]);
}

#[tokio::test]
async fn removing_is_idempotent_and_paid_products_leave_only_that_users_cart() {
    let db = TestDatabase::create().await;
    let pool = db.pool(2);
    let store = PgCartStore::new(pool.clone());
    let a = add_product(&pool, "a", 100).await;
    let b = add_product(&pool, "b", 200).await;
    let c = add_product(&pool, "c", 300).await;
    for u in [user(1), user(2)] {
        for p in [a, b, c] {
            store
                .set_quantity(u, p, qty(1), SystemClock.now())
                .await
                .unwrap();
        }
    }
    store.remove(user(1), b).await.unwrap();
    store.remove(user(1), b).await.unwrap(); // absent: still fine
    assert_eq!(
        lines(&store, user(1))
            .await
            .into_iter()
            .map(|l| l.0)
            .collect::<Vec<_>>(),
        vec![a, c]
    );

    // paid for a and b (b no longer in the cart): only a leaves, only user 1's cart
    store.remove_products(user(1), &[a, b]).await.unwrap();
    store.remove_products(user(1), &[]).await.unwrap();
    assert_eq!(
        lines(&store, user(1))
            .await
            .into_iter()
            .map(|l| l.0)
            .collect::<Vec<_>>(),
        vec![c]
    );
    assert_eq!(lines(&store, user(2)).await.len(), 3);
}
