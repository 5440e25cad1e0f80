//! Coupons: FIXED and PERCENT discounts, first-come-first-served issuing, use on orders.
//!
//! Invariants this crate defines (and the ports must keep):
//! - a coupon is issued at most `total_quantity` times and at most once per user,
//!   whatever the concurrency and the number of server instances;
//! - a discount is never negative and never above the order subtotal;
//! - a user's coupon is used by at most one order, and one order uses at most one
//!   coupon; cancelling the order makes it AVAILABLE again;
//! - EXPIRED is derived from the validity window at read time, never stored;
//! - a deactivated coupon is never issued nor used again (orders already placed keep it).

#![warn(missing_docs)]

pub mod model;
pub mod ports;
pub mod rules;
pub mod service;

pub use model::*;
pub use ports::*;
pub use rules::*;
pub use service::{CouponService, DeactivateCouponError, GetCouponError, MarkReadError};
