//! Shared value types of the commerce domain: ids, money, quantities, time and paging.
//!
//! Everything here is validated at construction: a value of these types is always
//! within its documented range, so the domain crates never re-check them.
#![warn(missing_docs)]

mod actor;
mod clock;
pub mod idempotency;
mod ids;
mod money;
mod page;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod text;

pub use actor::Actor;
#[cfg(any(test, feature = "mocks"))]
pub use clock::MockClock;
pub use clock::{Clock, FixedClock, SystemClock, Timestamp};
#[cfg(any(test, feature = "mocks"))]
pub use idempotency::MockIdempotencyStore;
pub use idempotency::{
    BeginOutcome, ClaimLost, Completion, IdempotencyClaim, IdempotencyRecord, IdempotencyStore,
    RecordedResponse,
};
pub use ids::{
    parse_plain_id, ChargeId, CouponId, IdError, NotificationId, OrderId, ParseIdError, ProductId,
    RefundId, UserId,
};
pub use money::{Money, MoneyError, Quantity, QuantityError};
pub use page::{Page, PageRequest, PageRequestError};
pub use text::{check_text, BoundedText, TextError};
