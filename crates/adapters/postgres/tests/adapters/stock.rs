//! `PgStockStore`: products with their stock in slots; admin changes over every slot,
//! never below zero; PATCH. (Buyers taking stock race in `order.rs`.)

use chrono::Utc;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::RunQueryDsl;
use kernel::{Clock, PageRequest, ProductId, SystemClock};
use postgres_adapter::stock::PgStockStore;
use postgres_adapter::testing::TestDatabase;
use std::sync::Arc;
use stock::{
    plan_adjust, AdjustRuleError, AdjustStockError, NewProduct, Price, Product, ProductChanges,
    ProductName, PurchaseLimit, StockDelta, StockLevel, StockStore, UpdateProductError, SLOTS,
};
use tokio::sync::Barrier;

pub(crate) async fn add_product(
    store: &PgStockStore,
    name: &str,
    price: i64,
    stock: i64,
) -> ProductId {
    store
        .create(
            NewProduct {
                name: ProductName::try_from(name.to_string()).unwrap(),
                price: Price::try_from(price).unwrap(),
                stock: StockLevel::try_from(stock).unwrap(),
                max_per_user: None,
            },
            SystemClock.now(),
        )
        .await
        .unwrap()
        .id
}

async fn stock_of(store: &PgStockStore, id: ProductId) -> i64 {
    store.get(id).await.unwrap().unwrap().stock
}

fn pid(v: i64) -> ProductId {
    ProductId::try_from(v).unwrap()
}

async fn adjust(store: &PgStockStore, id: ProductId, d: i64) -> Result<Product, AdjustStockError> {
    let delta = StockDelta::try_from(d).unwrap();
    store
        .adjust(
            id,
            Box::new(move |slots| plan_adjust(slots, delta)),
            SystemClock.now(),
        )
        .await
}

#[tokio::test]
async fn products_are_created_read_and_listed_in_ascending_id_pages() {
    let db = TestDatabase::create().await;
    let store = PgStockStore::new(db.pool(2));
    let before = Utc::now();
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(add_product(&store, &format!("p{i}"), i * 100, i).await);
    }
    let p = store.get(ids[2]).await.unwrap().unwrap();
    assert_eq!(p.name, "p3");
    assert_eq!(p.price.won(), 300);
    assert_eq!(p.stock, 3);
    assert_eq!(p.max_per_user, None);
    assert!(p.created_at >= before - chrono::Duration::seconds(1));
    assert_eq!(p.updated_at, p.created_at);
    assert_eq!(store.get(pid(9_999)).await.unwrap(), None);

    let first = store
        .list(PageRequest::new(2, None).unwrap())
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        ids[..2]
    );
    assert_eq!(first.next, Some(ids[1].get()));
    let rest = store
        .list(PageRequest::new(10, first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        ids[2..]
    );
    assert_eq!(rest.next, None);
}

// Invariant: a product's stock is the exact sum of its slots, spread when it is created.
#[tokio::test]
async fn a_new_product_spreads_its_stock_over_its_slots() {
    let db = TestDatabase::create().await;
    let pool = db.pool(2);
    let store = PgStockStore::new(pool.clone());
    let p = add_product(&store, "drop", 100, 1_003).await;
    #[derive(diesel::QueryableByName)]
    struct Slots {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        least: i64,
    }
    let mut conn = pool.get().await.unwrap();
    let slots: Slots = diesel::sql_query(format!(
        "SELECT count(*) AS n, sum(units)::int8 AS total, min(units) AS least FROM stock_slots WHERE product_id = {p}"
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(slots.n, i64::from(SLOTS));
    assert_eq!(slots.total, 1_003);
    assert_eq!(slots.least, 1_003 / i64::from(SLOTS));
    assert_eq!(stock_of(&store, p).await, 1_003);
}

#[tokio::test]
async fn restocks_and_write_offs_change_stock_but_never_below_zero() {
    let db = TestDatabase::create().await;
    let store = PgStockStore::new(db.pool(2));
    let p = add_product(&store, "p", 100, 5).await;
    assert_eq!(adjust(&store, p, 10).await.unwrap().stock, 15);
    assert_eq!(adjust(&store, p, -15).await.unwrap().stock, 0);
    let err = adjust(&store, p, -1).await.unwrap_err();
    assert!(
        matches!(
            err,
            AdjustStockError::Refused(AdjustRuleError::BelowZero {
                stock: 0,
                delta: -1
            })
        ),
        "{err:?}"
    );
    let full = adjust(&store, p, 1_000_000_000).await.unwrap();
    assert_eq!(full.stock, 1_000_000_000);
    assert!(full.updated_at >= full.created_at);
    assert!(matches!(
        adjust(&store, p, 1).await.unwrap_err(),
        AdjustStockError::Refused(AdjustRuleError::AboveMax { .. })
    ));
    assert!(matches!(
        adjust(&store, pid(9_999), 1).await.unwrap_err(),
        AdjustStockError::NotFound(id) if id == pid(9_999)
    ));
    assert_eq!(stock_of(&store, p).await, 1_000_000_000);
}

// Invariant: concurrent restocks and write-offs keep the sum exact and never below zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_restocks_and_write_offs_keep_the_sum_exact() {
    let db = TestDatabase::create().await;
    let store = Arc::new(PgStockStore::new(db.pool(12)));
    let p = add_product(&store, "p", 100, 30).await;
    let start = Arc::new(Barrier::new(40));
    let handles: Vec<_> = (0..40)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let d = if i % 4 == 0 { 3 } else { -2 };
                match adjust(&store, p, d).await {
                    Ok(_) => d,
                    Err(AdjustStockError::Refused(_)) => 0,
                    Err(e) => panic!("{e:#}"),
                }
            })
        })
        .collect();
    let moved: i64 = futures::future::join_all(handles)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    let left = stock_of(&store, p).await;
    assert_eq!(left, 30 + moved);
    assert!(left >= 0);
}

#[tokio::test]
async fn a_patch_changes_only_what_it_names() {
    let db = TestDatabase::create().await;
    let store = PgStockStore::new(db.pool(2));
    let p = add_product(&store, "before", 100, 5).await;
    let created = store.get(p).await.unwrap().unwrap();
    let same = store
        .update(p, ProductChanges::default(), SystemClock.now())
        .await
        .unwrap();
    assert_eq!(same, created, "an empty change changes nothing");
    let limit = PurchaseLimit::try_from(2).unwrap();
    let changed = store
        .update(
            p,
            ProductChanges {
                price: Some(Price::try_from(250).unwrap()),
                max_per_user: Some(Some(limit)),
                ..ProductChanges::default()
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            changed.name.as_str(),
            changed.price.won(),
            changed.max_per_user,
            changed.stock
        ),
        ("before", 250, Some(limit), 5)
    );
    assert!(changed.updated_at > created.updated_at);
    let unlimited = store
        .update(
            p,
            ProductChanges {
                name: Some(ProductName::try_from("after".to_string()).unwrap()),
                max_per_user: Some(None),
                ..ProductChanges::default()
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            unlimited.name.as_str(),
            unlimited.price.won(),
            unlimited.max_per_user
        ),
        ("after", 250, None)
    );
    assert!(matches!(
        store
            .update(pid(9_999), ProductChanges::default(), SystemClock.now())
            .await,
        Err(UpdateProductError::NotFound(_))
    ));
}

// Invariant: the schema itself refuses a negative slot and invalid products, whatever
// the code does.
#[tokio::test]
async fn the_schema_refuses_negative_stock() {
    let db = TestDatabase::create().await;
    let pool = db.pool(1);
    let store = PgStockStore::new(pool.clone());
    let p = add_product(&store, "p", 100, 1).await;
    let mut conn = pool.get().await.unwrap();
    let err = diesel::sql_query(format!(
        "UPDATE stock_slots SET units = units - 2 WHERE product_id = {p}"
    ))
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, _)
        ),
        "{err:?}"
    );
    for bad in [
        "INSERT INTO products (name, price, created_at, updated_at) VALUES ('x', 0, now(), now())",
        "INSERT INTO products (name, price, created_at, updated_at) VALUES ('x', 100000001, now(), now())",
        "INSERT INTO products (name, price, created_at, updated_at) VALUES ('   ', 1, now(), now())",
        "INSERT INTO products (name, price, max_per_user, created_at, updated_at) VALUES ('x', 1, 0, now(), now())",
        "INSERT INTO products (name, price, max_per_user, created_at, updated_at) VALUES ('x', 1, 1001, now(), now())",
    ] {
        assert!(
            diesel::sql_query(bad).execute(&mut conn).await.is_err(),
            "{bad}"
        );
    }
}
