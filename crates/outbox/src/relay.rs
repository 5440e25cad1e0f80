//! The relay use case: claim a batch, deliver with no transaction open, record the
//! outcome and the attempt.
//!
//! Delivery is at least once: a relay that dies after the destination acknowledged but
//! before the acknowledgement is recorded leaves the event to be sent again once its
//! claim's lease ends. The destination drops duplicates by the event id.

use crate::model::{AfterFailure, AttemptOutcome, ClaimedEvent};
use crate::policy::RetryPolicy;
use crate::ports::{Destination, OutboxStore};
use kernel::Clock;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Where the jitter's randomness comes from (injected so the relay can be tested).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Randomness: Send + Sync {
    /// Any number; successive calls should differ.
    fn next_u64(&self) -> u64;
}

/// Randomness from the standard library's randomly keyed hasher: plenty for jitter,
/// not for secrets.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdRandomness;

impl Randomness for StdRandomness {
    fn next_u64(&self) -> u64 {
        // every RandomState is keyed differently
        RandomState::new().hash_one(0u8)
    }
}

/// How a relay works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySettings {
    /// When to retry and when to give up.
    pub policy: RetryPolicy,
    /// Events claimed (and delivered concurrently) at once.
    pub batch_size: u16,
    /// How long a claim holds. MUST exceed the delivery timeout plus the time to record
    /// the outcome, or a slow attempt could overlap another relay's attempt.
    pub lease: Duration,
}

impl RelaySettings {
    /// The lease for a given delivery timeout: twice the timeout plus 10 s of margin.
    pub fn lease_for(timeout: Duration) -> Duration {
        timeout
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(10))
    }
}

/// What one batch did. Every claimed event is counted exactly once among `delivered`,
/// `retrying`, `dead`, `lost_claims` and `unrecorded`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Events claimed.
    pub claimed: usize,
    /// Acknowledged by the destination and recorded as DELIVERED.
    pub delivered: usize,
    /// Failed attempts that will be retried.
    pub retrying: usize,
    /// Failed attempts that parked their event as DEAD.
    pub dead: usize,
    /// Outcomes not recorded because the claim had been lost to another relay.
    pub lost_claims: usize,
    /// Outcomes not recorded because the store failed; those events are due again
    /// once their lease ends.
    pub unrecorded: usize,
    /// Every failed attempt, recorded or not, for the caller to log and count.
    pub failures: Vec<FailedAttempt>,
    /// The first store error met while recording outcomes, if any.
    pub record_error: Option<String>,
}

/// One failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    /// The event.
    pub event_id: Uuid,
    /// Its aggregate (order).
    pub aggregate_id: i64,
    /// Which attempt failed (1 for the first since written or retried).
    pub attempt: u32,
    /// Why.
    pub error: String,
    /// What was to be recorded; it holds only when `recorded`.
    pub next: AfterFailure,
    /// Whether the outcome was recorded (false: the claim was lost, or the store
    /// failed, and the event is due again after its lease).
    pub recorded: bool,
}

/// The relay use case. Each call of [`OutboxRelay::relay_batch`] is one unit of work:
/// a caller that wants to stop simply does not start another.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use kernel::SystemClock;
/// use memory_adapter::{MemoryStore, RecordingDestination};
/// use outbox::{Event, OutboxRelay, RelaySettings, RetryPolicy, StdRandomness};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let db = MemoryStore::new();
/// let event_id = uuid::Uuid::new_v4();
/// // written by the writer's store, in the writer's transaction
/// db.enqueue(Event {
///     event_id,
///     event_type: "order.paid".into(),
///     aggregate_id: 7,
///     occurred_at: chrono::Utc::now(),
///     body: serde_json::json!({"event_id": event_id, "order": {"id": 7}}),
/// });
/// let platform = RecordingDestination::new();
/// let policy = RetryPolicy { base: Duration::from_secs(1), max: Duration::from_secs(60), max_attempts: 5 };
/// let relay = OutboxRelay::new(
///     Arc::new(db),
///     Arc::new(platform.clone()),
///     Arc::new(SystemClock),
///     Arc::new(StdRandomness),
///     RelaySettings { policy, batch_size: 10, lease: Duration::from_secs(30) },
/// );
/// let report = relay.relay_batch().await.unwrap();
/// assert_eq!((report.claimed, report.delivered), (1, 1));
/// assert_eq!(platform.received()[0].event_id, event_id);
/// // delivered events are not sent again
/// assert_eq!(relay.relay_batch().await.unwrap().claimed, 0);
/// # }
/// ```
#[derive(Clone)]
pub struct OutboxRelay {
    store: Arc<dyn OutboxStore>,
    destination: Arc<dyn Destination>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Randomness>,
    settings: RelaySettings,
}

/// What happened to one claimed event: the destination's answer (`failure` is `None`
/// when it acknowledged) and whether that was recorded.
struct Outcome {
    failure: Option<FailedAttempt>,
    record: Record,
}

enum Record {
    Recorded,
    LostClaim,
    Failed(anyhow::Error),
}

impl OutboxRelay {
    /// A relay over these ports.
    pub fn new(
        store: Arc<dyn OutboxStore>,
        destination: Arc<dyn Destination>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Randomness>,
        settings: RelaySettings,
    ) -> Self {
        Self {
            store,
            destination,
            clock,
            random,
            settings,
        }
    }

    /// How it works.
    pub fn settings(&self) -> &RelaySettings {
        &self.settings
    }

    /// Claims a batch of due events, delivers them concurrently (at most one per
    /// aggregate, no transaction open), and records each outcome with its attempt.
    /// Fails only when claiming fails (then nothing was sent). When recording an outcome
    /// fails, the claim's lease makes the event due again later; the report counts it as
    /// `unrecorded` and keeps the error in `record_error`, next to the outcomes that were
    /// recorded.
    pub async fn relay_batch(&self) -> anyhow::Result<BatchReport> {
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(self.settings.lease)
            .unwrap_or(chrono::Duration::seconds(60));
        let claims = self
            .store
            .claim_due(self.settings.batch_size, now, now + lease)
            .await?;
        let mut report = BatchReport {
            claimed: claims.len(),
            ..BatchReport::default()
        };
        let outcomes =
            futures::future::join_all(claims.iter().map(|claim| self.deliver_one(claim))).await;
        for Outcome { failure, record } in outcomes {
            match (&record, failure.as_ref().map(|f| f.next)) {
                (Record::Recorded, None) => report.delivered += 1,
                (Record::Recorded, Some(AfterFailure::Dead)) => report.dead += 1,
                (Record::Recorded, Some(AfterFailure::RetryAt(_))) => report.retrying += 1,
                (Record::LostClaim, _) => report.lost_claims += 1,
                (Record::Failed(_), _) => report.unrecorded += 1,
            }
            if let Record::Failed(e) = record {
                report.record_error.get_or_insert_with(|| {
                    format!("{:#}", e.context("recording a delivery outcome"))
                });
            }
            report.failures.extend(failure);
        }
        Ok(report)
    }

    async fn deliver_one(&self, claim: &ClaimedEvent) -> Outcome {
        let event = &claim.event;
        let recorded = |r: anyhow::Result<bool>| match r {
            Ok(true) => Record::Recorded,
            Ok(false) => Record::LostClaim,
            Err(e) => Record::Failed(e),
        };
        let started_at = self.clock.now();
        let result = self.destination.deliver(event).await;
        let now = self.clock.now();
        let duration = (now - started_at).to_std().unwrap_or_default();
        match result {
            Ok(ack) => {
                let attempt = AttemptOutcome {
                    started_at,
                    duration,
                    status_code: Some(ack.status),
                    error: None,
                };
                Outcome {
                    failure: None,
                    record: recorded(self.store.mark_delivered(claim, &attempt, now).await),
                }
            }
            Err(error) => {
                let next =
                    self.settings
                        .policy
                        .after_failure(claim.attempts, now, self.random.next_u64());
                let attempt = AttemptOutcome {
                    started_at,
                    duration,
                    status_code: error.status_code(),
                    error: Some(error.to_string()),
                };
                let record = recorded(self.store.mark_failed(claim, &attempt, next, now).await);
                Outcome {
                    failure: Some(FailedAttempt {
                        event_id: event.event_id,
                        aggregate_id: event.aggregate_id,
                        attempt: claim.attempts.saturating_add(1),
                        error: error.to_string(),
                        next,
                        recorded: matches!(record, Record::Recorded),
                    }),
                    record,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Event;
    use crate::ports::{Acknowledged, DeliveryError, MockDestination, MockOutboxStore};

    use kernel::testing::t0;
    use kernel::MockClock;

    fn policy(base_ms: u64, max_ms: u64, max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(base_ms),
            max: Duration::from_millis(max_ms),
            max_attempts,
        }
    }

    fn ok() -> Result<Acknowledged, DeliveryError> {
        Ok(Acknowledged { status: 200 })
    }

    #[test]
    fn std_randomness_varies() {
        let r = StdRandomness;
        let draws: std::collections::HashSet<u64> = (0..16).map(|_| r.next_u64()).collect();
        assert!(draws.len() > 1);
    }

    fn claim(id: i64, attempts: u32) -> ClaimedEvent {
        ClaimedEvent {
            id,
            attempts,
            lease_until: t0() + chrono::Duration::seconds(30),
            event: Event {
                event_id: Uuid::from_u128(id as u128),
                event_type: "order.paid".into(),
                aggregate_id: id * 10,
                occurred_at: t0(),
                body: serde_json::json!({"event_id": id}),
            },
        }
    }

    fn relay(store: MockOutboxStore, platform: MockDestination, max_attempts: u32) -> OutboxRelay {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(t0());
        let mut random = MockRandomness::new();
        random.expect_next_u64().return_const(0u64);
        OutboxRelay::new(
            Arc::new(store),
            Arc::new(platform),
            Arc::new(clock),
            Arc::new(random),
            RelaySettings {
                policy: policy(1_000, 60_000, max_attempts),
                batch_size: 8,
                lease: Duration::from_secs(30),
            },
        )
    }

    #[tokio::test]
    async fn claims_with_a_lease_and_records_an_acknowledgement() {
        let mut store = MockOutboxStore::new();
        store
            .expect_claim_due()
            .withf(|limit, now, lease_until| {
                *limit == 8 && *now == t0() && *lease_until == t0() + chrono::Duration::seconds(30)
            })
            .times(1)
            .returning(|_, _, _| Ok(vec![claim(1, 0)]));
        store
            .expect_mark_delivered()
            .withf(|c, a, now| {
                c.id == 1 && *now == t0() && a.status_code == Some(200) && a.error.is_none()
            })
            .times(1)
            .returning(|_, _, _| Ok(true));
        store.expect_mark_failed().never();
        let mut platform = MockDestination::new();
        platform
            .expect_deliver()
            .withf(|e| e.event_id == Uuid::from_u128(1))
            .times(1)
            .returning(|_| ok());
        let report = relay(store, platform, 5).relay_batch().await.unwrap();
        assert_eq!((report.claimed, report.delivered), (1, 1));
        assert!(report.failures.is_empty());
    }

    // Invariant: a failed attempt is never recorded as delivered; it is retried after the backoff.
    #[tokio::test]
    async fn a_rejection_schedules_a_retry_after_the_backoff() {
        let mut store = MockOutboxStore::new();
        store
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![claim(2, 1)]));
        store.expect_mark_delivered().never();
        store
            .expect_mark_failed()
            .withf(|c, attempt, next, _| {
                // second failure: ceiling 2 s, fixed half 1 s, random 0
                c.id == 2
                    && attempt.status_code == Some(503)
                    && attempt.error.as_deref().is_some_and(|e| e.contains("503"))
                    && *next == AfterFailure::RetryAt(t0() + chrono::Duration::seconds(1))
            })
            .times(1)
            .returning(|_, _, _, _| Ok(true));
        let mut platform = MockDestination::new();
        platform
            .expect_deliver()
            .returning(|_| Err(DeliveryError::Rejected { status: 503 }));
        let report = relay(store, platform, 5).relay_batch().await.unwrap();
        assert_eq!((report.retrying, report.dead), (1, 0));
        assert_eq!(report.failures[0].attempt, 2);
    }

    #[tokio::test]
    async fn the_last_allowed_failure_parks_the_event_as_dead() {
        let mut store = MockOutboxStore::new();
        store
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![claim(3, 4)]));
        store
            .expect_mark_failed()
            .withf(|_, _, next, now| *next == AfterFailure::Dead && *now == t0())
            .times(1)
            .returning(|_, _, _, _| Ok(true));
        let mut platform = MockDestination::new();
        platform
            .expect_deliver()
            .returning(|_| Err(DeliveryError::Unreachable("timed out".into())));
        let report = relay(store, platform, 5).relay_batch().await.unwrap();
        assert_eq!(report.dead, 1);
    }

    #[tokio::test]
    async fn a_lost_claim_is_reported_not_counted() {
        let mut store = MockOutboxStore::new();
        store
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![claim(4, 0), claim(5, 0)]));
        store.expect_mark_delivered().returning(|_, _, _| Ok(false));
        store.expect_mark_failed().returning(|_, _, _, _| Ok(false));
        let mut platform = MockDestination::new();
        platform.expect_deliver().returning(|e| {
            if e.aggregate_id == 40 {
                ok()
            } else {
                Err(DeliveryError::Rejected { status: 500 })
            }
        });
        let report = relay(store, platform, 5).relay_batch().await.unwrap();
        assert_eq!(
            (
                report.claimed,
                report.delivered,
                report.retrying,
                report.lost_claims
            ),
            (2, 0, 0, 2)
        );
    }

    #[tokio::test]
    async fn nothing_due_means_no_delivery() {
        let mut store = MockOutboxStore::new();
        store.expect_claim_due().returning(|_, _, _| Ok(vec![]));
        let mut platform = MockDestination::new();
        platform.expect_deliver().never();
        let report = relay(store, platform, 5).relay_batch().await.unwrap();
        assert_eq!(report, BatchReport::default());
    }

    // Invariant: a database failure while recording loses neither the error nor the
    // other outcomes of the batch: they are recorded and counted, and the unrecorded one
    // is reported (its lease will make the event due again).
    #[tokio::test]
    async fn a_recording_failure_is_reported_next_to_the_recorded_outcomes() {
        let mut store = MockOutboxStore::new();
        store
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![claim(6, 0), claim(7, 0)]));
        store.expect_mark_delivered().times(2).returning(|c, _, _| {
            if c.id == 6 {
                Err(anyhow::anyhow!("connection lost"))
            } else {
                Ok(true)
            }
        });
        let mut platform = MockDestination::new();
        platform.expect_deliver().times(2).returning(|_| ok());
        let report = relay(store, platform, 5).relay_batch().await.unwrap();
        assert_eq!(
            (report.claimed, report.delivered, report.unrecorded),
            (2, 1, 1)
        );
        assert!(report.failures.is_empty());
        let error = report.record_error.expect("the recording error");
        assert!(error.contains("connection lost"), "{error}");
    }

    #[tokio::test]
    async fn a_failing_claim_is_an_error() {
        let mut store = MockOutboxStore::new();
        store
            .expect_claim_due()
            .returning(|_, _, _| Err(anyhow::anyhow!("database down")));
        let mut platform = MockDestination::new();
        platform.expect_deliver().never();
        let err = relay(store, platform, 5).relay_batch().await.unwrap_err();
        assert!(format!("{err:#}").contains("database down"));
    }

    // Invariant: every claimed event is counted exactly once, by what happened to it, and
    // every failed attempt is reported (recorded or not): the counts metrics are made of.
    #[tokio::test]
    async fn a_mixed_batch_counts_each_outcome_once() {
        // ids: 1 acknowledged, 2 refused (retry), 3 refused for the last time (dead),
        // 4 acknowledged but the claim was lost, 5 refused and the database failed
        let mut store = MockOutboxStore::new();
        store.expect_claim_due().returning(|_, _, _| {
            Ok(vec![
                claim(1, 0),
                claim(2, 0),
                claim(3, 4),
                claim(4, 0),
                claim(5, 0),
            ])
        });
        store
            .expect_mark_delivered()
            .times(2)
            .returning(|c, _, _| Ok(c.id == 1));
        store
            .expect_mark_failed()
            .times(3)
            .returning(|c, _, _, _| match c.id {
                5 => Err(anyhow::anyhow!("connection lost")),
                _ => Ok(true),
            });
        let mut platform = MockDestination::new();
        platform
            .expect_deliver()
            .times(5)
            .returning(|e| match e.aggregate_id {
                10 | 40 => ok(),
                _ => Err(DeliveryError::Rejected { status: 503 }),
            });
        let report = relay(store, platform, 5).relay_batch().await.unwrap();
        assert_eq!(
            (
                report.claimed,
                report.delivered,
                report.retrying,
                report.dead,
                report.lost_claims,
                report.unrecorded
            ),
            (5, 1, 1, 1, 1, 1)
        );
        let failed: Vec<(i64, bool)> = report
            .failures
            .iter()
            .map(|f| (f.aggregate_id, f.recorded))
            .collect();
        assert_eq!(failed, vec![(20, true), (30, true), (50, false)]);
        assert!(report.record_error.unwrap().contains("connection lost"));
    }
}
