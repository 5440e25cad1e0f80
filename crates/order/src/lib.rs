//! Orders: lines priced at order time, totals, the PENDING -> PAID -> CANCELLED state
//! machine, and the events that report paid and cancelled orders to the data platform.
#![warn(missing_docs)]

pub mod cart;
pub mod events;
pub mod model;
pub mod plan;
pub mod ports;
pub mod rules;
pub mod service;

pub use model::*;
pub use ports::*;
pub use service::OrderService;
