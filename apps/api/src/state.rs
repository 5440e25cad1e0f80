//! What handlers share: the domain services, wired to their adapters.

use balance::ChargeService;
use order::relay::OutboxAdmin;
use postgres_adapter::PgPool;
use std::sync::Arc;

use crate::config::Settings;

pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: PgPool,
    pub charges: ChargeService,
    pub outbox: OutboxAdmin,
}
