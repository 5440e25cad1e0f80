//! Transactional-outbox delivery machinery, independent of what the events are about.
//!
//! An [`Event`] is written to the outbox in the same transaction as the change that
//! caused it (by the writer's own adapter), with the complete body that will be sent.
//! A relay ([`OutboxRelay`]) later claims due events with a lease, delivers each to a
//! [`Destination`] with no transaction open, and records the outcome and the attempt;
//! failed attempts are retried by a [`RetryPolicy`] (exponential backoff with jitter)
//! until the event is parked as DEAD. Events that share an `aggregate_id` are delivered
//! one at a time, in write order. Operators look at the outbox, its per-attempt log,
//! and send DEAD events again with [`OutboxAdmin`].
//!
//! Delivery is at least once: the destination drops duplicates by the event id.
//!
//! The crate holds the decisions (when an event is due, what happens after a failure,
//! what a batch did); storage and transport are ports ([`OutboxStore`],
//! [`Destination`]) implemented by adapters.

#![warn(missing_docs)]

mod admin;
mod model;
mod policy;
mod ports;
mod relay;

pub use admin::{OutboxAdmin, PURGE_BATCH};
pub use model::{
    AfterFailure, Attempt, AttemptOutcome, Backlog, ClaimedEvent, Event, EventDetail,
    InvalidRetryFilter, OutboxEntry, OutboxStatus, RetryFilter,
};
pub use policy::RetryPolicy;
pub use ports::{
    Acknowledged, DeliveryError, Destination, EventNotFound, OutboxStore, RetryEventError,
};
#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockDestination, MockOutboxStore};
#[cfg(any(test, feature = "mocks"))]
pub use relay::MockRandomness;
pub use relay::{
    BatchReport, FailedAttempt, OutboxRelay, Randomness, RelaySettings, StdRandomness,
};
