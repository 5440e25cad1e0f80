//! The prepaid balance (points) of a user: charging it through a payment gateway,
//! and the rules for debiting and crediting it that payment and refunds use.
//!
//! Invariants this crate defines (and the ports must keep):
//! - a balance is never negative;
//! - a charge never takes the balance, counting charges still at the gateway, past
//!   [`MAX_BALANCE`];
//! - no balance is credited without an approved gateway transaction, and an approval is
//!   credited exactly once;
//! - every change writes an immutable history row, so the balance equals the sum of its history.
#![warn(missing_docs)]

pub mod model;
pub mod ports;
pub mod rules;
pub mod service;

pub use model::*;
pub use ports::*;
pub use rules::*;
pub use service::{ChargeError, ChargeService, RecoveryReport};
