//! Products with a price and limited stock: reserving, releasing, restocking.
//!
//! Invariants this crate defines (and the [`StockStore`] port must keep):
//! - a product's stock never goes below zero;
//! - a reservation takes every line or nothing; a refusal names every unknown product
//!   ([`ReserveError::NotFound`]) or else every short product ([`ReserveError::OutOfStock`]);
//! - repeated products in one reservation are summed before checking;
//! - rows are locked in ascending product id, so concurrent reservations cannot deadlock.
#![warn(missing_docs)]

pub mod model;
pub mod ports;
pub mod rules;
pub mod service;

pub use model::*;
pub use ports::*;
pub use rules::*;
pub use service::{ProductError, StockService};
