//! Pure stock rules. Adapters call them on rows they hold locked, so the decision and
//! the write happen in one transaction; the schema guards the same invariants again.

use crate::model::{Available, ReserveLine, Slot, SlotChange, StockDelta, MAX_STOCK, SLOTS};
use kernel::ProductId;
use std::collections::BTreeMap;

/// Why a reservation was refused. Nothing is reserved in either case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// These products do not exist (every one of them, ascending id).
    #[error("no such products: {product_ids:?}")]
    NotFound {
        /// The unknown products.
        product_ids: Vec<ProductId>,
    },
    /// These products have fewer units than asked for (every one of them, ascending id).
    #[error("not enough stock of products: {product_ids:?}")]
    OutOfStock {
        /// The short products.
        product_ids: Vec<ProductId>,
    },
}

/// What a reservation takes from one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The product.
    pub product_id: ProductId,
    /// The summed quantity of every line of this product.
    pub quantity: i64,
    /// Its stock once the reservation is taken.
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
    /// A write-off of more units than there are.
    #[error("writing off {} of {stock} units would leave less than zero", -delta)]
    BelowZero {
        /// The stock there is.
        stock: i64,
        /// The change asked for.
        delta: i64,
    },
    /// A restock past [`MAX_STOCK`].
    #[error("restocking {delta} onto {stock} units would pass {MAX_STOCK}")]
    AboveMax {
        /// The stock there is.
        stock: i64,
        /// The change asked for.
        delta: i64,
    },
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

/// How a new product's stock is spread over its [`SLOTS`] slots: evenly, the first
/// slots taking the remainder.
pub fn initial_slots(stock: i64) -> Vec<Slot> {
    let n = i64::from(SLOTS);
    (0..SLOTS)
        .map(|index| Slot {
            index,
            units: stock / n + i64::from(i64::from(index) < stock % n),
        })
        .collect()
}

/// The units in these slots.
pub fn units_in(slots: &[Slot]) -> i64 {
    slots.iter().map(|s| s.units).sum()
}

/// Takes `quantity` units from the held `slots`, the fullest first (so a buyer leaves
/// as few slots empty as it can), or `None` when they hold fewer. Never takes a slot
/// below zero.
pub fn take_from_slots(slots: &[Slot], quantity: i64) -> Option<Vec<SlotChange>> {
    if quantity <= 0 || units_in(slots) < quantity {
        return (quantity == 0).then(Vec::new);
    }
    let mut order: Vec<&Slot> = slots.iter().filter(|s| s.units > 0).collect();
    order.sort_by(|a, b| b.units.cmp(&a.units).then(a.index.cmp(&b.index)));
    let mut left = quantity;
    let mut changes = Vec::new();
    for slot in order {
        if left == 0 {
            break;
        }
        let take = slot.units.min(left);
        left -= take;
        changes.push(SlotChange {
            index: slot.index,
            delta: -take,
        });
    }
    changes.sort();
    Some(changes)
}

/// Gives `quantity` units back into the held slot (a cancellation, an expiry, a
/// refund). Never refused: a stock may pass [`MAX_STOCK`] this way (API.md).
pub fn give_back_to_slot(slot: Slot, quantity: i64) -> SlotChange {
    SlotChange {
        index: slot.index,
        delta: quantity,
    }
}

/// An admin restock or write-off over every slot of the product (all held): the rule
/// of [`apply_delta`] on their sum; a restock is spread evenly over the slots (the
/// first slots taking the remainder), a write-off takes from the fullest first.
pub fn plan_adjust(slots: &[Slot], delta: StockDelta) -> Result<Vec<SlotChange>, AdjustRuleError> {
    let stock = units_in(slots);
    apply_delta(stock, delta)?;
    let d = delta.get();
    if d < 0 {
        return take_from_slots(slots, -d).ok_or(AdjustRuleError::BelowZero { stock, delta: d });
    }
    let mut ordered: Vec<&Slot> = slots.iter().collect();
    ordered.sort();
    let n = ordered.len() as i64;
    if n == 0 {
        return Err(AdjustRuleError::AboveMax { stock, delta: d });
    }
    Ok(ordered
        .iter()
        .enumerate()
        .map(|(i, s)| SlotChange {
            index: s.index,
            delta: d / n + i64::from((i as i64) < d % n),
        })
        .filter(|c| c.delta > 0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::testing::pid;
    use kernel::Quantity;
    use proptest::prelude::*;

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

    fn slots(units: &[i64]) -> Vec<Slot> {
        units
            .iter()
            .enumerate()
            .map(|(i, u)| Slot {
                index: i as i16,
                units: *u,
            })
            .collect()
    }

    #[test]
    fn a_new_product_is_spread_evenly_over_its_slots() {
        let s = initial_slots(19);
        assert_eq!(s.len(), SLOTS as usize);
        assert_eq!(units_in(&s), 19);
        assert!(s.iter().all(|x| x.units == 2 || x.units == 3));
        assert_eq!(units_in(&initial_slots(0)), 0);
    }

    #[test]
    fn taking_combines_slots_fullest_first_and_refuses_what_is_not_there() {
        assert_eq!(
            take_from_slots(&slots(&[1, 5, 2]), 6),
            Some(vec![
                SlotChange {
                    index: 1,
                    delta: -5
                },
                SlotChange {
                    index: 2,
                    delta: -1
                }
            ])
        );
        assert_eq!(take_from_slots(&slots(&[1, 5, 2]), 9), None);
        assert_eq!(take_from_slots(&slots(&[3]), 0), Some(vec![]));
    }

    #[test]
    fn admin_changes_follow_the_rule_on_the_sum_of_the_slots() {
        let restock = plan_adjust(&slots(&[0, 10, 3]), delta(7)).unwrap();
        assert_eq!(restock.iter().map(|c| c.delta).sum::<i64>(), 7);
        let write_off = plan_adjust(&slots(&[0, 10, 3]), delta(-12)).unwrap();
        assert_eq!(write_off.iter().map(|c| c.delta).sum::<i64>(), -12);
        assert!(matches!(
            plan_adjust(&slots(&[0, 10, 3]), delta(-14)),
            Err(AdjustRuleError::BelowZero { stock: 13, .. })
        ));
        assert!(matches!(
            plan_adjust(&slots(&[MAX_STOCK]), delta(1)),
            Err(AdjustRuleError::AboveMax { .. })
        ));
        // above the cap (stock given back) a write-off is still allowed
        assert!(plan_adjust(&slots(&[MAX_STOCK, 5]), delta(-1)).is_ok());
    }

    proptest! {
        // Invariant: taking from slots never takes a slot below zero, takes exactly the
        // quantity, and refuses exactly when the slots hold fewer units.
        #[test]
        fn slots_are_never_overdrawn(units in proptest::collection::vec(0i64..50, 1..=8), q in 0i64..200) {
            let held = slots(&units);
            match take_from_slots(&held, q) {
                Some(changes) => {
                    prop_assert_eq!(-changes.iter().map(|c| c.delta).sum::<i64>(), q);
                    for c in &changes {
                        let before = held.iter().find(|s| s.index == c.index).unwrap().units;
                        prop_assert!(before + c.delta >= 0);
                    }
                }
                None => prop_assert!(units.iter().sum::<i64>() < q),
            }
        }

        // Invariant: an admin change moves the sum exactly by the delta or is refused.
        #[test]
        fn admin_changes_move_the_sum_exactly(units in proptest::collection::vec(0i64..1000, 1..=8), d in -5000i64..5000) {
            prop_assume!(d != 0);
            let held = slots(&units);
            if let Ok(changes) = plan_adjust(&held, delta(d)) {
                prop_assert_eq!(changes.iter().map(|c| c.delta).sum::<i64>(), d);
                for c in &changes {
                    let before = held.iter().find(|s| s.index == c.index).unwrap().units;
                    prop_assert!(before + c.delta >= 0);
                }
            } else {
                prop_assert!(units.iter().sum::<i64>() + d < 0);
            }
        }

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
