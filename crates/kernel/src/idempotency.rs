//! Idempotent requests, as the use cases see them.
//!
//! A client may send a state-changing request again with the same `Idempotency-Key`
//! (a retry after a timeout or a crash). The edge claims the key before the work starts
//! ([`IdempotencyClaim`]); the use case then records the answer it gives in the SAME
//! transaction as its effects ([`Completion`]), so a request whose work committed is
//! always answered from the record, never run a second time, whatever crashed when.

use async_trait::async_trait;
use std::fmt;
use std::sync::Arc;

/// A claim on an `Idempotency-Key` that the current request holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// Who sent the key (keys of different callers never meet).
    pub caller: String,
    /// The key as sent.
    pub key: String,
    /// The fingerprint of the request the key was first used with.
    pub request_hash: String,
    /// Names the request across retries: a retry that takes over the claim of a request
    /// that died keeps it, so work that request started (a charge at the gateway) is
    /// found again instead of being started twice. A key reused after it expired gets a
    /// new one.
    pub claim_id: uuid::Uuid,
}

/// The answer a request gave, stored so a retry gets exactly the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers worth replaying (content type, location).
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
}

/// Renders the answer to a use case's outcome (the edge knows its wire format).
pub type Render<T> = Arc<dyn Fn(&T) -> RecordedResponse + Send + Sync>;

/// What a use case needs to record its answer with its effects: the claim, and how its
/// outcome is rendered.
#[derive(Clone)]
pub struct Completion<T> {
    /// The claim the request holds.
    pub claim: IdempotencyClaim,
    /// Turns the outcome into the answer.
    pub render: Render<T>,
}

impl<T> Completion<T> {
    /// A completion for `claim` whose answer `render` builds.
    pub fn new(
        claim: IdempotencyClaim,
        render: impl Fn(&T) -> RecordedResponse + Send + Sync + 'static,
    ) -> Self {
        Self {
            claim,
            render: Arc::new(render),
        }
    }

    /// The record to write with the effects of a use case whose outcome is `outcome`.
    pub fn record(&self, outcome: &T) -> IdempotencyRecord {
        IdempotencyRecord {
            claim: self.claim.clone(),
            response: (self.render)(outcome),
        }
    }
}

impl<T> fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("claim", &self.claim)
            .finish_non_exhaustive()
    }
}

/// A claim completed with its answer: written in the transaction of the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The claim being completed. A store MUST write the record only while this claim is
    /// still in progress (so of two requests racing on one key, one commits and the
    /// other rolls back with [`ClaimLost`]).
    pub claim: IdempotencyClaim,
    /// The answer.
    pub response: RecordedResponse,
}

/// The claim was completed by another request with the same key (one that took it over
/// after a lease ran out) before this one could commit: this request's work was rolled
/// back; the stored answer is the one to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("another request with this Idempotency-Key completed first")]
pub struct ClaimLost;

/// What claiming a key found ([`IdempotencyStore::begin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginOutcome {
    /// This request owns the key: do the work, then complete it (in the work's own
    /// transaction, with a [`Completion`], or with [`IdempotencyStore::complete`]) or
    /// release it. The id names the request across retries: a retry that takes over
    /// the claim of a request that died gets the same one.
    Claimed(uuid::Uuid),
    /// The key was used before with the same request: answer this, byte for byte.
    Replay(RecordedResponse),
    /// The key was used before with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// Storage of `Idempotency-Key`s: the first request with a key claims it, its answer
/// is recorded, and later requests with the same key get that answer again.
///
/// Guarantees every implementation MUST keep, across processes sharing the store:
/// - of any number of concurrent first requests with one key, exactly one is
///   [`BeginOutcome::Claimed`]; the others are `InProgress` (or `Replay` once the
///   answer is recorded);
/// - a claim whose request died is taken over once its lease ends by a request with
///   the same fingerprint, which gets the SAME claim id; a key whose time to live ended
///   is claimed anew, with a new claim id;
/// - a recorded answer is never replaced: [`IdempotencyStore::complete`] and a
///   [`Completion`] written with a use case's effects ([`IdempotencyRecord`]) record
///   only while the claim is still in progress.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` of `caller` for a request whose fingerprint is `request_hash`.
    async fn begin(
        &self,
        caller: &str,
        key: &str,
        request_hash: &str,
    ) -> anyhow::Result<BeginOutcome>;

    /// Records the answer of the request that claimed the key, unless the key is no
    /// longer in progress (the use case recorded it with its effects, or another
    /// request took the claim over and completed it).
    async fn complete(
        &self,
        caller: &str,
        key: &str,
        response: &RecordedResponse,
    ) -> anyhow::Result<()>;

    /// Forgets a claim still in progress (its request failed before doing anything),
    /// so a retry runs the request again. A completed key is kept.
    async fn release(&self, caller: &str, key: &str) -> anyhow::Result<()>;

    /// Deletes up to `limit` keys whose time to live has ended; returns how many.
    async fn purge_expired(&self, limit: i64) -> anyhow::Result<usize>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_records_the_rendered_answer_with_its_claim() {
        let claim = IdempotencyClaim {
            caller: "user:1".into(),
            key: "k".into(),
            request_hash: "h".into(),
            claim_id: uuid::Uuid::from_u128(1),
        };
        let c = Completion::new(claim.clone(), |n: &u32| RecordedResponse {
            status: 201,
            headers: vec![],
            body: n.to_string().into_bytes(),
        });
        let r = c.record(&42);
        assert_eq!(r.claim, claim);
        assert_eq!(r.response.status, 201);
        assert_eq!(r.response.body, b"42");
    }
}
