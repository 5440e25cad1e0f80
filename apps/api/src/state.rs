//! What handlers share: the domain services, wired to their adapters.

use balance::ChargeService;
use coupon::CouponService;
use order::cart::CartService;
use order::OrderService;
use outbox::OutboxAdmin;
use postgres_adapter::PgPool;
use std::sync::Arc;
use stock::StockService;

use crate::config::Settings;

pub struct AppState {
    pub settings: Arc<Settings>,
    /// This worker's pool (or the background jobs' one): its connections are driven on
    /// the thread that uses them.
    pub pool: PgPool,
    /// Every pool of the process (each HTTP worker's and the jobs'), for `/metrics`
    /// and readiness.
    pub pools: Arc<[PgPool]>,
    pub charges: ChargeService,
    pub stock: StockService,
    pub carts: CartService,
    pub coupons: CouponService,
    pub outbox: OutboxAdmin,
    pub orders: OrderService,
    /// Signalled when this process commits an outbox event (wakes its relay).
    pub events: Arc<tokio::sync::Notify>,
}
