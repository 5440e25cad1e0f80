//! The shop's main flow on the in-memory store: charge, drop a coupon (first come,
//! first served), order with it, pay, refund part, cancel, and relay the outbox events.
//!
//! `cargo run --example shop -p memory-adapter`

use balance::{ChargeAmount, ChargeService, PaymentMethod};
use chrono::Duration as Days;
use coupon::{CouponName, CouponService, Discount, DiscountType, NewCoupon, ValidityWindow};
use kernel::{Actor, Clock, Money, Quantity, SystemClock, UserId};
use memory_adapter::{MemoryStore, RecordingDestination};
use order::plan::RefundRequest;
use order::{LineRequest, OrderService, PlaceOrder, RefundItem};
use outbox::{OutboxRelay, RelaySettings, RetryPolicy, StdRandomness};
use payment_gateway::SandboxGateway;
use std::sync::Arc;
use std::time::Duration;
use stock::{NewProduct, Price, ProductName, StockLevel, StockService};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let (db, clock): (MemoryStore, Arc<dyn Clock>) = (MemoryStore::new(), Arc::new(SystemClock));
    let catalogue = StockService::new(Arc::new(db.clone()), clock.clone());
    let charges = ChargeService::new(
        Arc::new(db.clone()),
        Arc::new(SandboxGateway),
        clock.clone(),
    );
    let coupons = CouponService::new(Arc::new(db.clone()), Arc::new(db.clone()), clock.clone());
    let orders = OrderService::new(
        Arc::new(db.clone()),
        clock.clone(),
        Duration::from_secs(900),
    );
    let alice = UserId::try_from(1)?;

    let tea = catalogue
        .create_product(NewProduct {
            name: ProductName::try_from("Green tea".to_string())?,
            price: Price::try_from(4_500)?,
            stock: StockLevel::try_from(10)?,
            max_per_user: None,
        })
        .await?;
    let receipt = charges
        .charge(
            alice,
            ChargeAmount::try_from(50_000)?,
            PaymentMethod::try_from("card".to_string())?,
            None,
        )
        .await?;
    println!("charged 50,000: balance {}", receipt.balance);

    let now = clock.now();
    let drop = coupons
        .create(NewCoupon::new(
            CouponName::try_from("Launch 10%".to_string())?,
            Discount::new(DiscountType::Percent, 10)?,
            Money::ZERO,
            Some(Quantity::try_from(100)?),
            ValidityWindow::new(now, now + Days::days(7))?,
            vec![],
        )?)
        .await?;
    coupons.issue(drop.id, alice).await?;
    println!("coupon {} issued to alice (1 of 100)", drop.name);

    let line = LineRequest {
        product_id: tea.id,
        quantity: Quantity::try_from(4)?,
    };
    let order = orders
        .place(
            PlaceOrder::new(alice, vec![line], Some(drop.id), false)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
            None,
        )
        .await?;
    println!(
        "order {}: {} - {} = {}",
        order.id, order.subtotal, order.discount, order.total
    );
    let paid = orders.pay(Actor::User(alice), order.id, None).await?;
    println!("paid: balance {}", charges.balance(alice).await?);

    let one = RefundItem {
        product_id: tea.id,
        quantity: Quantity::try_from(1)?,
    };
    let refund = orders
        .refund(
            Actor::User(alice),
            paid.id,
            RefundRequest::new(vec![one], None).map_err(|e| anyhow::anyhow!("{e:?}"))?,
            None,
        )
        .await?;
    println!(
        "refunded 1 unit: {} back, balance {}",
        refund.amount,
        charges.balance(alice).await?
    );
    let cancelled = orders.cancel(Actor::User(alice), paid.id, None).await?;
    println!(
        "cancelled ({:?}): balance {}, stock {}",
        cancelled.status,
        charges.balance(alice).await?,
        catalogue.product(tea.id).await?.stock
    );

    let platform = RecordingDestination::new();
    let settings = RelaySettings {
        policy: RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_attempts: 5,
        },
        batch_size: 10,
        lease: Duration::from_secs(30),
    };
    let relay = OutboxRelay::new(
        Arc::new(db.clone()),
        Arc::new(platform.clone()),
        clock,
        Arc::new(StdRandomness),
        settings,
    );
    while relay.relay_batch().await?.claimed > 0 {}
    for event in platform.received() {
        println!("event {}: {}", event.event_type, event.body);
    }
    Ok(())
}
