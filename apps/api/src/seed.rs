//! Demo data for `make run`: safe to run again (it only adds what is missing).

use crate::config::Settings;
use balance::{BalanceStore, ChargeAmount, ChargeService, PaymentMethod};
use kernel::{SystemClock, UserId};
use payment_gateway::SandboxGateway;
use postgres_adapter::{build_pool, PgBalanceStore, PgPool, PoolSettings};
use std::sync::Arc;

/// Seeds the demo catalogue and balances; returns a line per thing it added.
pub async fn seed(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let pool = build_pool(&PoolSettings::new(settings.database.url.clone(), 2))?;
    let mut added = Vec::new();
    added.extend(seed_balances(&pool).await?);
    Ok(added)
}

/// Users 1 and 2 start with 100,000 won, charged through the sandbox gateway like any
/// other charge (so their history shows where the money came from).
async fn seed_balances(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let store = Arc::new(PgBalanceStore::new(pool.clone()));
    let charges = ChargeService::new(
        store.clone(),
        Arc::new(SandboxGateway),
        Arc::new(SystemClock),
    );
    let mut added = Vec::new();
    for id in [1, 2] {
        let user = UserId::try_from(id)?;
        if store
            .history(user, Default::default())
            .await?
            .items
            .is_empty()
        {
            let amount = ChargeAmount::try_from(100_000)?;
            charges
                .charge(user, amount, PaymentMethod::try_from("card".to_string())?)
                .await?;
            added.push(format!("user {id}: balance charged with 100,000 won"));
        }
    }
    Ok(added)
}
