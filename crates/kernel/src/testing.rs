//! Test fixtures shared by every crate's tests (feature `testing`): the one moment tests
//! start from, a clock stopped at it, and the ids and amounts tests spell out. Each
//! panics on a value its type refuses: a test that asks for one has a typo.

use crate::{
    ChargeId, Clock, Completion, CouponId, FixedClock, IdempotencyClaim, Money, OrderId, ProductId,
    Quantity, RecordedResponse, Timestamp, UserId,
};
use chrono::TimeZone;
use std::sync::Arc;

/// 2026-11-21 09:00:00 UTC: the "now" of the domain crates' unit tests.
pub fn t0() -> Timestamp {
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 21, 9, 0, 0)
        .single()
        .expect("a valid moment")
}

/// A clock stopped at [`t0`].
pub fn fixed_clock() -> Arc<dyn Clock> {
    Arc::new(FixedClock(t0()))
}

/// A user id.
pub fn uid(id: i64) -> UserId {
    UserId::try_from(id).expect("a positive user id")
}

/// A product id.
pub fn pid(id: i64) -> ProductId {
    ProductId::try_from(id).expect("a positive product id")
}

/// An order id.
pub fn oid(id: i64) -> OrderId {
    OrderId::try_from(id).expect("a positive order id")
}

/// A coupon id.
pub fn cid(id: i64) -> CouponId {
    CouponId::try_from(id).expect("a positive coupon id")
}

/// A charge id.
pub fn charge_id(id: i64) -> ChargeId {
    ChargeId::try_from(id).expect("a positive charge id")
}

/// An amount in won.
pub fn won(v: i64) -> Money {
    Money::try_from(v).expect("a non-negative amount")
}

/// A quantity of units.
pub fn qty(v: i64) -> Quantity {
    Quantity::try_from(v).expect("a positive quantity")
}

/// A claim on `key` by `caller`, as the edge takes one (`claim_id` given).
pub fn claim(caller: &str, key: &str, claim_id: uuid::Uuid) -> IdempotencyClaim {
    IdempotencyClaim {
        caller: caller.into(),
        key: key.into(),
        request_hash: "hash".into(),
        claim_id,
    }
}

/// A completion of `claim` whose answer is `status` and the body `body` renders.
pub fn completion<T: 'static>(
    claim: IdempotencyClaim,
    status: u16,
    body: impl Fn(&T) -> Vec<u8> + Send + Sync + 'static,
) -> Completion<T> {
    Completion::new(claim, move |outcome: &T| RecordedResponse {
        status,
        headers: vec![],
        body: body(outcome),
    })
}
