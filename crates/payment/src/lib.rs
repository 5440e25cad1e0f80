//! Paying orders from the prepaid balance, and the refund rule for cancellations.
//!
//! Invariants: a payment debits exactly the order total once (one PAYMENT history row
//! per order), never takes a balance below zero, and a refund credits it back at most
//! once (one REFUND row per order).

pub mod ports;
pub mod rules;
pub mod service;

pub use ports::*;
pub use rules::*;
pub use service::PaymentService;
