//! Validated coupon types. A value of these types is always within its documented
//! range: the API builds them with `TryFrom`/`new` at the edge, the adapter rebuilds
//! them from rows the schema already guards.

use kernel::{
    check_text, CouponId, Money, NotificationId, OrderId, Quantity, TextError, Timestamp, UserId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// Largest FIXED discount, inclusive (won).
pub const MAX_FIXED_DISCOUNT: i64 = 100_000_000;
/// Largest `max_discount` (the cap of a PERCENT discount), inclusive (won).
pub const MAX_DISCOUNT_CAP: i64 = 100_000_000;
/// Most characters in a coupon name.
pub const MAX_NAME_CHARS: usize = 200;
/// Most entries in `issue_to` of one admin creation.
pub const MAX_ISSUE_TO: usize = 1000;

/// Why a coupon name was refused (the shared text rule, [`kernel::check_text`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a coupon name {0}")]
pub struct CouponNameError(pub TextError);

/// A coupon's display name: 1..=200 characters, not blank, no control characters (the
/// shared text rule of [`kernel::check_text`]; it is copied into notifications).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponName(String);

impl CouponName {
    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CouponName {
    type Error = CouponNameError;
    fn try_from(value: String) -> Result<Self, CouponNameError> {
        check_text(&value, MAX_NAME_CHARS).map_err(CouponNameError)?;
        Ok(CouponName(value))
    }
}

impl fmt::Display for CouponName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A percentage outside 1..=100 (the value given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a percentage is between 1 and 100, got {0}")]
pub struct PercentError(pub i64);

/// A whole percentage, 1..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u8);

impl Percent {
    /// The percentage, 1..=100.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<i64> for Percent {
    type Error = PercentError;
    fn try_from(value: i64) -> Result<Self, PercentError> {
        match u8::try_from(value) {
            Ok(p) if (1..=100).contains(&p) => Ok(Percent(p)),
            _ => Err(PercentError(value)),
        }
    }
}

/// How a coupon discounts, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DiscountType {
    /// `discount_value` won off.
    Fixed,
    /// `discount_value` percent off.
    Percent,
}

impl DiscountType {
    /// The wire form: `FIXED` or `PERCENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscountType::Fixed => "FIXED",
            DiscountType::Percent => "PERCENT",
        }
    }

    /// The type of a wire form, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "FIXED" => Some(DiscountType::Fixed),
            "PERCENT" => Some(DiscountType::Percent),
            _ => None,
        }
    }
}

/// Why a discount definition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscountError {
    /// A FIXED value outside 1..=[`MAX_FIXED_DISCOUNT`].
    #[error("a FIXED discount is between 1 and {MAX_FIXED_DISCOUNT} won, got {0}")]
    Fixed(i64),
    /// A PERCENT value outside 1..=100.
    #[error("a PERCENT discount is between 1 and 100, got {0}")]
    Percent(i64),
    /// A `max_discount` outside 1..=[`MAX_DISCOUNT_CAP`].
    #[error("max_discount is between 1 and {MAX_DISCOUNT_CAP} won, got {0}")]
    Cap(i64),
    /// A `max_discount` on a FIXED coupon (it caps PERCENT discounts only).
    #[error("max_discount caps PERCENT discounts only; a FIXED coupon has none")]
    CapOnFixed,
}

impl DiscountError {
    /// The request field the refusal is about: `max_discount` or `discount_value`.
    pub fn field(&self) -> &'static str {
        match self {
            DiscountError::Fixed(_) | DiscountError::Percent(_) => "discount_value",
            DiscountError::Cap(_) | DiscountError::CapOnFixed => "max_discount",
        }
    }
}

/// What a coupon takes off an order. Build it with [`Discount::new`] or
/// [`Discount::with_cap`], which check the ranges (FIXED 1..=100,000,000 won, PERCENT
/// 1..=100, a cap 1..=100,000,000 won and only on PERCENT); [`crate::discount_for`]
/// never returns more than the subtotal whatever the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Discount {
    /// This many won off.
    Fixed(Money),
    /// This percentage off, rounded down to the won, and at most `cap` won when set.
    Percent {
        /// The percentage, 1..=100.
        percent: Percent,
        /// `max_discount`: the most won this discount takes off (`None`: no cap).
        cap: Option<Money>,
    },
}

impl Discount {
    /// A discount without a cap: `value` won off (FIXED) or `value` percent off (PERCENT).
    pub fn new(kind: DiscountType, value: i64) -> Result<Discount, DiscountError> {
        Discount::with_cap(kind, value, None)
    }

    /// A discount with an optional `max_discount` (PERCENT only; FIXED refuses one).
    pub fn with_cap(
        kind: DiscountType,
        value: i64,
        cap: Option<i64>,
    ) -> Result<Discount, DiscountError> {
        match kind {
            DiscountType::Fixed if cap.is_some() => Err(DiscountError::CapOnFixed),
            DiscountType::Fixed if (1..=MAX_FIXED_DISCOUNT).contains(&value) => {
                Money::try_from(value)
                    .map(Discount::Fixed)
                    .map_err(|_| DiscountError::Fixed(value))
            }
            DiscountType::Fixed => Err(DiscountError::Fixed(value)),
            DiscountType::Percent => {
                let percent =
                    Percent::try_from(value).map_err(|_| DiscountError::Percent(value))?;
                let cap = match cap {
                    None => None,
                    Some(won) if (1..=MAX_DISCOUNT_CAP).contains(&won) => {
                        Some(Money::try_from(won).map_err(|_| DiscountError::Cap(won))?)
                    }
                    Some(won) => return Err(DiscountError::Cap(won)),
                };
                Ok(Discount::Percent { percent, cap })
            }
        }
    }

    /// FIXED or PERCENT.
    pub fn kind(&self) -> DiscountType {
        match self {
            Discount::Fixed(_) => DiscountType::Fixed,
            Discount::Percent { .. } => DiscountType::Percent,
        }
    }

    /// The number the API shows as `discount_value` (won or percent).
    pub fn value(&self) -> i64 {
        match self {
            Discount::Fixed(m) => m.won(),
            Discount::Percent { percent, .. } => i64::from(percent.get()),
        }
    }

    /// The number the API shows as `max_discount`: the cap of a PERCENT discount.
    pub fn cap(&self) -> Option<Money> {
        match self {
            Discount::Fixed(_) => None,
            Discount::Percent { cap, .. } => *cap,
        }
    }
}

impl fmt::Display for Discount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discount::Fixed(m) => write!(f, "{} won off", m.won()),
            Discount::Percent { percent, cap: None } => write!(f, "{}% off", percent.get()),
            Discount::Percent {
                percent,
                cap: Some(cap),
            } => write!(f, "{}% off, at most {} won", percent.get(), cap.won()),
        }
    }
}

/// A validity window that does not start before it ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("valid_from must be before valid_until")]
pub struct WindowError;

/// When a coupon may be issued and used: `from <= now < until` (half-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidityWindow {
    from: Timestamp,
    until: Timestamp,
}

impl ValidityWindow {
    /// The window `from..until`; `from` must be before `until`.
    pub fn new(from: Timestamp, until: Timestamp) -> Result<Self, WindowError> {
        if from < until {
            Ok(Self { from, until })
        } else {
            Err(WindowError)
        }
    }

    /// The first instant it is valid (`valid_from`).
    pub fn from(&self) -> Timestamp {
        self.from
    }

    /// The first instant it is no longer valid (`valid_until`).
    pub fn until(&self) -> Timestamp {
        self.until
    }

    /// Is `now` inside the window (`from` included, `until` excluded)?
    pub fn contains(&self, now: Timestamp) -> bool {
        self.from <= now && now < self.until
    }

    /// Has the window ended at `now`?
    pub fn has_ended(&self, now: Timestamp) -> bool {
        now >= self.until
    }
}

/// A coupon definition and how many of it have been issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coupon {
    /// The coupon's id.
    pub id: CouponId,
    /// Its display name.
    pub name: CouponName,
    /// What it takes off an order.
    pub discount: Discount,
    /// The subtotal an order needs for the coupon to apply.
    pub min_order_amount: Money,
    /// `None`: unlimited.
    pub total_quantity: Option<Quantity>,
    /// Owners so far, from first-come-first-served issuing and from `issue_to`.
    pub issued_quantity: u64,
    /// When it may be issued and used.
    pub window: ValidityWindow,
    /// `false` once an admin deactivated it: it can no longer be issued nor used (orders
    /// already placed with it keep it).
    pub active: bool,
}

impl Coupon {
    /// Are all units issued?
    pub fn is_sold_out(&self) -> bool {
        self.total_quantity
            .is_some_and(|total| self.issued_quantity >= u64::from(total.get()))
    }
}

/// What is stored about a user's coupon; EXPIRED is not stored but derived
/// ([`UserCouponStatus::derive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoredStatus {
    /// Owned and not used.
    Available,
    /// Used by an order (`order_id`).
    Used,
}

impl StoredStatus {
    /// The stored form: `AVAILABLE` or `USED`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoredStatus::Available => "AVAILABLE",
            StoredStatus::Used => "USED",
        }
    }

    /// The status of a stored form, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "AVAILABLE" => Some(StoredStatus::Available),
            "USED" => Some(StoredStatus::Used),
            _ => None,
        }
    }
}

/// A user's coupon as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserCouponStatus {
    /// Owned, not used, and its window has not ended.
    Available,
    /// Used by an order.
    Used,
    /// Not used, and its validity window has ended.
    Expired,
}

impl UserCouponStatus {
    /// The status at `now`: USED stays USED; an unused coupon whose window has ended is
    /// EXPIRED; otherwise AVAILABLE (also before the window opens: it is owned and will
    /// become usable).
    pub fn derive(stored: StoredStatus, window: &ValidityWindow, now: Timestamp) -> Self {
        match stored {
            StoredStatus::Used => UserCouponStatus::Used,
            StoredStatus::Available if window.has_ended(now) => UserCouponStatus::Expired,
            StoredStatus::Available => UserCouponStatus::Available,
        }
    }

    /// The wire form: `AVAILABLE`, `USED` or `EXPIRED`.
    pub fn as_str(self) -> &'static str {
        match self {
            UserCouponStatus::Available => "AVAILABLE",
            UserCouponStatus::Used => "USED",
            UserCouponStatus::Expired => "EXPIRED",
        }
    }
}

/// A user's copy of a coupon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCoupon {
    /// The ownership's own id (the list's paging key; not shown).
    pub id: i64,
    /// The coupon owned.
    pub coupon: Coupon,
    /// Its owner.
    pub user_id: UserId,
    /// What is stored: AVAILABLE or USED.
    pub stored: StoredStatus,
    /// Derived at read time from `stored` and the window.
    pub status: UserCouponStatus,
    /// When the user got it.
    pub issued_at: Timestamp,
    /// When an order used it (USED only).
    pub used_at: Option<Timestamp>,
    /// The order the coupon is used on (USED only).
    pub order_id: Option<OrderId>,
}

/// Why an admin's coupon creation is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NewCouponError {
    /// `issue_to` has more than [`MAX_ISSUE_TO`] entries (how many it has).
    #[error("issue_to names at most {MAX_ISSUE_TO} users, got {0}")]
    TooManyRecipients(usize),
    /// More distinct `issue_to` users than `total_quantity`.
    #[error("issue_to names {distinct} distinct users, more than total_quantity {total}")]
    RecipientsExceedQuantity {
        /// Distinct users named.
        distinct: usize,
        /// The coupon's `total_quantity`.
        total: u32,
    },
}

/// An admin's request to create a coupon, checked as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCoupon {
    /// Its display name.
    pub name: CouponName,
    /// What it takes off an order.
    pub discount: Discount,
    /// The subtotal an order needs for it to apply.
    pub min_order_amount: Money,
    /// How many may be issued; `None`: unlimited.
    pub total_quantity: Option<Quantity>,
    /// When it may be issued and used.
    pub window: ValidityWindow,
    issue_to: Vec<UserId>,
}

impl NewCoupon {
    /// `issue_to` may name a user twice (counted once) and at most [`MAX_ISSUE_TO`]
    /// entries; its distinct users must fit in `total_quantity`.
    pub fn new(
        name: CouponName,
        discount: Discount,
        min_order_amount: Money,
        total_quantity: Option<Quantity>,
        window: ValidityWindow,
        issue_to: Vec<UserId>,
    ) -> Result<Self, NewCouponError> {
        if issue_to.len() > MAX_ISSUE_TO {
            return Err(NewCouponError::TooManyRecipients(issue_to.len()));
        }
        let distinct: Vec<UserId> = issue_to
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if let Some(total) = total_quantity {
            if distinct.len() > total.get() as usize {
                return Err(NewCouponError::RecipientsExceedQuantity {
                    distinct: distinct.len(),
                    total: total.get(),
                });
            }
        }
        Ok(Self {
            name,
            discount,
            min_order_amount,
            total_quantity,
            window,
            issue_to: distinct,
        })
    }

    /// The distinct users to issue to, ascending (the order rows are locked and written in).
    pub fn issue_to(&self) -> &[UserId] {
        &self.issue_to
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationKind {
    /// A coupon was issued to the user by an admin (`issue_to`).
    CouponIssued,
}

impl NotificationKind {
    /// The wire form, e.g. `COUPON_ISSUED`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::CouponIssued => "COUPON_ISSUED",
        }
    }

    /// The kind of a wire form, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "COUPON_ISSUED" => Some(NotificationKind::CouponIssued),
            _ => None,
        }
    }
}

/// One message in a user's inbox. The inbox row is the notification: delivering it
/// anywhere else (push, e-mail) would be a relay reading these rows after commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notification's id.
    pub id: NotificationId,
    /// Whose inbox it is in.
    pub user_id: UserId,
    /// What it is about.
    pub kind: NotificationKind,
    /// The text shown to the user.
    pub message: String,
    /// The coupon it is about (COUPON_ISSUED).
    pub coupon_id: Option<CouponId>,
    /// When it was written.
    pub created_at: Timestamp,
    /// Has the user marked it read?
    pub read: bool,
}

#[cfg(test)]
mod name_tests {
    use super::*;

    /// Invariant: a coupon name follows the shared text rule (a NUL once reached
    /// PostgreSQL and answered 500; control characters reached notifications).
    #[test]
    fn coupon_names_refuse_nul_control_characters_blank_and_overlong() {
        for (bad, why) in [
            ("a\0b", TextError::ControlCharacter),
            ("two\nlines", TextError::ControlCharacter),
            ("   ", TextError::Blank),
        ] {
            assert_eq!(
                CouponName::try_from(bad.to_string()),
                Err(CouponNameError(why))
            );
        }
        assert!(CouponName::try_from("x".repeat(201)).is_err());
        assert!(CouponName::try_from("Welcome 10%".to_string()).is_ok());
    }
}
