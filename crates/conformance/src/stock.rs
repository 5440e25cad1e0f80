//! `StockStore`: the catalogue, admins' product changes, and stock changes that never
//! take stock below zero.

use crate::fixtures::{adjust, now, product, stock_of};
use crate::Stores;
use ::stock::{
    AdjustRuleError, AdjustStockError, Price, ProductChanges, ProductName, PurchaseLimit,
    UpdateProductError,
};
use kernel::testing::pid;
use kernel::PageRequest;
use std::sync::Arc;
use tokio::sync::Barrier;

/// Invariant: a product reads back as created; the list runs in ascending id, page by
/// page, each page continuing after the last id of the one before.
pub async fn products_are_created_read_and_listed_in_ascending_id_pages(s: Stores) {
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(product(&s, i * 100, i).await);
    }
    let p = s.stock.get(ids[2]).await.unwrap().unwrap();
    assert_eq!((p.name.as_str(), p.price.won(), p.stock), ("tea", 300, 3));
    assert_eq!(p.max_per_user, None);
    assert_eq!(p.updated_at, p.created_at);
    assert_eq!(s.stock.get(pid(999_999)).await.unwrap(), None);
    let first = s
        .stock
        .list(PageRequest::new(2, None).unwrap())
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        ids[..2]
    );
    assert_eq!(first.next, Some(ids[1].get()));
    let rest = s
        .stock
        .list(PageRequest::new(10, first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        ids[2..]
    );
    assert_eq!(rest.next, None);
}

/// Invariant: a change is decided by the domain over every slot (`plan_adjust`): a
/// write-off may reach zero but not pass it, a restock may reach the maximum but not
/// pass it, an unknown product is `NotFound`; a refusal changes nothing; a change
/// stamps `updated_at`.
pub async fn restocks_and_write_offs_never_take_stock_below_zero(s: Stores) {
    let p = product(&s, 100, 5).await;
    assert_eq!(adjust(&s, p, 10).await.unwrap().stock, 15);
    assert_eq!(adjust(&s, p, -15).await.unwrap().stock, 0);
    let err = adjust(&s, p, -1).await.unwrap_err();
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
    let full = adjust(&s, p, 1_000_000_000).await.unwrap();
    assert_eq!(full.stock, 1_000_000_000);
    assert!(full.updated_at >= full.created_at);
    assert!(matches!(
        adjust(&s, p, 1).await.unwrap_err(),
        AdjustStockError::Refused(AdjustRuleError::AboveMax { .. })
    ));
    assert!(matches!(
        adjust(&s, pid(999_999), 1).await.unwrap_err(),
        AdjustStockError::NotFound(id) if id == pid(999_999)
    ));
    assert_eq!(stock_of(&s, p).await, 1_000_000_000);
}

/// Invariant: stock never goes below zero when write-offs race: of 40 concurrent
/// write-offs of 2 units from 30, exactly 15 succeed and the stock ends at 0.
pub async fn concurrent_write_offs_never_take_stock_below_zero(s: Stores) {
    let p = product(&s, 100, 30).await;
    let s = Arc::new(s);
    let start = Arc::new(Barrier::new(40));
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (s, start) = (s.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                match adjust(&s, p, -2).await {
                    Ok(after) => {
                        assert!(after.stock >= 0);
                        2
                    }
                    Err(AdjustStockError::Refused(_)) => 0,
                    Err(e) => panic!("{e:#}"),
                }
            })
        })
        .collect();
    let taken: i64 = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    assert_eq!(taken, 30);
    assert_eq!(stock_of(&s, p).await, 0);
}

/// Invariant: racing restocks and write-offs keep the stock the exact sum of what
/// succeeded, never below zero.
pub async fn concurrent_restocks_and_write_offs_keep_the_sum_exact(s: Stores) {
    let p = product(&s, 100, 30).await;
    let s = Arc::new(s);
    let start = Arc::new(Barrier::new(40));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (s, start) = (s.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let d = if i % 4 == 0 { 3 } else { -2 };
                match adjust(&s, p, d).await {
                    Ok(_) => d,
                    Err(AdjustStockError::Refused(_)) => 0,
                    Err(e) => panic!("{e:#}"),
                }
            })
        })
        .collect();
    let moved: i64 = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    let left = stock_of(&s, p).await;
    assert_eq!(left, 30 + moved);
    assert!(left >= 0);
}

/// Invariant: an update changes exactly the fields it names (a limit can be set and
/// removed) and never the stock; an empty one changes nothing, not even `updated_at`;
/// an unknown product is `NotFound`.
pub async fn an_update_changes_only_what_it_names(s: Stores) {
    let p = product(&s, 100, 5).await;
    let created = s.stock.get(p).await.unwrap().unwrap();
    let same = s
        .stock
        .update(p, ProductChanges::default(), now())
        .await
        .unwrap();
    assert_eq!(same, created, "an empty change changes nothing");
    let limit = PurchaseLimit::try_from(2).unwrap();
    let later = now() + chrono::Duration::seconds(1);
    let changed = s
        .stock
        .update(
            p,
            ProductChanges {
                price: Some(Price::try_from(250).unwrap()),
                max_per_user: Some(Some(limit)),
                ..ProductChanges::default()
            },
            later,
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
        ("tea", 250, Some(limit), 5)
    );
    assert!(changed.updated_at > created.updated_at);
    assert_eq!(s.stock.get(p).await.unwrap().unwrap(), changed);
    let unlimited = s
        .stock
        .update(
            p,
            ProductChanges {
                name: Some(ProductName::try_from("after".to_string()).unwrap()),
                max_per_user: Some(None),
                ..ProductChanges::default()
            },
            later,
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
        s.stock
            .update(pid(999_999), ProductChanges::default(), now())
            .await,
        Err(UpdateProductError::NotFound(_))
    ));
}
