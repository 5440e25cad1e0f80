//! What the order decisions see: the ONE place each snapshot is built from the tables
//! (extend here when `PlaceSnapshot` or `OrderSnapshot` gain a field).

use crate::state::{id, State};
use coupon::StoredStatus;
use kernel::{OrderId, ProductId, Quantity, RefundId, Timestamp, UserId};
use order::plan::{CouponSnapshot, OrderSnapshot, PlaceSnapshot, ProductSnapshot};
use order::{Items, LineRequest, OrderStatus, PlaceOrder};
use std::collections::BTreeSet;

/// What a use case on an existing order reads besides the order and the balance, and
/// which new ids it needs (as the PostgreSQL store's `LockOrder` statement).
#[derive(Clone, Copy)]
pub(crate) struct Wants {
    /// The user coupon the order uses.
    pub coupon: bool,
    /// An id for a new payment.
    pub new_payment: bool,
    /// An id for a new refund.
    pub new_refund: bool,
}

impl State {
    /// The snapshot of placing `command`: the user's cart lines (ordering from the
    /// cart), the ordered products that exist (ascending id), the coupon asked for (its
    /// definition and the user's copy, with the copy's status at `now`), the balance
    /// (paying now), and the new ids.
    pub fn place_snapshot(&mut self, command: &PlaceOrder, now: Timestamp) -> PlaceSnapshot {
        let user = command.user_id();
        let cart: Vec<LineRequest> = match command.items() {
            Items::FromCart => self
                .carts
                .iter()
                .filter(|((owner, _), _)| *owner == user)
                .filter_map(|((_, product_id), quantity)| {
                    Some(LineRequest {
                        product_id: *product_id,
                        quantity: Quantity::try_from(i64::from(quantity.get())).ok()?,
                    })
                })
                .collect(),
            Items::Lines(_) => Vec::new(),
        };
        let wanted: BTreeSet<ProductId> = command
            .lines()
            .iter()
            .chain(&cart)
            .map(|l| l.product_id)
            .collect();
        let products = wanted
            .iter()
            .filter_map(|id| self.products.get(id))
            .map(|p| ProductSnapshot {
                id: p.id,
                name: p.name.clone(),
                price: p.price,
                slots: self.slots.get(&p.id).cloned().unwrap_or_default(),
                max_per_user: p.max_per_user,
                held: if p.max_per_user.is_some() {
                    self.held(user, p.id)
                } else {
                    0
                },
            })
            .collect();
        let coupon = command
            .coupon_id()
            .and_then(|c| self.coupons.get(&c))
            .map(|definition| CouponSnapshot {
                owned: self
                    .user_coupon_of(definition.id, user)
                    .map(|row| row.with(definition, now)),
            });
        let balance = if command.pay_now() {
            self.balances.get(&user).map(|b| b.balance)
        } else {
            None
        };
        PlaceSnapshot {
            products,
            cart,
            coupon,
            balance,
            order_id: id(self.seq.order()),
            payment_id: if command.pay_now() {
                self.seq.payment()
            } else {
                0
            },
        }
    }

    /// The units of `product` that `user` holds in PENDING and PAID orders, refunded
    /// units left out (what a purchase limit counts).
    fn held(&self, user: UserId, product: ProductId) -> i64 {
        self.orders
            .values()
            .filter(|o| o.user_id == user)
            .filter(|o| matches!(o.status, OrderStatus::Pending | OrderStatus::Paid))
            .flat_map(|o| o.unrefunded())
            .filter(|(id, _)| *id == product)
            .map(|(_, units)| i64::from(units))
            .sum()
    }

    /// The snapshot of paying, cancelling or refunding order `id`; `None` when there is
    /// no such order.
    pub fn order_snapshot(&mut self, id: OrderId, wants: Wants) -> Option<OrderSnapshot> {
        let order = self.orders.get(&id)?.clone();
        let user_coupon_id = if wants.coupon {
            self.user_coupons
                .values()
                .find(|row| row.order_id == Some(id) && row.stored == StoredStatus::Used)
                .map(|row| row.id)
        } else {
            None
        };
        let slots = order
            .items
            .iter()
            .map(|line| line.product_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|product| Some((product, *self.slots.get(&product)?.first()?)))
            .collect();
        let balance = self.balances.get(&order.user_id).map(|b| b.balance);
        let payment_id = if wants.new_payment {
            self.seq.payment()
        } else {
            0
        };
        // a refund decision is only called with a new id; the others never read it
        let refund_id: RefundId = if wants.new_refund {
            crate::state::id(self.seq.refund())
        } else {
            crate::state::id(1)
        };
        Some(OrderSnapshot {
            order,
            user_coupon_id,
            slots,
            balance,
            payment_id,
            refund_id,
        })
    }
}
