//! `PgStockStore`: reservations all or nothing, stock never below zero, no deadlocks.

use chrono::Utc;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::RunQueryDsl;
use kernel::{PageRequest, ProductId, Quantity};
use postgres_adapter::stock::PgStockStore;
use postgres_adapter::testing::TestDatabase;
use std::sync::Arc;
use stock::{
    AdjustRuleError, AdjustStockError, NewProduct, Price, ProductName, ReserveError, ReserveLine,
    ReserveStockError, StockDelta, StockLevel, StockStore,
};
use tokio::sync::Barrier;

async fn add_product(store: &PgStockStore, name: &str, price: i64, stock: i64) -> ProductId {
    store
        .create(
            NewProduct {
                name: ProductName::try_from(name.to_string()).unwrap(),
                price: Price::try_from(price).unwrap(),
                stock: StockLevel::try_from(stock).unwrap(),
            },
            kernel::Clock::now(&kernel::SystemClock),
        )
        .await
        .unwrap()
        .id
}

fn line(product: ProductId, quantity: i64) -> ReserveLine {
    ReserveLine {
        product_id: product,
        quantity: Quantity::try_from(quantity).unwrap(),
    }
}

async fn stock_of(store: &PgStockStore, id: ProductId) -> i64 {
    store.get(id).await.unwrap().unwrap().stock
}

fn pid(v: i64) -> ProductId {
    ProductId::try_from(v).unwrap()
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
    assert!(p.created_at >= before - chrono::Duration::seconds(1));
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

#[tokio::test]
async fn a_reservation_returns_the_products_ascending_with_their_stock_after_and_release_returns_it(
) {
    let db = TestDatabase::create().await;
    let store = PgStockStore::new(db.pool(2));
    let a = add_product(&store, "a", 1_000, 10).await;
    let b = add_product(&store, "b", 2_500, 4).await;
    // given out of order, with a repeated product
    let reserved = store
        .reserve(&[line(b, 1), line(a, 2), line(b, 3)])
        .await
        .unwrap();
    assert_eq!(reserved.len(), 2);
    assert_eq!((reserved[0].id, reserved[0].stock), (a, 8));
    assert_eq!((reserved[1].id, reserved[1].stock), (b, 0));
    assert_eq!(reserved[1].name, "b");
    assert_eq!(reserved[1].price.won(), 2_500);
    assert_eq!(stock_of(&store, a).await, 8);
    assert_eq!(stock_of(&store, b).await, 0);

    store
        .release(&[line(b, 1), line(a, 2), line(b, 3), line(pid(9_999), 5)])
        .await
        .unwrap();
    assert_eq!(stock_of(&store, a).await, 10);
    assert_eq!(stock_of(&store, b).await, 4);
}

// Invariant: all or nothing; a refusal names every short (or unknown) product and
// reserves nothing, not even the lines that would have fit.
#[tokio::test]
async fn one_short_line_reserves_nothing_and_every_short_product_is_named() {
    let db = TestDatabase::create().await;
    let store = PgStockStore::new(db.pool(2));
    let a = add_product(&store, "a", 100, 5).await;
    let b = add_product(&store, "b", 100, 1).await;
    let c = add_product(&store, "c", 100, 0).await;

    let err = store
        .reserve(&[line(c, 1), line(a, 3), line(b, 2)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ReserveStockError::Refused(ReserveError::OutOfStock { product_ids }) if *product_ids == vec![b, c]),
        "{err:?}"
    );

    // repeated lines are summed: 3 + 3 > 5
    let err = store.reserve(&[line(a, 3), line(a, 3)]).await.unwrap_err();
    assert!(
        matches!(&err, ReserveStockError::Refused(ReserveError::OutOfStock { product_ids }) if *product_ids == vec![a]),
        "{err:?}"
    );

    // unknown products are named (all of them) before any shortage
    let err = store
        .reserve(&[
            line(a, 1),
            line(pid(9_999), 1),
            line(b, 2),
            line(pid(9_998), 1),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ReserveStockError::Refused(ReserveError::NotFound { product_ids }) if *product_ids == vec![pid(9_998), pid(9_999)]),
        "{err:?}"
    );

    assert_eq!(stock_of(&store, a).await, 5);
    assert_eq!(stock_of(&store, b).await, 1);
    assert_eq!(stock_of(&store, c).await, 0);
}

// Invariant: stock never goes below zero: 64 concurrent single-unit reservations of a
// product with 20 in stock, over 16 connections, succeed exactly 20 times.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_reservations_of_twenty_units_succeed_exactly_twenty_times() {
    let db = TestDatabase::create().await;
    let store = Arc::new(PgStockStore::new(db.pool(16)));
    let p = add_product(&store, "scarce", 1_000, 20).await;
    let start = Arc::new(Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.reserve(&[line(p, 1)]).await
            })
        })
        .collect();
    let (mut ok, mut short) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(products) => {
                assert!(products[0].stock >= 0);
                ok += 1;
            }
            Err(ReserveStockError::Refused(ReserveError::OutOfStock { product_ids })) => {
                assert_eq!(product_ids, vec![p]);
                short += 1;
            }
            Err(e) => panic!("unexpected error: {e:#}"),
        }
    }
    assert_eq!((ok, short), (20, 44));
    assert_eq!(stock_of(&store, p).await, 0);
}

// Invariant: no deadlock: concurrent multi-line reservations and releases touching the
// same products in opposite orders all complete (a deadlock would surface as a
// PostgreSQL 40P01 error, i.e. `Unexpected`), and the stock accounting stays exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opposite_order_multi_line_reservations_never_deadlock() {
    let db = TestDatabase::create().await;
    let store = Arc::new(PgStockStore::new(db.pool(16)));
    let a = add_product(&store, "a", 100, 100_000).await;
    let b = add_product(&store, "b", 100, 100_000).await;
    let c = add_product(&store, "c", 100, 100_000).await;
    let tasks = 32;
    let rounds = 8;
    let start = Arc::new(Barrier::new(tasks));
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                let lines = if i % 2 == 0 {
                    vec![line(a, 1), line(b, 2), line(c, 3)]
                } else {
                    vec![line(c, 3), line(b, 2), line(a, 1)]
                };
                let reversed: Vec<ReserveLine> = lines.iter().rev().copied().collect();
                start.wait().await;
                for round in 0..rounds {
                    store
                        .reserve(&lines)
                        .await
                        .map_err(|e| format!("reserve, task {i} round {round}: {e:#}"))?;
                    // every other round keeps its reservation
                    if round % 2 == 0 {
                        store
                            .release(&reversed)
                            .await
                            .map_err(|e| format!("release, task {i} round {round}: {e:#}"))?;
                    }
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    let errors: Vec<String> = futures::future::join_all(handles)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap().err())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let kept = (tasks * rounds / 2) as i64;
    assert_eq!(stock_of(&store, a).await, 100_000 - kept);
    assert_eq!(stock_of(&store, b).await, 100_000 - 2 * kept);
    assert_eq!(stock_of(&store, c).await, 100_000 - 3 * kept);
}

#[tokio::test]
async fn restocks_and_write_offs_change_stock_but_never_below_zero() {
    let db = TestDatabase::create().await;
    let store = PgStockStore::new(db.pool(2));
    let p = add_product(&store, "p", 100, 5).await;
    let delta = |d: i64| StockDelta::try_from(d).unwrap();
    assert_eq!(store.adjust(p, delta(10)).await.unwrap().stock, 15);
    assert_eq!(store.adjust(p, delta(-15)).await.unwrap().stock, 0);
    let err = store.adjust(p, delta(-1)).await.unwrap_err();
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
    assert_eq!(
        store.adjust(p, delta(1_000_000_000)).await.unwrap().stock,
        1_000_000_000
    );
    assert!(matches!(
        store.adjust(p, delta(1)).await.unwrap_err(),
        AdjustStockError::Refused(AdjustRuleError::AboveMax { .. })
    ));
    assert!(matches!(
        store.adjust(pid(9_999), delta(1)).await.unwrap_err(),
        AdjustStockError::NotFound(id) if id == pid(9_999)
    ));
    assert_eq!(stock_of(&store, p).await, 1_000_000_000);
}

// Invariant: stock never goes below zero when write-offs race reservations.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_write_offs_and_reservations_never_take_stock_below_zero() {
    let db = TestDatabase::create().await;
    let store = Arc::new(PgStockStore::new(db.pool(12)));
    let p = add_product(&store, "p", 100, 30).await;
    let start = Arc::new(Barrier::new(40));
    let handles: Vec<_> = (0..40)
        .map(|i| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                if i % 2 == 0 {
                    match store.adjust(p, StockDelta::try_from(-2).unwrap()).await {
                        Ok(_) => 2,
                        Err(AdjustStockError::Refused(_)) => 0,
                        Err(e) => panic!("{e:#}"),
                    }
                } else {
                    match store.reserve(&[line(p, 2)]).await {
                        Ok(_) => 2,
                        Err(ReserveStockError::Refused(_)) => 0,
                        Err(e) => panic!("{e:#}"),
                    }
                }
            })
        })
        .collect();
    let taken: i64 = futures::future::join_all(handles)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    assert_eq!(taken, 30);
    assert_eq!(stock_of(&store, p).await, 0);
}

// Invariant: the schema itself refuses negative stock, whatever the code does.
#[tokio::test]
async fn the_schema_refuses_negative_stock() {
    let db = TestDatabase::create().await;
    let pool = db.pool(1);
    let store = PgStockStore::new(pool.clone());
    let p = add_product(&store, "p", 100, 1).await;
    let mut conn = pool.get().await.unwrap();
    let err = diesel::sql_query(format!(
        "UPDATE products SET stock = stock - 2 WHERE id = {p}"
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
        "INSERT INTO products (name, price, stock, created_at, updated_at) VALUES ('x', 0, 1, now(), now())",
        "INSERT INTO products (name, price, stock, created_at, updated_at) VALUES ('x', 100000001, 1, now(), now())",
        "INSERT INTO products (name, price, stock, created_at, updated_at) VALUES ('   ', 1, 1, now(), now())",
        "INSERT INTO products (name, price, stock, created_at, updated_at) VALUES ('x', 1, -1, now(), now())",
    ] {
        let err = diesel::sql_query(bad).execute(&mut conn).await.unwrap_err();
        assert!(
            matches!(
                err,
                DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, _)
            ),
            "{bad}: {err:?}"
        );
    }
    drop(conn); // the pool has one connection
    assert_eq!(stock_of(&store, p).await, 1);
}
