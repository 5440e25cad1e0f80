//! `Idempotency-Key`s: [`kernel::IdempotencyStore`], and the completion a use case
//! records with its effects.

use crate::state::{KeyRow, KeyStatus, State};
use crate::MemoryStore;
use async_trait::async_trait;
use kernel::{
    BeginOutcome, IdempotencyClaim, IdempotencyRecord, IdempotencyStore, RecordedResponse,
};

impl State {
    /// Whether `claim` still holds its key, in progress (a use case may record its answer).
    pub fn claim_in_progress(&self, claim: &IdempotencyClaim) -> bool {
        self.keys
            .get(&(claim.caller.clone(), claim.key.clone()))
            .is_some_and(|k| {
                k.claim_id == claim.claim_id && matches!(k.status, KeyStatus::InProgress)
            })
    }

    /// Records the answer (call after [`State::claim_in_progress`]).
    pub fn complete_claim(&mut self, record: IdempotencyRecord) {
        let key = (record.claim.caller, record.claim.key);
        if let Some(row) = self.keys.get_mut(&key) {
            row.status = KeyStatus::Completed(record.response);
        }
    }
}

fn delta(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn begin(
        &self,
        caller: &str,
        key: &str,
        request_hash: &str,
    ) -> anyhow::Result<BeginOutcome> {
        let now = self.clock.now();
        let fresh = |claim_id| KeyRow {
            request_hash: request_hash.to_string(),
            status: KeyStatus::InProgress,
            locked_until: now + delta(self.lease),
            expires_at: now + delta(self.ttl),
            claim_id,
        };
        let mut db = self.db();
        let id = (caller.to_string(), key.to_string());
        let Some(row) = db.keys.get(&id).cloned() else {
            let claim_id = uuid::Uuid::new_v4();
            db.keys.insert(id, fresh(claim_id));
            return Ok(BeginOutcome::Claimed(claim_id));
        };
        if row.expires_at < now {
            // an expired key starts anew
            let claim_id = uuid::Uuid::new_v4();
            db.keys.insert(id, fresh(claim_id));
            return Ok(BeginOutcome::Claimed(claim_id));
        }
        let abandoned = matches!(row.status, KeyStatus::InProgress) && row.locked_until < now;
        if abandoned && row.request_hash == request_hash {
            // a takeover continues the same request
            db.keys.insert(id, fresh(row.claim_id));
            return Ok(BeginOutcome::Claimed(row.claim_id));
        }
        if row.request_hash != request_hash {
            return Ok(BeginOutcome::Mismatch);
        }
        Ok(match row.status {
            KeyStatus::Completed(response) => BeginOutcome::Replay(response),
            KeyStatus::InProgress => BeginOutcome::InProgress,
        })
    }

    async fn complete(
        &self,
        caller: &str,
        key: &str,
        response: &RecordedResponse,
    ) -> anyhow::Result<()> {
        let mut db = self.db();
        if let Some(row) = db.keys.get_mut(&(caller.to_string(), key.to_string())) {
            if matches!(row.status, KeyStatus::InProgress) {
                row.status = KeyStatus::Completed(response.clone());
            }
        }
        Ok(())
    }

    async fn release(&self, caller: &str, key: &str) -> anyhow::Result<()> {
        let mut db = self.db();
        let id = (caller.to_string(), key.to_string());
        if db
            .keys
            .get(&id)
            .is_some_and(|row| matches!(row.status, KeyStatus::InProgress))
        {
            db.keys.remove(&id);
        }
        Ok(())
    }

    async fn purge_expired(&self, limit: i64) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let mut db = self.db();
        let expired: Vec<(String, String)> = db
            .keys
            .iter()
            .filter(|(_, row)| row.expires_at < now)
            .map(|(id, _)| id.clone())
            .take(usize::try_from(limit).unwrap_or(0))
            .collect();
        for id in &expired {
            db.keys.remove(id);
        }
        Ok(expired.len())
    }
}
