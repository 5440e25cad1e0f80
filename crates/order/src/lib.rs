//! Orders: lines priced at order time, totals, the PENDING -> PAID -> CANCELLED state
//! machine, and the events that report paid and cancelled orders to the data platform.

pub mod events;
pub mod relay;
