//! Storage of `Idempotency-Key`s: the first request with a key claims it, its response
//! is stored, and later requests with the same key replay it. Held in PostgreSQL so it
//! works across instances and restarts.

use crate::pool::{conn, PgPool};
use crate::schema::idempotency_keys;
use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamptz};
use diesel_async::RunQueryDsl;
use kernel::{BeginOutcome, IdempotencyStore, RecordedResponse};
use std::time::Duration;

/// `Idempotency-Key`s on PostgreSQL (see [`kernel::IdempotencyStore`] for the guarantees).
#[derive(Clone)]
pub struct PgIdempotencyStore {
    pool: PgPool,
    /// How long a claim protects a running request; a claim left by a request that died
    /// is taken over after this.
    lease: Duration,
    /// How long a key lives.
    ttl: Duration,
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    claim_id: uuid::Uuid,
}

#[derive(Queryable)]
struct Existing {
    request_hash: String,
    status: String,
    response_status: Option<i16>,
    response_headers: Option<serde_json::Value>,
    response_body: Option<Vec<u8>>,
}

impl PgIdempotencyStore {
    /// A store over `pool`: a claim protects its request for `lease`, a key lives `ttl`.
    pub fn new(pool: PgPool, lease: Duration, ttl: Duration) -> Self {
        Self { pool, lease, ttl }
    }
}

#[async_trait]
impl IdempotencyStore for PgIdempotencyStore {
    async fn begin(
        &self,
        caller: &str,
        key: &str,
        request_hash: &str,
    ) -> anyhow::Result<BeginOutcome> {
        let mut conn = conn(&self.pool).await?;
        let now = Utc::now();
        let locked_until = now + chrono::Duration::from_std(self.lease)?;
        let expires_at = now + chrono::Duration::from_std(self.ttl)?;
        // Claim a new key, an expired one, or a same-request claim whose lease ran out.
        let claimed: Option<Claimed> = diesel::sql_query(
            "INSERT INTO idempotency_keys AS k (caller, key, request_hash, status, locked_until, expires_at)
             VALUES ($1, $2, $3, 'IN_PROGRESS', $4, $5)
             ON CONFLICT (caller, key) DO UPDATE
               SET request_hash = EXCLUDED.request_hash, status = 'IN_PROGRESS',
                   response_status = NULL, response_headers = NULL, response_body = NULL,
                   locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at,
                   created_at = now(),
                   -- a takeover continues the same request; an expired key starts anew
                   claim_id = CASE WHEN k.expires_at < $6 THEN EXCLUDED.claim_id ELSE k.claim_id END
               WHERE k.expires_at < $6
                  OR (k.status = 'IN_PROGRESS' AND k.locked_until < $6 AND k.request_hash = EXCLUDED.request_hash)
             RETURNING claim_id",
        )
        .bind::<Text, _>(caller)
        .bind::<Text, _>(key)
        .bind::<Text, _>(request_hash)
        .bind::<Timestamptz, _>(locked_until)
        .bind::<Timestamptz, _>(expires_at)
        .bind::<Timestamptz, _>(now)
        .get_result(&mut conn)
        .await
        .optional()
        .context("claiming an idempotency key")?;
        if let Some(c) = claimed {
            return Ok(BeginOutcome::Claimed(c.claim_id));
        }
        let existing: Option<Existing> = idempotency_keys::table
            .find((caller, key))
            .select((
                idempotency_keys::request_hash,
                idempotency_keys::status,
                idempotency_keys::response_status,
                idempotency_keys::response_headers,
                idempotency_keys::response_body,
            ))
            .first(&mut conn)
            .await
            .optional()
            .context("reading an idempotency key")?;
        let Some(existing) = existing else {
            // released between our two statements: the owner failed; the caller may retry
            return Ok(BeginOutcome::InProgress);
        };
        if existing.request_hash != request_hash {
            return Ok(BeginOutcome::Mismatch);
        }
        match (existing.status.as_str(), existing.response_status) {
            ("COMPLETED", Some(status)) => {
                let headers: Vec<(String, String)> = match existing.response_headers {
                    Some(v) => serde_json::from_value(v).context("stored response headers")?,
                    None => Vec::new(),
                };
                Ok(BeginOutcome::Replay(RecordedResponse {
                    status: u16::try_from(status).context("stored response status")?,
                    headers,
                    body: existing.response_body.unwrap_or_default(),
                }))
            }
            _ => Ok(BeginOutcome::InProgress),
        }
    }

    async fn complete(
        &self,
        caller: &str,
        key: &str,
        response: &RecordedResponse,
    ) -> anyhow::Result<()> {
        let mut conn = conn(&self.pool).await?;
        diesel::update(
            idempotency_keys::table
                .find((caller, key))
                .filter(idempotency_keys::status.eq("IN_PROGRESS")),
        )
        .set((
            idempotency_keys::status.eq("COMPLETED"),
            idempotency_keys::response_status.eq(i16::try_from(response.status)?),
            idempotency_keys::response_headers.eq(serde_json::to_value(&response.headers)?),
            idempotency_keys::response_body.eq(&response.body),
        ))
        .execute(&mut conn)
        .await
        .context("storing an idempotent response")?;
        Ok(())
    }

    async fn release(&self, caller: &str, key: &str) -> anyhow::Result<()> {
        let mut conn = conn(&self.pool).await?;
        diesel::delete(
            idempotency_keys::table
                .find((caller, key))
                .filter(idempotency_keys::status.eq("IN_PROGRESS")),
        )
        .execute(&mut conn)
        .await
        .context("releasing an idempotency key")?;
        Ok(())
    }

    async fn purge_expired(&self, limit: i64) -> anyhow::Result<usize> {
        let mut conn = conn(&self.pool).await?;
        let n = diesel::sql_query(
            "DELETE FROM idempotency_keys WHERE ctid IN
               (SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT $1)",
        )
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .execute(&mut conn)
        .await
        .context("purging expired idempotency keys")?;
        Ok(n)
    }
}
