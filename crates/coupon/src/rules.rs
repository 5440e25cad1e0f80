//! Pure coupon rules. The adapter calls them on rows it holds locked, so the decision
//! and the write happen in one transaction.

use crate::model::{Coupon, Discount, StoredStatus, UserCoupon};
use kernel::{Money, OrderId, Timestamp, UserId};

/// The discount `discount` gives on `subtotal`: FIXED takes its value off, PERCENT takes
/// `floor(subtotal * p / 100)` off and at most its cap (`max_discount`) when it has one;
/// either way never more than the subtotal (so `subtotal - discount` is never negative).
/// Exact: computed in `i128`, no overflow.
pub fn discount_for(discount: &Discount, subtotal: Money) -> Money {
    let raw = match discount {
        Discount::Fixed(value) => *value,
        Discount::Percent { percent, cap } => {
            let off = i128::from(subtotal.won()) * i128::from(percent.get()) / 100;
            // p <= 100, so 0 <= off <= subtotal: the conversion cannot fail.
            let off = i64::try_from(off)
                .ok()
                .and_then(|won| Money::try_from(won).ok())
                .unwrap_or(subtotal);
            match cap {
                Some(cap) => off.min(*cap),
                None => off,
            }
        }
    };
    raw.min(subtotal)
}

/// Why a coupon cannot be used on an order. [`Unusable::code`] is its stable wire name
/// (the `reason` of a `COUPON_NOT_USABLE` problem).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Unusable {
    /// The ordering user does not own the coupon.
    #[error("the user does not own this coupon")]
    NotOwned,
    /// The user's copy is already USED (by another order).
    #[error("the coupon is already used")]
    AlreadyUsed,
    /// An admin deactivated the coupon.
    #[error("the coupon has been deactivated")]
    Inactive,
    /// `now` is before `valid_from`.
    #[error("the coupon's validity window has not started")]
    NotYetValid,
    /// `now` is at or after `valid_until`.
    #[error("the coupon's validity window has ended")]
    Expired,
    /// The order subtotal is below the coupon's `min_order_amount`.
    #[error("the order subtotal is below the coupon's minimum order amount")]
    BelowMinimum,
}

impl Unusable {
    /// Every reason, in the order [`check_usable`] checks them.
    pub const ALL: [Unusable; 6] = [
        Unusable::NotOwned,
        Unusable::AlreadyUsed,
        Unusable::Inactive,
        Unusable::NotYetValid,
        Unusable::Expired,
        Unusable::BelowMinimum,
    ];

    /// The stable wire name: `NOT_OWNED`, `ALREADY_USED`, `INACTIVE`, `NOT_YET_VALID`,
    /// `EXPIRED` or `BELOW_MIN_ORDER_AMOUNT`.
    pub const fn code(self) -> &'static str {
        match self {
            Unusable::NotOwned => "NOT_OWNED",
            Unusable::AlreadyUsed => "ALREADY_USED",
            Unusable::Inactive => "INACTIVE",
            Unusable::NotYetValid => "NOT_YET_VALID",
            Unusable::Expired => "EXPIRED",
            Unusable::BelowMinimum => "BELOW_MIN_ORDER_AMOUNT",
        }
    }
}

/// May `user` use this coupon on an order of `subtotal` at `now`? `owned` is the user's
/// copy (None: the user does not own it). Usable when the user owns it, it is
/// AVAILABLE, the coupon is active, `now` is within the window and the subtotal reaches
/// the minimum; otherwise the first broken condition, in the order of [`Unusable::ALL`].
pub fn check_usable(
    owned: Option<&UserCoupon>,
    user: UserId,
    subtotal: Money,
    now: Timestamp,
) -> Result<(), Unusable> {
    let owned = owned
        .filter(|o| o.user_id == user)
        .ok_or(Unusable::NotOwned)?;
    if owned.stored == StoredStatus::Used {
        return Err(Unusable::AlreadyUsed);
    }
    if !owned.coupon.active {
        return Err(Unusable::Inactive);
    }
    let window = &owned.coupon.window;
    if now < window.from() {
        return Err(Unusable::NotYetValid);
    }
    if window.has_ended(now) {
        return Err(Unusable::Expired);
    }
    if subtotal < owned.coupon.min_order_amount {
        return Err(Unusable::BelowMinimum);
    }
    Ok(())
}

/// What using a coupon on an order does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseDecision {
    /// Mark it USED for the order; the order gets this discount.
    Apply(Money),
    /// It is already USED by this very order (a retry): change nothing, same discount.
    AlreadyApplied(Money),
}

impl UseDecision {
    /// The order's discount either way.
    pub fn discount(self) -> Money {
        match self {
            UseDecision::Apply(m) | UseDecision::AlreadyApplied(m) => m,
        }
    }
}

/// Using a coupon on `order`, idempotently: a coupon already used by this same order
/// is accepted again with the same discount (even if it has since been deactivated or
/// has expired: the use happened while it was usable); otherwise [`check_usable`]
/// decides.
pub fn decide_use(
    owned: Option<&UserCoupon>,
    user: UserId,
    order: OrderId,
    subtotal: Money,
    now: Timestamp,
) -> Result<UseDecision, Unusable> {
    if let Some(o) = owned {
        if o.user_id == user && o.stored == StoredStatus::Used && o.order_id == Some(order) {
            return Ok(UseDecision::AlreadyApplied(discount_for(
                &o.coupon.discount,
                subtotal,
            )));
        }
    }
    check_usable(owned, user, subtotal, now)?;
    let coupon = &owned.ok_or(Unusable::NotOwned)?.coupon;
    Ok(UseDecision::Apply(discount_for(&coupon.discount, subtotal)))
}

/// Why a coupon cannot be issued to a user now (first come, first served).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum IssueRefusal {
    /// The user already owns it (a user owns a coupon at most once).
    #[error("the user already owns this coupon")]
    AlreadyIssued,
    /// An admin deactivated the coupon.
    #[error("the coupon has been deactivated")]
    Deactivated,
    /// Now is outside the coupon's validity window.
    #[error("the coupon is outside its validity window")]
    NotActive,
    /// Every unit of `total_quantity` is issued.
    #[error("every unit of this coupon has been issued")]
    SoldOut,
}

/// Why first-come-first-served issuing refuses `coupon` to a user at `now`
/// (`already_owned`: the user owns it already). Checked in this order: the user already
/// owns it, the coupon is deactivated, the window, the quantity. `None`: it may be
/// issued (a store that claimed nothing and finds `None` has met something unexpected).
pub fn issue_refusal(coupon: &Coupon, already_owned: bool, now: Timestamp) -> Option<IssueRefusal> {
    if already_owned {
        Some(IssueRefusal::AlreadyIssued)
    } else if !coupon.active {
        Some(IssueRefusal::Deactivated)
    } else if !coupon.window.contains(now) {
        Some(IssueRefusal::NotActive)
    } else if coupon.is_sold_out() {
        Some(IssueRefusal::SoldOut)
    } else {
        None
    }
}

/// The text of the COUPON_ISSUED notification.
pub fn coupon_issued_message(coupon: &Coupon) -> String {
    format!(
        "You received the coupon \"{}\" ({}), valid until {}.",
        coupon.name,
        coupon.discount,
        coupon.window.until().format("%Y-%m-%d %H:%M UTC")
    )
}

/// How many slots a coupon's units are split over: concurrent first-come-first-served
/// issues take from different slots instead of queueing on one counter (ADR 0009).
pub const SLOTS: i16 = 8;

/// One slot of a coupon's units, as a new coupon starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssueSlot {
    /// Which slot, 0..[`SLOTS`].
    pub index: i16,
    /// Owners this slot gave out.
    pub issued: u64,
    /// Units it may still give (`None`: unlimited).
    pub remaining: Option<u64>,
}

/// The slots of a new coupon with `issued` owners already (its `issue_to`): they are
/// counted in slot 0; what is left of `total` (none for an unlimited coupon) is spread
/// evenly, the first slots taking the remainder. The slots never give out more than
/// `total` in all.
pub fn initial_issue_slots(total: Option<kernel::Quantity>, issued: u64) -> Vec<IssueSlot> {
    let left = total.map(|t| u64::from(t.get()).saturating_sub(issued));
    let n = SLOTS as u64;
    (0..SLOTS)
        .map(|index| IssueSlot {
            index,
            issued: if index == 0 { issued } else { 0 },
            remaining: left.map(|l| l / n + u64::from((index as u64) < l % n)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Invariant: a coupon's slots never give out more than its total, issue_to included.
    #[test]
    fn a_new_coupons_slots_hold_exactly_what_is_left() {
        let slots = initial_issue_slots(Some(kernel::Quantity::try_from(100).unwrap()), 3);
        assert_eq!(slots.len(), SLOTS as usize);
        assert_eq!(slots.iter().map(|s| s.issued).sum::<u64>(), 3);
        assert_eq!(slots.iter().map(|s| s.remaining.unwrap()).sum::<u64>(), 97);
        assert!(initial_issue_slots(None, 5)
            .iter()
            .all(|s| s.remaining.is_none()));
    }
    use crate::model::*;
    use chrono::Duration;
    use kernel::testing::{oid as order, t0, uid as user, won as m};
    use kernel::{CouponId, Quantity};
    use proptest::prelude::*;

    fn percent(p: i64) -> Discount {
        Discount::new(DiscountType::Percent, p).unwrap()
    }

    fn fixed(v: i64) -> Discount {
        Discount::new(DiscountType::Fixed, v).unwrap()
    }

    fn coupon(discount: Discount, min: i64, total: Option<i64>, issued: u64) -> Coupon {
        Coupon {
            id: CouponId::try_from(1).unwrap(),
            name: CouponName::try_from("Welcome".to_string()).unwrap(),
            discount,
            min_order_amount: m(min),
            total_quantity: total.map(|t| Quantity::try_from(t).unwrap()),
            issued_quantity: issued,
            window: ValidityWindow::new(t0(), t0() + Duration::days(7)).unwrap(),
            active: true,
        }
    }

    fn capped(p: i64, cap: i64) -> Discount {
        Discount::with_cap(DiscountType::Percent, p, Some(cap)).unwrap()
    }

    fn owned(c: Coupon, owner: i64, stored: StoredStatus, used_by: Option<i64>) -> UserCoupon {
        UserCoupon {
            id: 1,
            status: UserCouponStatus::derive(stored, &c.window, t0()),
            coupon: c,
            user_id: user(owner),
            stored,
            issued_at: t0(),
            used_at: used_by.map(|_| t0()),
            order_id: used_by.map(order),
        }
    }

    #[test]
    fn fixed_takes_its_value_off_but_never_more_than_the_subtotal() {
        assert_eq!(discount_for(&fixed(5_000), m(20_000)), m(5_000));
        assert_eq!(discount_for(&fixed(5_000), m(3_000)), m(3_000));
        assert_eq!(discount_for(&fixed(5_000), Money::ZERO), Money::ZERO);
    }

    #[test]
    fn percent_rounds_down_to_the_won() {
        assert_eq!(discount_for(&percent(10), m(12_345)), m(1_234));
        assert_eq!(discount_for(&percent(33), m(100)), m(33));
        assert_eq!(discount_for(&percent(1), m(99)), Money::ZERO);
        assert_eq!(discount_for(&percent(100), m(777)), m(777));
        // no overflow at the top of the range
        assert_eq!(
            discount_for(&percent(100), m(i64::MAX)),
            m(i64::MAX),
            "100% of i64::MAX"
        );
        assert_eq!(discount_for(&percent(50), m(i64::MAX)), m(i64::MAX / 2));
    }

    #[test]
    fn a_capped_percent_takes_at_most_its_cap() {
        // 10% of 100,000 is 10,000, capped at 5,000
        assert_eq!(discount_for(&capped(10, 5_000), m(100_000)), m(5_000));
        // under the cap: the plain percentage
        assert_eq!(discount_for(&capped(10, 5_000), m(30_000)), m(3_000));
        // exactly at the cap
        assert_eq!(discount_for(&capped(10, 5_000), m(50_000)), m(5_000));
        // 100% capped: the cap, and never more than the subtotal
        assert_eq!(discount_for(&capped(100, 7_000), m(50_000)), m(7_000));
        assert_eq!(discount_for(&capped(100, 7_000), m(6_000)), m(6_000));
        assert_eq!(discount_for(&capped(50, 1), Money::ZERO), Money::ZERO);
    }

    #[test]
    fn a_cap_is_range_checked_and_only_for_percent() {
        let with = |kind, value, cap| Discount::with_cap(kind, value, cap);
        assert_eq!(
            with(DiscountType::Fixed, 1_000, Some(500)),
            Err(DiscountError::CapOnFixed)
        );
        assert_eq!(DiscountError::CapOnFixed.field(), "max_discount");
        assert_eq!(
            with(DiscountType::Percent, 10, Some(0)),
            Err(DiscountError::Cap(0))
        );
        assert_eq!(
            with(DiscountType::Percent, 10, Some(100_000_001)),
            Err(DiscountError::Cap(100_000_001))
        );
        assert_eq!(DiscountError::Cap(0).field(), "max_discount");
        assert_eq!(DiscountError::Percent(0).field(), "discount_value");
        let top = with(DiscountType::Percent, 10, Some(100_000_000)).unwrap();
        assert_eq!(top.cap(), Some(m(100_000_000)));
        assert_eq!(
            with(DiscountType::Percent, 10, Some(1)).unwrap().cap(),
            Some(m(1))
        );
        // the value is checked before the cap
        assert_eq!(
            with(DiscountType::Percent, 0, Some(1)),
            Err(DiscountError::Percent(0))
        );
        assert_eq!(fixed(5).cap(), None);
        assert_eq!(percent(5).cap(), None);
        assert_eq!(capped(15, 3_000).to_string(), "15% off, at most 3000 won");
    }

    #[test]
    fn every_unusable_reason_has_a_distinct_stable_code() {
        let codes: Vec<&str> = Unusable::ALL.iter().map(|u| u.code()).collect();
        assert_eq!(
            codes,
            [
                "NOT_OWNED",
                "ALREADY_USED",
                "INACTIVE",
                "NOT_YET_VALID",
                "EXPIRED",
                "BELOW_MIN_ORDER_AMOUNT"
            ]
        );
    }

    #[test]
    fn discount_values_are_range_checked() {
        assert!(Discount::new(DiscountType::Fixed, 0).is_err());
        assert!(Discount::new(DiscountType::Fixed, 100_000_001).is_err());
        assert!(Discount::new(DiscountType::Fixed, 100_000_000).is_ok());
        assert!(Discount::new(DiscountType::Percent, 0).is_err());
        assert!(Discount::new(DiscountType::Percent, 101).is_err());
        assert!(Discount::new(DiscountType::Percent, -5).is_err());
        assert_eq!(percent(100).value(), 100);
    }

    #[test]
    fn an_owned_available_coupon_in_its_window_above_the_minimum_is_usable() {
        let o = owned(
            coupon_min(fixed(1_000), 10_000),
            7,
            StoredStatus::Available,
            None,
        );
        assert_eq!(check_usable(Some(&o), user(7), m(10_000), t0()), Ok(()));
    }

    fn coupon_min(discount: Discount, min: i64) -> Coupon {
        coupon(discount, min, None, 0)
    }

    #[test]
    fn check_usable_refuses_each_broken_condition() {
        let c = coupon_min(fixed(1_000), 10_000);
        let mine = owned(c.clone(), 7, StoredStatus::Available, None);
        assert_eq!(
            check_usable(None, user(7), m(50_000), t0()),
            Err(Unusable::NotOwned)
        );
        assert_eq!(
            check_usable(Some(&mine), user(8), m(50_000), t0()),
            Err(Unusable::NotOwned)
        );
        let used = owned(c.clone(), 7, StoredStatus::Used, Some(3));
        assert_eq!(
            check_usable(Some(&used), user(7), m(50_000), t0()),
            Err(Unusable::AlreadyUsed)
        );
        assert_eq!(
            check_usable(
                Some(&mine),
                user(7),
                m(50_000),
                t0() - Duration::microseconds(1)
            ),
            Err(Unusable::NotYetValid)
        );
        // the window's end is excluded
        assert_eq!(
            check_usable(Some(&mine), user(7), m(50_000), t0() + Duration::days(7)),
            Err(Unusable::Expired)
        );
        assert_eq!(
            check_usable(Some(&mine), user(7), m(9_999), t0()),
            Err(Unusable::BelowMinimum)
        );
        let inactive = owned(
            Coupon {
                active: false,
                ..c.clone()
            },
            7,
            StoredStatus::Available,
            None,
        );
        assert_eq!(
            check_usable(Some(&inactive), user(7), m(50_000), t0()),
            Err(Unusable::Inactive)
        );
    }

    // Invariant: each broken condition is reported as the first one in Unusable::ALL's
    // order, so the reason a client sees does not depend on which others also hold.
    #[test]
    fn reasons_are_reported_in_a_fixed_order() {
        let dead = Coupon {
            active: false,
            ..coupon_min(fixed(1_000), 10_000)
        };
        let late = t0() + Duration::days(8);
        let used = owned(dead.clone(), 7, StoredStatus::Used, Some(3));
        // used, inactive, expired and below the minimum: ALREADY_USED
        assert_eq!(
            check_usable(Some(&used), user(7), m(1), late),
            Err(Unusable::AlreadyUsed)
        );
        let avail = owned(dead, 7, StoredStatus::Available, None);
        // inactive, expired and below the minimum: INACTIVE
        assert_eq!(
            check_usable(Some(&avail), user(7), m(1), late),
            Err(Unusable::Inactive)
        );
        // someone else's: NOT_OWNED before anything else
        assert_eq!(
            check_usable(Some(&avail), user(8), m(1), late),
            Err(Unusable::NotOwned)
        );
    }

    #[test]
    fn using_again_for_the_same_order_is_accepted_with_the_same_discount() {
        let c = coupon_min(percent(10), 0);
        let used = owned(c, 7, StoredStatus::Used, Some(3));
        assert_eq!(
            decide_use(Some(&used), user(7), order(3), m(10_000), t0()),
            Ok(UseDecision::AlreadyApplied(m(1_000)))
        );
        // even after the window ended: the use happened while it was valid
        assert_eq!(
            decide_use(
                Some(&used),
                user(7),
                order(3),
                m(10_000),
                t0() + Duration::days(30)
            ),
            Ok(UseDecision::AlreadyApplied(m(1_000)))
        );
        assert_eq!(
            decide_use(Some(&used), user(7), order(4), m(10_000), t0()),
            Err(Unusable::AlreadyUsed)
        );
        let avail = owned(coupon_min(percent(10), 0), 7, StoredStatus::Available, None);
        assert_eq!(
            decide_use(Some(&avail), user(7), order(4), m(10_000), t0()),
            Ok(UseDecision::Apply(m(1_000)))
        );
        assert_eq!(
            decide_use(None, user(7), order(4), m(10_000), t0()),
            Err(Unusable::NotOwned)
        );
    }

    // Invariant: a deactivated coupon is never applied to a new order, but an order that
    // already uses it (a retry of that order) keeps it with the same, capped, discount.
    #[test]
    fn a_deactivated_coupon_is_refused_for_new_orders_only() {
        let dead = Coupon {
            active: false,
            ..coupon_min(capped(10, 500), 0)
        };
        let avail = owned(dead.clone(), 7, StoredStatus::Available, None);
        assert_eq!(
            decide_use(Some(&avail), user(7), order(4), m(10_000), t0()),
            Err(Unusable::Inactive)
        );
        let used = owned(dead, 7, StoredStatus::Used, Some(3));
        assert_eq!(
            decide_use(Some(&used), user(7), order(3), m(10_000), t0()),
            Ok(UseDecision::AlreadyApplied(m(500)))
        );
    }

    #[test]
    fn expired_is_derived_from_the_window_and_used_stays_used() {
        let w = ValidityWindow::new(t0(), t0() + Duration::days(1)).unwrap();
        let before = t0() - Duration::days(1);
        let after = t0() + Duration::days(1);
        assert_eq!(
            UserCouponStatus::derive(StoredStatus::Available, &w, before),
            UserCouponStatus::Available
        );
        assert_eq!(
            UserCouponStatus::derive(StoredStatus::Available, &w, t0()),
            UserCouponStatus::Available
        );
        assert_eq!(
            UserCouponStatus::derive(StoredStatus::Available, &w, after),
            UserCouponStatus::Expired
        );
        assert_eq!(
            UserCouponStatus::derive(StoredStatus::Used, &w, after),
            UserCouponStatus::Used
        );
    }

    #[test]
    fn issue_refusals_are_reported_in_order() {
        let sold_out = coupon(fixed(1), 0, Some(2), 2);
        assert!(matches!(
            issue_refusal(&sold_out, true, t0()),
            Some(IssueRefusal::AlreadyIssued)
        ));
        assert!(matches!(
            issue_refusal(&sold_out, false, t0() - Duration::seconds(1)),
            Some(IssueRefusal::NotActive)
        ));
        assert!(matches!(
            issue_refusal(&sold_out, false, t0()),
            Some(IssueRefusal::SoldOut)
        ));
        let open = coupon(fixed(1), 0, Some(2), 1);
        assert!(issue_refusal(&open, false, t0()).is_none());
        let deactivated = Coupon {
            active: false,
            ..open.clone()
        };
        assert!(matches!(
            issue_refusal(&deactivated, false, t0()),
            Some(IssueRefusal::Deactivated)
        ));
        // deactivation is reported before the window
        assert!(matches!(
            issue_refusal(&deactivated, false, t0() - Duration::seconds(1)),
            Some(IssueRefusal::Deactivated)
        ));
        assert!(matches!(
            issue_refusal(&deactivated, true, t0()),
            Some(IssueRefusal::AlreadyIssued)
        ));
        let unlimited = coupon(fixed(1), 0, None, 1_000_000);
        assert!(issue_refusal(&unlimited, false, t0()).is_none());
    }

    #[test]
    fn the_notification_names_the_coupon_and_its_discount() {
        let msg = coupon_issued_message(&coupon_min(percent(15), 0));
        assert!(msg.contains("\"Welcome\""), "{msg}");
        assert!(msg.contains("15% off"), "{msg}");
    }

    proptest! {
        // Invariant: the discount is never negative and never above the subtotal.
        #[test]
        fn discount_stays_within_zero_and_the_subtotal(
            subtotal in 0i64..=i64::MAX,
            fixed_value in 1i64..=100_000_000,
            p in 1i64..=100,
        ) {
            for d in [fixed(fixed_value), percent(p), capped(p, fixed_value)] {
                let off = discount_for(&d, m(subtotal));
                prop_assert!(off.won() >= 0);
                prop_assert!(off.won() <= subtotal);
            }
        }

        // Invariant: PERCENT is exactly floor(subtotal * p / 100), computed in i128.
        #[test]
        fn percent_is_the_floor_of_the_exact_product(subtotal in 0i64..=i64::MAX, p in 1i64..=100) {
            let exact = i128::from(subtotal) * i128::from(p) / 100;
            prop_assert_eq!(i128::from(discount_for(&percent(p), m(subtotal)).won()), exact);
        }

        // Invariant: FIXED is exactly min(value, subtotal).
        #[test]
        fn fixed_is_the_smaller_of_value_and_subtotal(subtotal in 0i64..=i64::MAX, v in 1i64..=100_000_000) {
            prop_assert_eq!(discount_for(&fixed(v), m(subtotal)).won(), v.min(subtotal));
        }

        // Invariant: a capped PERCENT is exactly min(floor(subtotal * p / 100), cap), so it
        // never passes the cap nor the subtotal.
        #[test]
        fn capped_percent_is_the_floor_then_the_cap(
            subtotal in 0i64..=i64::MAX,
            p in 1i64..=100,
            cap in 1i64..=100_000_000,
        ) {
            let off = discount_for(&capped(p, cap), m(subtotal)).won();
            let floor = i128::from(subtotal) * i128::from(p) / 100;
            prop_assert_eq!(i128::from(off), floor.min(i128::from(cap)));
            prop_assert!(off <= cap && off <= subtotal && off >= 0);
        }

        // Invariant: a cap only ever lowers a discount, and changes nothing when the
        // uncapped discount is within it.
        #[test]
        fn a_cap_never_raises_the_discount(
            subtotal in 0i64..=10_000_000_000,
            p in 1i64..=100,
            cap in 1i64..=100_000_000,
        ) {
            let plain = discount_for(&percent(p), m(subtotal));
            let with_cap = discount_for(&capped(p, cap), m(subtotal));
            prop_assert!(with_cap <= plain);
            if plain.won() <= cap {
                prop_assert_eq!(with_cap, plain);
            }
        }

        // Invariant: a larger subtotal never gets a smaller discount (any kind, capped or not).
        #[test]
        fn the_discount_grows_with_the_subtotal(
            a in 0i64..=10_000_000_000,
            b in 0i64..=10_000_000_000,
            v in 1i64..=100_000_000,
            p in 1i64..=100,
            cap in 1i64..=100_000_000,
        ) {
            let (lo, hi) = (a.min(b), a.max(b));
            for d in [fixed(v), percent(p), capped(p, cap)] {
                prop_assert!(discount_for(&d, m(lo)) <= discount_for(&d, m(hi)));
            }
        }

        // Invariant: below the minimum never usable; at or above it (otherwise fine) always.
        #[test]
        fn the_minimum_order_amount_decides_exactly(min in 0i64..=1_000_000, subtotal in 0i64..=1_000_000) {
            let o = owned(coupon_min(fixed(1), min), 1, StoredStatus::Available, None);
            let ok = check_usable(Some(&o), user(1), m(subtotal), t0()).is_ok();
            prop_assert_eq!(ok, subtotal >= min);
        }
    }
}
