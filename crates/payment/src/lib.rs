//! The money side of an order: paying its total from the user's prepaid balance, the
//! amount each refund gives back, and the ledger rows both write. Pure decisions, no I/O:
//! the order use cases (crate `order`) call them inside their one transaction.
//!
//! Invariants these rules keep (and the tests prove):
//! - a payment takes exactly the order total once, never taking a balance below zero;
//! - the refunds of an order never add up to more than its total, and add up to exactly
//!   its total once every unit is refunded (with or without a coupon);
//! - money given back is never refused, even past the charge limit (it was the user's);
//! - every payment and every refund writes its history row, also for an amount of 0.
//!
//! Why this crate holds decisions and no use case: ADR 0008.
#![warn(missing_docs)]

mod model;
mod rules;

pub use model::*;
pub use rules::*;
