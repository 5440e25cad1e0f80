//! Pure order rules: pricing, totals and the state machine, which the decisions of
//! [`crate::plan`] are made of.

use crate::model::*;
use kernel::{Money, MoneyError, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
/// Why the lines could not be priced.
pub enum PricingError {
    #[error("no price for product {0}")]
    /// A line's product was not read with the order.
    MissingProduct(kernel::ProductId),
    #[error("the order total overflows")]
    /// The total passes `i64::MAX` won.
    Overflow,
}

impl From<MoneyError> for PricingError {
    fn from(_: MoneyError) -> Self {
        PricingError::Overflow
    }
}

/// The lines priced with `products` (as read when the stock was reserved), in request
/// order, and their subtotal. Checked arithmetic throughout.
pub fn price_lines(
    lines: &[LineRequest],
    products: &[PricedProduct],
) -> Result<(Vec<OrderLine>, Money), PricingError> {
    let mut priced = Vec::with_capacity(lines.len());
    let mut subtotal = Money::ZERO;
    for line in lines {
        let product = products
            .iter()
            .find(|p| p.id == line.product_id)
            .ok_or(PricingError::MissingProduct(line.product_id))?;
        let line_total = product.unit_price.checked_mul(line.quantity)?;
        subtotal = subtotal.checked_add(line_total)?;
        priced.push(OrderLine {
            product_id: product.id,
            name: product.name.clone(),
            unit_price: product.unit_price,
            quantity: line.quantity,
            subtotal: line_total,
        });
    }
    Ok((priced, subtotal))
}

/// Subtotal, discount and total of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// The sum of the lines.
    pub subtotal: Money,
    /// What the coupon takes off (at most the subtotal).
    pub discount: Money,
    /// `subtotal - discount`.
    pub total: Money,
}

/// `total = subtotal - discount`; the discount never exceeds the subtotal.
pub fn totals(subtotal: Money, discount: Money) -> Totals {
    let discount = discount.min(subtotal);
    let total = subtotal.checked_sub(discount).unwrap_or(Money::ZERO);
    Totals {
        subtotal,
        discount,
        total,
    }
}

/// Why an order cannot be paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotPayable {
    #[error("the order is {}", .0.as_str())]
    /// Only a PENDING order is paid.
    InvalidState(OrderStatus),
    #[error("the order expired")]
    /// The order passed its `expires_at`.
    Expired,
}

/// PENDING and not past `expires_at` may be paid.
pub fn check_payable(
    status: OrderStatus,
    expires_at: Timestamp,
    now: Timestamp,
) -> Result<(), NotPayable> {
    match status {
        OrderStatus::Pending if now >= expires_at => Err(NotPayable::Expired),
        OrderStatus::Pending => Ok(()),
        other => Err(NotPayable::InvalidState(other)),
    }
}

/// What cancelling an order undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelEffect {
    /// Give the stock and the coupon back (a PENDING order).
    Release,
    /// Also give the money back, mark the payment REFUNDED and report `order.cancelled`
    /// (a PAID order).
    ReleaseAndRefund,
}

/// The status an order is in does not allow cancelling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {} order cannot be cancelled", .0.as_str())]
pub struct NotCancellable(pub OrderStatus);

/// The state machine of cancelling: PENDING -> CANCELLED releases; PAID -> CANCELLED
/// also refunds (only on request: a paid order never expires); CANCELLED is final.
pub fn cancel_effect(
    status: OrderStatus,
    reason: CancelReason,
) -> Result<CancelEffect, NotCancellable> {
    match (status, reason) {
        (OrderStatus::Pending, _) => Ok(CancelEffect::Release),
        (OrderStatus::Paid, CancelReason::UserRequest) => Ok(CancelEffect::ReleaseAndRefund),
        (other, _) => Err(NotCancellable(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use kernel::testing::{pid, won as m};
    use kernel::Quantity;
    use proptest::prelude::*;

    fn line(p: i64, q: i64) -> LineRequest {
        LineRequest {
            product_id: pid(p),
            quantity: Quantity::try_from(q).unwrap(),
        }
    }
    fn product(p: i64, price: i64) -> PricedProduct {
        PricedProduct {
            id: pid(p),
            name: format!("p{p}"),
            unit_price: m(price),
        }
    }
    fn t(min: u32) -> Timestamp {
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 21, 9, min, 0)
            .unwrap()
    }

    #[test]
    fn lines_are_priced_in_request_order_with_their_subtotals() {
        let (lines, subtotal) = price_lines(
            &[line(2, 3), line(1, 1)],
            &[product(1, 1_000), product(2, 250)],
        )
        .unwrap();
        assert_eq!(
            lines.iter().map(|l| l.product_id.get()).collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert_eq!(lines[0].subtotal, m(750));
        assert_eq!(lines[0].name, "p2");
        assert_eq!(subtotal, m(1_750));
    }

    #[test]
    fn pricing_refuses_a_missing_product_and_overflow() {
        assert_eq!(
            price_lines(&[line(9, 1)], &[product(1, 5)]),
            Err(PricingError::MissingProduct(pid(9)))
        );
        assert_eq!(
            price_lines(&[line(1, 1000)], &[product(1, i64::MAX / 10)]),
            Err(PricingError::Overflow)
        );
    }

    #[test]
    fn only_pending_unexpired_orders_are_payable() {
        assert_eq!(check_payable(OrderStatus::Pending, t(15), t(14)), Ok(()));
        assert_eq!(
            check_payable(OrderStatus::Pending, t(15), t(15)),
            Err(NotPayable::Expired)
        );
        assert_eq!(
            check_payable(OrderStatus::Paid, t(15), t(1)),
            Err(NotPayable::InvalidState(OrderStatus::Paid))
        );
        assert_eq!(
            check_payable(OrderStatus::Cancelled, t(15), t(1)),
            Err(NotPayable::InvalidState(OrderStatus::Cancelled))
        );
    }

    #[test]
    fn cancelling_follows_the_state_machine() {
        use CancelReason::*;
        assert_eq!(
            cancel_effect(OrderStatus::Pending, UserRequest),
            Ok(CancelEffect::Release)
        );
        assert_eq!(
            cancel_effect(OrderStatus::Pending, Expired),
            Ok(CancelEffect::Release)
        );
        assert_eq!(
            cancel_effect(OrderStatus::Paid, UserRequest),
            Ok(CancelEffect::ReleaseAndRefund)
        );
        // a paid order never expires
        assert_eq!(
            cancel_effect(OrderStatus::Paid, Expired),
            Err(NotCancellable(OrderStatus::Paid))
        );
        assert_eq!(
            cancel_effect(OrderStatus::Cancelled, UserRequest),
            Err(NotCancellable(OrderStatus::Cancelled))
        );
    }

    #[test]
    fn place_order_validates_lines() {
        let user = kernel::UserId::try_from(1).unwrap();
        assert!(PlaceOrder::new(user, vec![], None, false).is_err());
        let dup = PlaceOrder::new(user, vec![line(1, 1), line(1, 2)], None, false).unwrap_err();
        assert_eq!(dup[0].field, "items[1].product_id");
        let big = PlaceOrder::new(user, vec![line(1, 1001)], None, false).unwrap_err();
        assert_eq!(big[0].field, "items[0].quantity");
        let many: Vec<_> = (1..=51).map(|p| line(p, 1)).collect();
        assert!(PlaceOrder::new(user, many, None, false).is_err());
        let fifty: Vec<_> = (1..=50).map(|p| line(p, 1000)).collect();
        assert!(PlaceOrder::new(user, fifty, None, true).is_ok());
    }

    proptest! {
        // Invariant: total = subtotal - discount, 0 <= discount <= subtotal.
        #[test]
        fn totals_never_go_negative(subtotal in 0i64..=i64::MAX, discount in 0i64..=i64::MAX) {
            let t = totals(m(subtotal), m(discount));
            prop_assert!(t.discount <= t.subtotal);
            prop_assert_eq!(t.total.won(), subtotal - t.discount.won());
            prop_assert_eq!(t.discount.won(), discount.min(subtotal));
        }

        // Invariant: the subtotal is exactly the sum of price * quantity (or refused).
        #[test]
        fn subtotal_is_the_exact_sum(prices in proptest::collection::vec((1i64..=100_000_000, 1i64..=1000), 1..=50)) {
            let lines: Vec<_> = prices.iter().enumerate().map(|(i, (_, q))| line(i as i64 + 1, *q)).collect();
            let products: Vec<_> = prices.iter().enumerate().map(|(i, (p, _))| product(i as i64 + 1, *p)).collect();
            let (priced, subtotal) = price_lines(&lines, &products).unwrap();
            let exact: i128 = prices.iter().map(|(p, q)| i128::from(*p) * i128::from(*q)).sum();
            prop_assert_eq!(i128::from(subtotal.won()), exact);
            prop_assert_eq!(priced.len(), lines.len());
        }
    }
}
