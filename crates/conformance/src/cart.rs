//! `CartStore`: quantities are set (not added), lines come with their product's current
//! name and price, unknown products are refused; paying drops the paid products.

use crate::fixtures::{charge, now, orders, place, product};
use crate::Stores;
use ::order::cart::{CartQuantity, SetCartItemError};
use kernel::testing::{pid, uid};
use kernel::ProductId;

fn qty(v: i64) -> CartQuantity {
    CartQuantity::try_from(v).unwrap()
}

/// (product, price, quantity) of each line of the user's cart.
async fn lines(s: &Stores, user: i64) -> Vec<(ProductId, i64, u32)> {
    s.carts
        .lines(uid(user))
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.product_id, l.price.won(), l.quantity.get()))
        .collect()
}

/// Invariant: setting a quantity replaces it; lines come in ascending product id with
/// the product's price; each user's cart is their own.
pub async fn quantities_are_set_not_added_and_lines_come_in_product_order(s: Stores) {
    let a = product(&s, 1_000, 5).await;
    let b = product(&s, 250, 5).await;
    assert!(s.carts.lines(uid(1)).await.unwrap().is_empty());
    s.carts
        .set_quantity(uid(1), b, qty(2), now())
        .await
        .unwrap();
    let after = s
        .carts
        .set_quantity(uid(1), a, qty(3), now())
        .await
        .unwrap();
    assert_eq!(after.len(), 2);
    let after = s
        .carts
        .set_quantity(uid(1), a, qty(1_000), now())
        .await
        .unwrap();
    assert_eq!(
        (
            after[0].product_id,
            after[0].name.as_str(),
            after[0].quantity.get()
        ),
        (a, "tea", 1_000)
    );
    assert_eq!(lines(&s, 1).await, vec![(a, 1_000, 1_000), (b, 250, 2)]);
    assert!(s.carts.lines(uid(2)).await.unwrap().is_empty());
}

/// Invariant: a product that does not exist is refused (`ProductNotFound`) and the cart
/// does not change; removing is idempotent.
pub async fn an_unknown_product_is_refused_and_changes_nothing(s: Stores) {
    let a = product(&s, 100, 5).await;
    s.carts
        .set_quantity(uid(1), a, qty(1), now())
        .await
        .unwrap();
    let err = s
        .carts
        .set_quantity(uid(1), pid(999_999), qty(1), now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SetCartItemError::ProductNotFound(p) if p == pid(999_999)),
        "{err:?}"
    );
    assert_eq!(lines(&s, 1).await, vec![(a, 100, 1)]);
    s.carts.remove(uid(1), a).await.unwrap();
    s.carts.remove(uid(1), a).await.unwrap();
    assert!(lines(&s, 1).await.is_empty());
}

/// Invariant: paying an order drops the paid products from the payer's cart, and only
/// those: the other lines and other users' carts stay.
pub async fn paying_drops_the_paid_products_from_that_users_cart_only(s: Stores) {
    let a = product(&s, 100, 10).await;
    let b = product(&s, 200, 10).await;
    let c = product(&s, 300, 10).await;
    for u in [1, 2] {
        for p in [a, b, c] {
            s.carts
                .set_quantity(uid(u), p, qty(1), now())
                .await
                .unwrap();
        }
    }
    s.carts.remove(uid(1), b).await.unwrap();
    charge(&s, 1, 10_000).await;
    orders(&s)
        .place(place(1, &[(a, 1), (b, 1)], true), None)
        .await
        .unwrap();
    assert_eq!(
        lines(&s, 1)
            .await
            .into_iter()
            .map(|l| l.0)
            .collect::<Vec<_>>(),
        vec![c]
    );
    assert_eq!(lines(&s, 2).await.len(), 3);
}
