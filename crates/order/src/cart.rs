//! The cart: a user's draft of an order. It holds product ids and quantities only;
//! names, prices, subtotals and the total are always those of the catalogue *now*.
//! Paying an order drops the paid products from the cart (see
//! `docs/adr/0003-cart-in-order-crate.md` for why the cart lives in this crate).

use async_trait::async_trait;
use kernel::{Clock, Money, MoneyError, ProductId, Timestamp, UserId};
use std::sync::Arc;

/// Most units of one product a cart may hold, inclusive.
pub const MAX_CART_QUANTITY: i64 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a cart quantity must be between 1 and {MAX_CART_QUANTITY}, got {0}")]
/// A cart quantity outside 1..=1000 (the value given).
pub struct CartQuantityError(pub i64);

/// How many units of a product the cart holds: 1..=1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CartQuantity(u16);

impl CartQuantity {
    /// The number of units.
    pub const fn get(self) -> u32 {
        self.0 as u32
    }
}

impl TryFrom<i64> for CartQuantity {
    type Error = CartQuantityError;
    fn try_from(value: i64) -> Result<Self, CartQuantityError> {
        match u16::try_from(value) {
            Ok(v) if (1..=MAX_CART_QUANTITY).contains(&value) => Ok(CartQuantity(v)),
            _ => Err(CartQuantityError(value)),
        }
    }
}

/// One product in a cart, with the product's current name and price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartLine {
    /// The product.
    pub product_id: ProductId,
    /// Its name now.
    pub name: String,
    /// Its price now.
    pub price: Money,
    /// How many units.
    pub quantity: CartQuantity,
}

/// A priced line: `subtotal = price * quantity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartItem {
    /// The product.
    pub product_id: ProductId,
    /// Its name now.
    pub name: String,
    /// Its price now.
    pub price: Money,
    /// How many units.
    pub quantity: CartQuantity,
    /// `price × quantity`.
    pub subtotal: Money,
}

/// A priced cart: `total` is the sum of the subtotals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    /// Whose cart.
    pub user_id: UserId,
    /// The lines, ascending product id.
    pub items: Vec<CartItem>,
    /// The sum of the subtotals.
    pub total: Money,
}

/// Prices the lines at their current prices, keeping their order; checked arithmetic
/// throughout (an overflow is refused, never wrapped).
pub fn price_cart(user_id: UserId, lines: Vec<CartLine>) -> Result<Cart, MoneyError> {
    let mut total = Money::ZERO;
    let mut items = Vec::with_capacity(lines.len());
    for line in lines {
        let subtotal = line.price.checked_mul(kernel_quantity(line.quantity))?;
        total = total.checked_add(subtotal)?;
        items.push(CartItem {
            product_id: line.product_id,
            name: line.name,
            price: line.price,
            quantity: line.quantity,
            subtotal,
        });
    }
    Ok(Cart {
        user_id,
        items,
        total,
    })
}

fn kernel_quantity(q: CartQuantity) -> kernel::Quantity {
    // 1..=1000 is always a valid positive quantity
    kernel::Quantity::try_from(i64::from(q.get())).unwrap_or_else(|_| unreachable!())
}

/// Why an item could not be put in the cart.
#[derive(Debug, thiserror::Error)]
pub enum SetCartItemError {
    #[error("no product {0}")]
    /// No such product; the cart is unchanged.
    ProductNotFound(ProductId),
    #[error(transparent)]
    /// The store failed.
    Unexpected(#[from] anyhow::Error),
}

/// Persistence of carts.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CartStore: Send + Sync {
    /// The user's cart lines joined with each product's *current* name and price,
    /// ascending product id; empty for a user who never put anything in a cart.
    async fn lines(&self, user: UserId) -> anyhow::Result<Vec<CartLine>>;

    /// Sets (not adds) the quantity of `product` in the user's cart, then returns the
    /// cart's lines as [`CartStore::lines`] would.
    /// MUST refuse a product that does not exist with
    /// [`SetCartItemError::ProductNotFound`] and change nothing then.
    async fn set_quantity(
        &self,
        user: UserId,
        product: ProductId,
        quantity: CartQuantity,
        now: Timestamp,
    ) -> Result<Vec<CartLine>, SetCartItemError>;

    /// Removes `product` from the user's cart; nothing happens if it is not there.
    async fn remove(&self, user: UserId, product: ProductId) -> anyhow::Result<()>;
}

/// The cart use cases. A cart holds product ids and quantities; it is always priced at
/// today's prices.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use kernel::{Clock, SystemClock, UserId};
/// use order::cart::{CartQuantity, CartService};
/// use std::sync::Arc;
/// use stock::{NewProduct, Price, ProductName, StockLevel, StockStore};
///
/// let db = memory_adapter::MemoryStore::new();
/// let tea = StockStore::create(
///     &db,
///     NewProduct {
///         name: ProductName::try_from("Green tea".to_string()).unwrap(),
///         price: Price::try_from(4_500).unwrap(),
///         stock: StockLevel::try_from(10).unwrap(),
///         max_per_user: None,
///     },
///     SystemClock.now(),
/// )
/// .await
/// .unwrap();
/// let carts = CartService::new(Arc::new(db), Arc::new(SystemClock));
/// let alice = UserId::try_from(1).unwrap();
/// carts.set_item(alice, tea.id, CartQuantity::try_from(3).unwrap()).await.unwrap();
/// // setting replaces the quantity, it does not add to it
/// let cart = carts.set_item(alice, tea.id, CartQuantity::try_from(2).unwrap()).await.unwrap();
/// assert_eq!((cart.items[0].quantity.get(), cart.total.won()), (2, 9_000));
/// # }
/// ```
#[derive(Clone)]
pub struct CartService {
    store: Arc<dyn CartStore>,
    clock: Arc<dyn Clock>,
}

impl CartService {
    /// The cart use cases over `store`.
    pub fn new(store: Arc<dyn CartStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// The user's cart at current prices.
    pub async fn cart(&self, user: UserId) -> anyhow::Result<Cart> {
        let lines = self.store.lines(user).await?;
        Ok(price_cart(user, lines)?)
    }

    /// Sets the quantity of a product in the cart; returns the cart at current prices.
    pub async fn set_item(
        &self,
        user: UserId,
        product: ProductId,
        quantity: CartQuantity,
    ) -> Result<Cart, SetCartItemError> {
        let lines = self
            .store
            .set_quantity(user, product, quantity, self.clock.now())
            .await?;
        price_cart(user, lines).map_err(|e| SetCartItemError::Unexpected(e.into()))
    }

    /// Removes a product from the cart (no error if it is not there).
    pub async fn remove_item(&self, user: UserId, product: ProductId) -> anyhow::Result<()> {
        self.store.remove(user, product).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use kernel::testing::{fixed_clock as clock, pid, t0 as now};

    use mockall::predicate::eq;
    use proptest::prelude::*;

    fn user() -> UserId {
        UserId::try_from(7).unwrap()
    }

    fn qty(v: i64) -> CartQuantity {
        CartQuantity::try_from(v).unwrap()
    }

    fn cart_line(product: i64, price: i64, quantity: i64) -> CartLine {
        CartLine {
            product_id: pid(product),
            name: format!("product {product}"),
            price: Money::try_from(price).unwrap(),
            quantity: qty(quantity),
        }
    }

    #[test]
    fn quantities_are_one_to_one_thousand() {
        for bad in [0, -1, 1_001, 70_000, i64::MAX] {
            assert_eq!(CartQuantity::try_from(bad), Err(CartQuantityError(bad)));
        }
        assert_eq!(qty(1).get(), 1);
        assert_eq!(qty(1_000).get(), 1_000);
    }

    #[test]
    fn an_empty_cart_totals_zero() {
        let cart = price_cart(user(), vec![]).unwrap();
        assert_eq!(cart.total, Money::ZERO);
        assert!(cart.items.is_empty());
        assert_eq!(cart.user_id, user());
    }

    #[test]
    fn subtotals_and_total_use_the_prices_given() {
        let cart = price_cart(
            user(),
            vec![cart_line(1, 1_500, 2), cart_line(2, 100_000_000, 1_000)],
        )
        .unwrap();
        assert_eq!(cart.items[0].subtotal.won(), 3_000);
        assert_eq!(cart.items[1].subtotal.won(), 100_000_000_000);
        assert_eq!(cart.total.won(), 100_000_003_000);
    }

    #[test]
    fn an_overflowing_total_is_refused_not_wrapped() {
        let huge = CartLine {
            price: Money::try_from(i64::MAX / 1_000).unwrap(),
            ..cart_line(1, 1, 1_000)
        };
        let other = cart_line(2, 1_000, 1);
        assert_eq!(
            price_cart(user(), vec![huge, other]),
            Err(MoneyError::Overflow)
        );
    }

    proptest! {
        // Invariant: the total is exactly the sum of price * quantity (no rounding, no wrap).
        #[test]
        fn the_total_is_the_exact_sum_of_the_lines(
            raw in prop::collection::vec((1i64..=100_000_000, 1i64..=1_000), 0..50),
        ) {
            let lines: Vec<CartLine> = raw
                .iter()
                .enumerate()
                .map(|(i, (p, q))| cart_line(i as i64 + 1, *p, *q))
                .collect();
            let cart = price_cart(user(), lines).unwrap();
            let exact: i128 = raw.iter().map(|(p, q)| i128::from(*p) * i128::from(*q)).sum();
            prop_assert_eq!(i128::from(cart.total.won()), exact);
            for (item, (p, q)) in cart.items.iter().zip(&raw) {
                prop_assert_eq!(item.subtotal.won(), p * q);
            }
        }
    }

    #[tokio::test]
    async fn the_cart_is_priced_from_the_stores_current_lines() {
        let mut store = MockCartStore::new();
        store
            .expect_lines()
            .with(eq(user()))
            .times(1)
            .returning(|_| Ok(vec![cart_line(1, 1_000, 3), cart_line(4, 250, 2)]));
        let svc = CartService::new(Arc::new(store), clock());
        let cart = svc.cart(user()).await.unwrap();
        assert_eq!(cart.total.won(), 3_500);
        assert_eq!(cart.items.len(), 2);
    }

    #[tokio::test]
    async fn setting_an_item_passes_the_quantity_and_now_and_prices_the_result() {
        let mut store = MockCartStore::new();
        store
            .expect_set_quantity()
            .with(eq(user()), eq(pid(3)), eq(qty(5)), eq(now()))
            .times(1)
            .returning(|_, _, _, _| Ok(vec![cart_line(3, 200, 5)]));
        let svc = CartService::new(Arc::new(store), clock());
        let cart = svc.set_item(user(), pid(3), qty(5)).await.unwrap();
        assert_eq!(cart.items[0].subtotal.won(), 1_000);
        assert_eq!(cart.total.won(), 1_000);
    }

    #[tokio::test]
    async fn an_unknown_product_is_reported() {
        let mut store = MockCartStore::new();
        store
            .expect_set_quantity()
            .returning(|_, p, _, _| Err(SetCartItemError::ProductNotFound(p)));
        let svc = CartService::new(Arc::new(store), clock());
        let err = svc.set_item(user(), pid(9), qty(1)).await.unwrap_err();
        assert!(matches!(err, SetCartItemError::ProductNotFound(p) if p == pid(9)));
    }

    #[tokio::test]
    async fn removing_an_item_asks_the_store() {
        let mut store = MockCartStore::new();
        store
            .expect_remove()
            .with(eq(user()), eq(pid(2)))
            .times(1)
            .returning(|_, _| Ok(()));
        let svc = CartService::new(Arc::new(store), clock());
        svc.remove_item(user(), pid(2)).await.unwrap();
    }
}
