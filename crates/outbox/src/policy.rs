//! When to try again after a failed attempt, and when to give up (pure).

use crate::model::AfterFailure;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// When to try again after a failed attempt, and when to give up.
///
/// The delay after the `n`-th failed attempt (n = 1, 2, ...) is drawn with "equal jitter"
/// from `ceiling(n) = min(base * 2^(n-1), max)`: half of the ceiling is fixed, the other
/// half is random. Relays that failed together so spread out, and no delay passes `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The ceiling of the first delay.
    pub base: Duration,
    /// The largest delay.
    pub max: Duration,
    /// Attempts (the first one included) before an event is parked as DEAD; at least 1.
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// `min(base * 2^(failed-1), max)`, in milliseconds, saturating.
    fn ceiling_ms(&self, failed: u32) -> u64 {
        let max = millis(self.max);
        let exponent = failed.saturating_sub(1);
        millis(self.base)
            .saturating_mul(2u64.saturating_pow(exponent))
            .min(max)
    }

    /// The part of the delay after `failed` failed attempts that is not random.
    pub fn fixed_part(&self, failed: u32) -> Duration {
        Duration::from_millis(self.ceiling_ms(failed) / 2)
    }

    /// The largest delay after `failed` failed attempts (the ceiling).
    pub fn ceiling(&self, failed: u32) -> Duration {
        Duration::from_millis(self.ceiling_ms(failed))
    }

    /// The delay after `failed` failed attempts; `random` is any random number (the
    /// caller injects it, so this stays a pure function).
    pub fn delay(&self, failed: u32, random: u64) -> Duration {
        let ceiling = self.ceiling_ms(failed);
        let fixed = ceiling / 2;
        let spread = ceiling - fixed;
        let jitter = match spread.checked_add(1) {
            Some(range) => random % range,
            None => random,
        };
        Duration::from_millis(fixed + jitter)
    }

    /// What to do with an event whose attempt number `attempts_before + 1` just failed:
    /// DEAD once `max_attempts` attempts have failed, otherwise due again after [`Self::delay`].
    pub fn after_failure(
        &self,
        attempts_before: u32,
        now: DateTime<Utc>,
        random: u64,
    ) -> AfterFailure {
        let failed = attempts_before.saturating_add(1);
        if failed >= self.max_attempts.max(1) {
            return AfterFailure::Dead;
        }
        let delay =
            chrono::Duration::from_std(self.delay(failed, random)).unwrap_or(chrono::Duration::MAX);
        AfterFailure::RetryAt(
            now.checked_add_signed(delay)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }

    /// The shortest time from an event's first attempt to its last one (after which it
    /// is DEAD), whatever the jitter draws: the sum of the fixed parts of the delays
    /// between its `max_attempts` attempts. An outage shorter than this never parks an
    /// event (attempt durations only add to it).
    pub fn shortest_span(&self) -> Duration {
        (1..self.max_attempts.max(1)).fold(Duration::ZERO, |sum, failed| {
            sum.saturating_add(self.fixed_part(failed))
        })
    }

    /// The longest time from an event's first attempt to its last one (every delay at
    /// its ceiling), attempt durations aside.
    pub fn longest_span(&self) -> Duration {
        (1..self.max_attempts.max(1)).fold(Duration::ZERO, |sum, failed| {
            sum.saturating_add(self.ceiling(failed))
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::testing::t0;
    use proptest::prelude::*;

    fn policy(base_ms: u64, max_ms: u64, max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(base_ms),
            max: Duration::from_millis(max_ms),
            max_attempts,
        }
    }

    #[test]
    fn the_ceiling_doubles_from_base_up_to_max() {
        let p = policy(1_000, 300_000, 20);
        // random 0 gives the fixed half of the ceiling, random = half gives the ceiling
        assert_eq!(p.delay(1, 0).as_millis(), 500);
        assert_eq!(p.delay(1, 500).as_millis(), 1_000);
        assert_eq!(p.delay(2, 1_000).as_millis(), 2_000);
        assert_eq!(p.delay(3, 0).as_millis(), 2_000);
        assert_eq!(p.delay(9, 128_000).as_millis(), 256_000);
        assert_eq!(p.delay(10, 150_000).as_millis(), 300_000);
        assert_eq!(p.delay(60, 0).as_millis(), 150_000);
        assert_eq!(p.fixed_part(u32::MAX), Duration::from_millis(150_000));
    }

    #[test]
    fn an_event_is_dead_after_exactly_max_attempts() {
        let p = policy(10, 100, 3);
        assert!(matches!(
            p.after_failure(0, t0(), 0),
            AfterFailure::RetryAt(_)
        ));
        assert!(matches!(
            p.after_failure(1, t0(), 0),
            AfterFailure::RetryAt(_)
        ));
        assert_eq!(p.after_failure(2, t0(), 0), AfterFailure::Dead);
        // a policy of 0 attempts still makes one
        assert_eq!(
            policy(10, 100, 0).after_failure(0, t0(), 0),
            AfterFailure::Dead
        );
    }

    #[test]
    fn a_retry_is_due_after_the_delay() {
        let p = policy(1_000, 300_000, 20);
        assert_eq!(
            p.after_failure(0, t0(), 0),
            AfterFailure::RetryAt(t0() + chrono::Duration::milliseconds(500))
        );
    }

    #[test]
    fn the_span_adds_up_the_delays_between_attempts() {
        // 3 attempts: 2 delays, ceilings 1 s and 2 s
        let p = policy(1_000, 300_000, 3);
        assert_eq!(p.shortest_span(), Duration::from_millis(500 + 1_000));
        assert_eq!(p.longest_span(), Duration::from_millis(1_000 + 2_000));
        // one attempt: no delay at all
        assert_eq!(policy(1_000, 300_000, 1).shortest_span(), Duration::ZERO);
        assert_eq!(policy(1_000, 300_000, 0).longest_span(), Duration::ZERO);
    }

    proptest! {
        // Invariant: no delay is ever above the configured maximum.
        #[test]
        fn the_delay_never_passes_max(base in 0u64..10_000_000, max in 0u64..10_000_000,
                                      failed in 0u32..200, random in any::<u64>()) {
            let p = policy(base, max, 20);
            prop_assert!(p.delay(failed, random) <= Duration::from_millis(max));
        }

        // Invariant: the random part only adds; a delay is never below its fixed part.
        #[test]
        fn the_delay_is_never_below_its_fixed_part(base in 0u64..10_000_000, max in 0u64..10_000_000,
                                                   failed in 0u32..200, random in any::<u64>()) {
            let p = policy(base, max, 20);
            prop_assert!(p.delay(failed, random) >= p.fixed_part(failed));
        }

        // Invariant: waiting grows (or stays capped) with every failure.
        #[test]
        fn the_fixed_part_never_decreases(base in 0u64..10_000_000, max in 0u64..10_000_000,
                                          failed in 0u32..200) {
            let p = policy(base, max, 20);
            prop_assert!(p.fixed_part(failed + 1) >= p.fixed_part(failed));
        }

        // Invariant: before max_attempts failures an event is retried, never later than max.
        #[test]
        fn retries_are_due_within_max(before in 0u32..19, random in any::<u64>()) {
            let p = policy(1_000, 300_000, 20);
            match p.after_failure(before, t0(), random) {
                AfterFailure::RetryAt(at) => {
                    prop_assert!(at > t0());
                    prop_assert!(at <= t0() + chrono::Duration::milliseconds(300_000));
                }
                AfterFailure::Dead => prop_assert!(false, "dead before max attempts"),
            }
        }

        // Invariant: whatever the jitter draws, the schedule lasts at least the shortest span.
        #[test]
        fn any_schedule_lasts_at_least_the_shortest_span(attempts in 1u32..60,
                                                         draws in proptest::collection::vec(any::<u64>(), 60)) {
            let p = policy(1_000, 3_600_000, attempts);
            let mut at = t0();
            let mut before = 0;
            while let AfterFailure::RetryAt(next) = p.after_failure(before, at, draws[before as usize]) {
                at = next;
                before += 1;
            }
            let span = (at - t0()).to_std().unwrap();
            prop_assert!(span >= p.shortest_span() && span <= p.longest_span());
        }
    }
}
