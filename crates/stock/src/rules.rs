//! Pure stock rules. Adapters call them on rows they hold locked, so the decision and
//! the write happen in one transaction; the schema guards the same invariants again.

use crate::model::{Available, ReserveLine, StockDelta, MAX_STOCK};
use kernel::ProductId;
use std::collections::BTreeMap;

/// Why a reservation was refused. Nothing is reserved in either case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// These products do not exist (every one of them, ascending id).
    #[error("no such products: {product_ids:?}")]
    NotFound { product_ids: Vec<ProductId> },
    /// These products have fewer units than asked for (every one of them, ascending id).
    #[error("not enough stock of products: {product_ids:?}")]
    OutOfStock { product_ids: Vec<ProductId> },
}

/// What a reservation takes from one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub product_id: ProductId,
    /// The summed quantity of every line of this product.
    pub quantity: i64,
    pub stock_after: i64,
}

/// The lines with repeated products summed, in ascending product id: the order in which
/// product rows are locked, so concurrent multi-line reservations cannot deadlock.
pub fn merge_lines(lines: &[ReserveLine]) -> Vec<(ProductId, i64)> {
    let mut merged = BTreeMap::<ProductId, i64>::new();
    for line in lines {
        let q = merged.entry(line.product_id).or_insert(0);
        // Each quantity is at most u32::MAX; overflowing i64 would take 2^32 lines, more
        // than fit in memory. Saturating keeps even that case refused (more than any stock).
        *q = q.saturating_add(i64::from(line.quantity.get()));
    }
    merged.into_iter().collect()
}

/// Decides a whole reservation, all or nothing.
///
/// `available` is the stock of the lines' products as read under lock (products that
/// do not exist are simply absent). Repeated products are summed before checking.
/// Unknown products are refused first ([`ReserveError::NotFound`], naming every one);
/// otherwise every product short of its summed quantity is named in
/// [`ReserveError::OutOfStock`]. On success: one [`Reservation`] per product, ascending id.
pub fn plan_reservation(
    lines: &[ReserveLine],
    available: &[Available],
) -> Result<Vec<Reservation>, ReserveError> {
    let stock: BTreeMap<ProductId, i64> =
        available.iter().map(|a| (a.product_id, a.stock)).collect();
    let merged = merge_lines(lines);
    let missing: Vec<ProductId> = merged
        .iter()
        .filter(|(id, _)| !stock.contains_key(id))
        .map(|(id, _)| *id)
        .collect();
    if !missing.is_empty() {
        return Err(ReserveError::NotFound {
            product_ids: missing,
        });
    }
    let mut short = Vec::new();
    let mut plan = Vec::with_capacity(merged.len());
    for (product_id, quantity) in merged {
        let on_hand = stock[&product_id];
        if quantity > on_hand {
            short.push(product_id);
        } else {
            plan.push(Reservation {
                product_id,
                quantity,
                stock_after: on_hand - quantity,
            });
        }
    }
    if short.is_empty() {
        Ok(plan)
    } else {
        Err(ReserveError::OutOfStock { product_ids: short })
    }
}

/// Why an admin stock change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdjustRuleError {
    #[error("writing off {} of {stock} units would leave less than zero", -delta)]
    BelowZero { stock: i64, delta: i64 },
    #[error("restocking {delta} onto {stock} units would pass {MAX_STOCK}")]
    AboveMax { stock: i64, delta: i64 },
}

/// The stock after an admin restock (positive delta) or write-off (negative delta).
/// The result may not go below zero; a restock may not take it past [`MAX_STOCK`]
/// (a write-off is always allowed while it stays at or above zero).
pub fn apply_delta(stock: i64, delta: StockDelta) -> Result<i64, AdjustRuleError> {
    let d = delta.get();
    let refuse_low = AdjustRuleError::BelowZero { stock, delta: d };
    let refuse_high = AdjustRuleError::AboveMax { stock, delta: d };
    let after = stock
        .checked_add(d)
        .ok_or(if d < 0 { refuse_low } else { refuse_high })?;
    if after < 0 {
        Err(refuse_low)
    } else if d > 0 && after > MAX_STOCK {
        Err(refuse_high)
    } else {
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::Quantity;
    use proptest::prelude::*;

    fn pid(v: i64) -> ProductId {
        ProductId::try_from(v).unwrap()
    }

    fn line(product: i64, quantity: i64) -> ReserveLine {
        ReserveLine {
            product_id: pid(product),
            quantity: Quantity::try_from(quantity).unwrap(),
        }
    }

    fn avail(product: i64, stock: i64) -> Available {
        Available {
            product_id: pid(product),
            stock,
        }
    }

    fn delta(v: i64) -> StockDelta {
        StockDelta::try_from(v).unwrap()
    }

    #[test]
    fn a_reservation_within_stock_takes_every_line() {
        let plan =
            plan_reservation(&[line(2, 3), line(1, 1)], &[avail(1, 1), avail(2, 10)]).unwrap();
        assert_eq!(
            plan,
            vec![
                Reservation {
                    product_id: pid(1),
                    quantity: 1,
                    stock_after: 0
                },
                Reservation {
                    product_id: pid(2),
                    quantity: 3,
                    stock_after: 7
                },
            ]
        );
    }

    #[test]
    fn repeated_products_are_summed_before_checking() {
        // 3 + 3 > 5, though each line alone fits
        assert_eq!(
            plan_reservation(&[line(1, 3), line(1, 3)], &[avail(1, 5)]),
            Err(ReserveError::OutOfStock {
                product_ids: vec![pid(1)]
            })
        );
        let plan = plan_reservation(&[line(1, 2), line(1, 3)], &[avail(1, 5)]).unwrap();
        assert_eq!(plan[0].quantity, 5);
        assert_eq!(plan[0].stock_after, 0);
    }

    #[test]
    fn every_short_product_is_named() {
        assert_eq!(
            plan_reservation(
                &[line(3, 1), line(1, 3), line(2, 2)],
                &[avail(1, 5), avail(2, 1), avail(3, 0)]
            ),
            Err(ReserveError::OutOfStock {
                product_ids: vec![pid(2), pid(3)]
            })
        );
    }

    #[test]
    fn unknown_products_are_named_before_any_shortage() {
        assert_eq!(
            plan_reservation(
                &[line(9, 1), line(1, 100), line(7, 1), line(9, 1)],
                &[avail(1, 5)]
            ),
            Err(ReserveError::NotFound {
                product_ids: vec![pid(7), pid(9)]
            })
        );
    }

    #[test]
    fn nothing_to_reserve_is_an_empty_plan() {
        assert_eq!(plan_reservation(&[], &[avail(1, 5)]), Ok(vec![]));
    }

    #[test]
    fn merging_sorts_by_product_id() {
        assert_eq!(
            merge_lines(&[line(5, 1), line(2, 2), line(5, 4)]),
            vec![(pid(2), 2), (pid(5), 5)]
        );
    }

    #[test]
    fn a_write_off_may_reach_zero_but_not_below() {
        assert_eq!(apply_delta(5, delta(-5)), Ok(0));
        assert_eq!(
            apply_delta(5, delta(-6)),
            Err(AdjustRuleError::BelowZero {
                stock: 5,
                delta: -6
            })
        );
    }

    #[test]
    fn a_restock_may_reach_the_maximum_but_not_pass_it() {
        assert_eq!(apply_delta(999_999_999, delta(1)), Ok(MAX_STOCK));
        assert_eq!(
            apply_delta(MAX_STOCK, delta(1)),
            Err(AdjustRuleError::AboveMax {
                stock: MAX_STOCK,
                delta: 1
            })
        );
        // stock above the maximum (returned by cancelled orders) may still be written off
        assert_eq!(apply_delta(MAX_STOCK + 10, delta(-5)), Ok(MAX_STOCK + 5));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Reserve(Vec<(i64, i64)>),
        /// releases the n-th (modulo) reservation still held
        Release(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => prop::collection::vec((1i64..=4, 1i64..=6), 1..=5).prop_map(Op::Reserve),
            1 => any::<usize>().prop_map(Op::Release),
        ]
    }

    /// A model of the adapter: reads the lines' products, plans, writes the plan.
    fn reserve(stock: &mut BTreeMap<ProductId, i64>, lines: &[ReserveLine]) -> bool {
        let available: Vec<Available> = stock
            .iter()
            .map(|(id, s)| Available {
                product_id: *id,
                stock: *s,
            })
            .collect();
        match plan_reservation(lines, &available) {
            Ok(plan) => {
                for r in plan {
                    stock.insert(r.product_id, r.stock_after);
                }
                true
            }
            Err(_) => false,
        }
    }

    fn release(stock: &mut BTreeMap<ProductId, i64>, lines: &[ReserveLine]) {
        for (id, q) in merge_lines(lines) {
            *stock.get_mut(&id).unwrap() += q;
        }
    }

    proptest! {
        // Invariant: any sequence of reservations and releases never takes a product
        // below zero, and releasing every reservation still held restores the start.
        #[test]
        fn reservations_never_go_below_zero_and_releases_restore_the_start(
            start in prop::collection::vec(0i64..=10, 4),
            ops in prop::collection::vec(op(), 0..60),
        ) {
            let initial: BTreeMap<ProductId, i64> = start
                .iter()
                .enumerate()
                .map(|(i, s)| (pid(i as i64 + 1), *s))
                .collect();
            let mut stock = initial.clone();
            let mut held: Vec<Vec<ReserveLine>> = Vec::new();
            for op in ops {
                match op {
                    Op::Reserve(raw) => {
                        let lines: Vec<ReserveLine> = raw.iter().map(|(p, q)| line(*p, *q)).collect();
                        let before = stock.clone();
                        if reserve(&mut stock, &lines) {
                            held.push(lines);
                        } else {
                            // all or nothing: a refusal changes nothing
                            prop_assert_eq!(&stock, &before);
                        }
                    }
                    Op::Release(i) if !held.is_empty() => {
                        let lines = held.remove(i % held.len());
                        release(&mut stock, &lines);
                    }
                    Op::Release(_) => {}
                }
                prop_assert!(stock.values().all(|s| *s >= 0), "{:?}", stock);
            }
            for lines in held {
                release(&mut stock, &lines);
            }
            prop_assert_eq!(stock, initial);
        }

        // Invariant: a refusal names exactly the short products, and a plan takes exactly
        // the summed quantities.
        #[test]
        fn plans_take_the_summed_quantities_or_name_exactly_the_short_products(
            start in prop::collection::vec(0i64..=10, 4),
            raw in prop::collection::vec((1i64..=4, 1i64..=6), 1..=8),
        ) {
            let available: Vec<Available> = start
                .iter()
                .enumerate()
                .map(|(i, s)| avail(i as i64 + 1, *s))
                .collect();
            let lines: Vec<ReserveLine> = raw.iter().map(|(p, q)| line(*p, *q)).collect();
            let mut wanted = BTreeMap::<i64, i64>::new();
            for (p, q) in &raw {
                *wanted.entry(*p).or_default() += q;
            }
            let short: Vec<ProductId> = wanted
                .iter()
                .filter(|(p, q)| **q > start[(**p - 1) as usize])
                .map(|(p, _)| pid(*p))
                .collect();
            match plan_reservation(&lines, &available) {
                Ok(plan) => {
                    prop_assert!(short.is_empty());
                    prop_assert_eq!(plan.len(), wanted.len());
                    for r in plan {
                        let p = r.product_id.get();
                        prop_assert_eq!(r.quantity, wanted[&p]);
                        prop_assert_eq!(r.stock_after, start[(p - 1) as usize] - wanted[&p]);
                    }
                }
                Err(ReserveError::OutOfStock { product_ids }) => prop_assert_eq!(product_ids, short),
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }

        // Invariant: an admin change never leaves stock below zero and is exact when allowed.
        #[test]
        fn deltas_are_exact_or_refused(stock in 0i64..=MAX_STOCK, d in -MAX_STOCK..=MAX_STOCK) {
            prop_assume!(d != 0);
            match apply_delta(stock, delta(d)) {
                Ok(after) => {
                    prop_assert_eq!(after, stock + d);
                    prop_assert!((0..=MAX_STOCK).contains(&after));
                }
                Err(AdjustRuleError::BelowZero { .. }) => prop_assert!(stock + d < 0),
                Err(AdjustRuleError::AboveMax { .. }) => prop_assert!(stock + d > MAX_STOCK),
            }
        }
    }
}
