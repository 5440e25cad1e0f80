//! Validated values of the catalogue and the product as stored.

use kernel::{BoundedText, Money, ProductId, Quantity, TextError, Timestamp};

/// The cheapest a product may be (won), inclusive.
pub const MIN_PRICE: i64 = 1;
/// The dearest a product may be (won), inclusive.
pub const MAX_PRICE: i64 = 100_000_000;

/// Most units a product may hold in stock through the admin endpoints, inclusive.
pub const MAX_STOCK: i64 = 1_000_000_000;

/// Longest product name, in characters (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 200;

/// Why a product name was refused (the shared text rule, [`kernel::check_text`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a product name {0}")]
pub struct ProductNameError(pub TextError);

/// A product name: 1..=200 characters, not blank, no control characters
/// (the shared text rule of [`kernel::check_text`]). Kept exactly as given (not trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(BoundedText<MAX_NAME_CHARS>);

impl ProductName {
    /// The name as given.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The name, owned.
    pub fn into_inner(self) -> String {
        self.0.into_inner()
    }
}

impl TryFrom<String> for ProductName {
    type Error = ProductNameError;
    fn try_from(value: String) -> Result<Self, ProductNameError> {
        BoundedText::try_from(value)
            .map(ProductName)
            .map_err(ProductNameError)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a price must be between {MIN_PRICE} and {MAX_PRICE} won, got {0}")]
/// A price outside 1..=100,000,000 won (the value given).
pub struct PriceError(pub i64);

/// The price of one unit: 1..=100,000,000 won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(Money);

impl Price {
    /// The price as an amount of money.
    pub fn money(self) -> Money {
        self.0
    }
}

impl TryFrom<i64> for Price {
    type Error = PriceError;
    fn try_from(value: i64) -> Result<Self, PriceError> {
        if (MIN_PRICE..=MAX_PRICE).contains(&value) {
            Money::try_from(value)
                .map(Price)
                .map_err(|_| PriceError(value))
        } else {
            Err(PriceError(value))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stock must be between 0 and {MAX_STOCK}, got {0}")]
/// A stock level outside 0..=1,000,000,000 (the value given).
pub struct StockLevelError(pub i64);

/// A number of units on hand: 0..=1,000,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StockLevel(i64);

impl StockLevel {
    /// The number of units.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for StockLevel {
    type Error = StockLevelError;
    fn try_from(value: i64) -> Result<Self, StockLevelError> {
        if (0..=MAX_STOCK).contains(&value) {
            Ok(StockLevel(value))
        } else {
            Err(StockLevelError(value))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delta must be a non-zero number between -{MAX_STOCK} and {MAX_STOCK}, got {0}")]
/// A zero or out-of-range stock change (the value given).
pub struct StockDeltaError(pub i64);

/// An admin's stock change: positive restocks, negative writes off.
/// Never zero (it would change nothing) and never larger than [`MAX_STOCK`] either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockDelta(i64);

impl StockDelta {
    /// The signed change: positive restocks, negative writes off.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for StockDelta {
    type Error = StockDeltaError;
    fn try_from(value: i64) -> Result<Self, StockDeltaError> {
        if value != 0 && (-MAX_STOCK..=MAX_STOCK).contains(&value) {
            Ok(StockDelta(value))
        } else {
            Err(StockDeltaError(value))
        }
    }
}

/// Most units of one product a user may hold at once, when limited.
pub const MAX_PURCHASE_LIMIT: i64 = 1000;

/// A purchase limit outside 1..=[`MAX_PURCHASE_LIMIT`] (the value given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("max_per_user must be between 1 and {MAX_PURCHASE_LIMIT}, got {0}")]
pub struct PurchaseLimitError(pub i64);

/// A purchase limit for drops: the most units of a product one user may hold in orders
/// that are PENDING or PAID (refunded units no longer count). 1..=1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PurchaseLimit(u16);

impl PurchaseLimit {
    /// The limit in units.
    pub const fn get(self) -> i64 {
        self.0 as i64
    }
}

impl TryFrom<i64> for PurchaseLimit {
    type Error = PurchaseLimitError;
    fn try_from(value: i64) -> Result<Self, PurchaseLimitError> {
        if (1..=MAX_PURCHASE_LIMIT).contains(&value) {
            Ok(PurchaseLimit(value as u16))
        } else {
            Err(PurchaseLimitError(value))
        }
    }
}

/// A product to add to the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    /// Its name.
    pub name: ProductName,
    /// The price of one unit.
    pub price: Price,
    /// Units on hand at creation.
    pub stock: StockLevel,
    /// The purchase limit, if any.
    pub max_per_user: Option<PurchaseLimit>,
}

/// What an admin changes on a product (`PATCH`): each field given is set; the stock is
/// not among them (restocks and write-offs are their own use case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductChanges {
    /// A new name.
    pub name: Option<ProductName>,
    /// A new price (placed orders keep the prices they were placed at).
    pub price: Option<Price>,
    /// A new limit (`Some(None)` removes it).
    pub max_per_user: Option<Option<PurchaseLimit>>,
}

/// A product as stored. `stock` is the number available to order now (never negative):
/// the exact sum of its slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Its id.
    pub id: ProductId,
    /// Its name (copied onto the order lines that order it).
    pub name: String,
    /// The price of one unit now.
    pub price: Money,
    /// Units available to order now, the sum of its slots; orders and refunds that give
    /// units back may take it past [`MAX_STOCK`], never below zero.
    pub stock: i64,
    /// The purchase limit, if any.
    pub max_per_user: Option<PurchaseLimit>,
    /// When it was added.
    pub created_at: Timestamp,
    /// When an admin last changed it (name, price, limit, restock, write-off).
    pub updated_at: Timestamp,
}

/// How many slots a product's stock is split over. Concurrent buyers of one product
/// take units from different slots, so a drop does not queue every buyer behind one
/// row (ADR 0009). Every product has this many; a product with less stock than slots
/// leaves some empty.
pub const SLOTS: i16 = 8;

/// One slot of a product's stock: some of its units, lockable on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    /// Which slot, 0..[`SLOTS`].
    pub index: i16,
    /// Units in it.
    pub units: i64,
}

/// Units added to (positive) or taken from (negative) one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SlotChange {
    /// Which slot.
    pub index: i16,
    /// The signed change.
    pub delta: i64,
}

/// One line of a reservation: take `quantity` units of `product_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReserveLine {
    /// The product.
    pub product_id: ProductId,
    /// How many units.
    pub quantity: Quantity,
}

/// A product's available stock as read under lock, for the pure rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available {
    /// The product.
    pub product_id: ProductId,
    /// Units available to order.
    pub stock: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_present_short_and_printable() {
        assert_eq!(
            ProductName::try_from(String::new()),
            Err(ProductNameError(TextError::Blank))
        );
        assert_eq!(
            ProductName::try_from(" \t\u{3000}".to_string()),
            Err(ProductNameError(TextError::Blank))
        );
        assert_eq!(
            ProductName::try_from("가".repeat(201)),
            Err(ProductNameError(TextError::TooLong { max: 200, got: 201 }))
        );
        assert_eq!(
            ProductName::try_from("a\u{0}b".to_string()),
            Err(ProductNameError(TextError::ControlCharacter))
        );
        // 200 multi-byte characters are 600 bytes but still 200 characters
        let max = "가".repeat(200);
        assert_eq!(ProductName::try_from(max.clone()).unwrap().as_str(), max);
        assert_eq!(
            ProductName::try_from(" padded ".to_string())
                .unwrap()
                .as_str(),
            " padded "
        );
    }

    #[test]
    fn prices_are_one_won_to_one_hundred_million() {
        assert_eq!(Price::try_from(0), Err(PriceError(0)));
        assert_eq!(Price::try_from(-1), Err(PriceError(-1)));
        assert_eq!(Price::try_from(100_000_001), Err(PriceError(100_000_001)));
        assert_eq!(Price::try_from(1).unwrap().money().won(), 1);
        assert_eq!(
            Price::try_from(100_000_000).unwrap().money().won(),
            100_000_000
        );
    }

    #[test]
    fn stock_levels_are_zero_to_one_billion() {
        assert_eq!(StockLevel::try_from(-1), Err(StockLevelError(-1)));
        assert_eq!(
            StockLevel::try_from(1_000_000_001),
            Err(StockLevelError(1_000_000_001))
        );
        assert_eq!(StockLevel::try_from(0).unwrap().get(), 0);
        assert_eq!(
            StockLevel::try_from(1_000_000_000).unwrap().get(),
            1_000_000_000
        );
    }

    #[test]
    fn deltas_are_non_zero_and_bounded() {
        assert_eq!(StockDelta::try_from(0), Err(StockDeltaError(0)));
        assert!(StockDelta::try_from(1_000_000_001).is_err());
        assert!(StockDelta::try_from(-1_000_000_001).is_err());
        assert!(StockDelta::try_from(i64::MIN).is_err());
        assert_eq!(StockDelta::try_from(-5).unwrap().get(), -5);
    }
}
