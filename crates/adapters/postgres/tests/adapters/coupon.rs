//! Coupons on PostgreSQL: issuing under concurrency, use on orders and restore, admin
//! creation with recipients and their notifications.

use ::coupon::{
    ApplyCouponError, CouponName, CouponStore, Discount, DiscountType, IssueCouponError, NewCoupon,
    NotificationInbox, NotificationKind, StoredStatus, Unusable, UseCouponError, UserCouponStatus,
    ValidityWindow,
};
use chrono::{Duration, TimeZone};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures::future::join_all;
use kernel::{CouponId, Money, NotificationId, OrderId, PageRequest, Quantity, Timestamp, UserId};
use postgres_adapter::coupon::PgCouponStore;
use postgres_adapter::notification::PgNotificationInbox;
use postgres_adapter::schema::coupon::{coupons, notifications, user_coupons};
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::PgPool;
use std::sync::Arc;

fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

fn uid(id: i64) -> UserId {
    UserId::try_from(id).unwrap()
}

fn oid(id: i64) -> OrderId {
    OrderId::try_from(id).unwrap()
}

fn won(v: i64) -> Money {
    Money::try_from(v).unwrap()
}

struct Fixture {
    store: Arc<PgCouponStore>,
    pool: PgPool,
    _db: TestDatabase,
}

async fn fixture(pool_size: usize) -> Fixture {
    let db = TestDatabase::create().await;
    let pool = db.pool(pool_size);
    Fixture {
        store: Arc::new(PgCouponStore::new(pool.clone())),
        pool,
        _db: db,
    }
}

struct Spec {
    discount: Discount,
    min: i64,
    total: Option<i64>,
    from: Timestamp,
    until: Timestamp,
    issue_to: Vec<i64>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            discount: Discount::new(DiscountType::Fixed, 1_000).unwrap(),
            min: 0,
            total: None,
            from: t0() - Duration::days(1),
            until: t0() + Duration::days(1),
            issue_to: vec![],
        }
    }
}

async fn create(f: &Fixture, spec: Spec) -> CouponId {
    let new = NewCoupon::new(
        CouponName::try_from("Test coupon".to_string()).unwrap(),
        spec.discount,
        won(spec.min),
        spec.total.map(|t| Quantity::try_from(t).unwrap()),
        ValidityWindow::new(spec.from, spec.until).unwrap(),
        spec.issue_to.into_iter().map(uid).collect(),
    )
    .unwrap();
    f.store.create(new, t0()).await.unwrap().id
}

async fn counts(f: &Fixture, coupon: CouponId) -> (i64, i64) {
    let mut conn = f.pool.get().await.unwrap();
    let issued: i64 = coupons::table
        .find(coupon.get())
        .select(coupons::issued_quantity)
        .first(&mut conn)
        .await
        .unwrap();
    let owners: i64 = user_coupons::table
        .filter(user_coupons::coupon_id.eq(coupon.get()))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    (issued, owners)
}

// Invariant: at most total_quantity units are ever issued, however many connections race.
#[tokio::test]
async fn concurrent_issue_on_one_coupon_never_passes_total_quantity() {
    let f = fixture(16).await;
    let coupon = create(
        &f,
        Spec {
            total: Some(10),
            ..Spec::default()
        },
    )
    .await;
    let results = join_all((1..=64).map(|u| {
        let store = f.store.clone();
        tokio::spawn(async move { store.issue(coupon, uid(u), t0()).await })
    }))
    .await;
    let mut issued = 0;
    let mut sold_out = 0;
    for r in results {
        match r.unwrap() {
            Ok(uc) => {
                issued += 1;
                assert_eq!(uc.status, UserCouponStatus::Available);
                assert!(uc.coupon.issued_quantity <= 10);
            }
            Err(IssueCouponError::SoldOut) => sold_out += 1,
            Err(e) => panic!("unexpected refusal: {e:?}"),
        }
    }
    assert_eq!((issued, sold_out), (10, 54));
    assert_eq!(counts(&f, coupon).await, (10, 10));
}

// Invariant: one user owns a coupon at most once, and a refused duplicate consumes no unit.
#[tokio::test]
async fn the_same_user_racing_gets_one_unit_and_duplicates_consume_none() {
    let f = fixture(16).await;
    let coupon = create(
        &f,
        Spec {
            total: Some(2),
            ..Spec::default()
        },
    )
    .await;
    let results = join_all((0..20).map(|_| {
        let store = f.store.clone();
        tokio::spawn(async move { store.issue(coupon, uid(7), t0()).await })
    }))
    .await;
    let mut ok = 0;
    for r in results {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(IssueCouponError::AlreadyIssued) => {}
            Err(e) => panic!("unexpected refusal: {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(counts(&f, coupon).await, (1, 1));
    // the second unit is still there for someone else
    let other = f.store.issue(coupon, uid(8), t0()).await.unwrap();
    assert_eq!(other.coupon.issued_quantity, 2);
    assert!(matches!(
        f.store.issue(coupon, uid(9), t0()).await,
        Err(IssueCouponError::SoldOut)
    ));
}

#[tokio::test]
async fn refusals_name_their_reason() {
    let f = fixture(2).await;
    let coupon = create(
        &f,
        Spec {
            total: Some(1),
            ..Spec::default()
        },
    )
    .await;
    assert!(matches!(
        f.store
            .issue(CouponId::try_from(999).unwrap(), uid(1), t0())
            .await,
        Err(IssueCouponError::NotFound)
    ));
    // the window is half-open: from included, until excluded
    assert!(matches!(
        f.store
            .issue(
                coupon,
                uid(1),
                t0() - Duration::days(1) - Duration::microseconds(1)
            )
            .await,
        Err(IssueCouponError::NotActive)
    ));
    assert!(matches!(
        f.store
            .issue(coupon, uid(1), t0() + Duration::days(1))
            .await,
        Err(IssueCouponError::NotActive)
    ));
    let first = f
        .store
        .issue(coupon, uid(1), t0() - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(first.coupon.issued_quantity, 1);
    assert_eq!(first.issued_at, t0() - Duration::days(1));
    assert!(matches!(
        f.store.issue(coupon, uid(1), t0()).await,
        Err(IssueCouponError::AlreadyIssued)
    ));
    assert!(matches!(
        f.store.issue(coupon, uid(2), t0()).await,
        Err(IssueCouponError::SoldOut)
    ));
    assert_eq!(counts(&f, coupon).await, (1, 1));
}

// Invariant: the schema itself refuses more issued than total and negative counts.
#[tokio::test]
async fn the_schema_guards_the_quantity() {
    let f = fixture(2).await;
    let coupon = create(
        &f,
        Spec {
            total: Some(1),
            ..Spec::default()
        },
    )
    .await;
    let mut conn = f.pool.get().await.unwrap();
    for bad in [2_i64, -1] {
        let r = diesel::update(coupons::table.find(coupon.get()))
            .set(coupons::issued_quantity.eq(bad))
            .execute(&mut conn)
            .await;
        assert!(r.is_err(), "issued_quantity {bad} must be refused");
    }
}

// Invariant: admin creation writes coupon, owners and notifications together and
// counts the owners in issued_quantity.
#[tokio::test]
async fn creation_issues_to_each_recipient_once_with_one_notification() {
    let f = fixture(2).await;
    let coupon = create(
        &f,
        Spec {
            total: Some(3),
            issue_to: vec![5, 6, 5],
            discount: Discount::new(DiscountType::Percent, 15).unwrap(),
            ..Spec::default()
        },
    )
    .await;
    assert_eq!(counts(&f, coupon).await, (2, 2));
    let inbox = PgNotificationInbox::new(f.pool.clone());
    for u in [5, 6] {
        let page = f
            .store
            .user_coupons(uid(u), t0(), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].coupon.id, coupon);
        let notes = inbox.list(uid(u), PageRequest::default()).await.unwrap();
        assert_eq!(notes.items.len(), 1);
        let n = &notes.items[0];
        assert_eq!(n.kind, NotificationKind::CouponIssued);
        assert_eq!(n.coupon_id, Some(coupon));
        assert!(!n.read);
        assert!(n.message.contains("15% off"), "{}", n.message);
    }
    assert!(inbox
        .list(uid(7), PageRequest::default())
        .await
        .unwrap()
        .items
        .is_empty());
    // one unit is left for first come, first served, then it is sold out
    f.store.issue(coupon, uid(7), t0()).await.unwrap();
    assert!(matches!(
        f.store.issue(coupon, uid(8), t0()).await,
        Err(IssueCouponError::SoldOut)
    ));
    assert!(matches!(
        f.store.issue(coupon, uid(5), t0()).await,
        Err(IssueCouponError::AlreadyIssued)
    ));
}

#[tokio::test]
async fn a_users_coupons_page_newest_first_and_expire_at_read_time() {
    let f = fixture(2).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            create(
                &f,
                Spec {
                    issue_to: vec![3],
                    ..Spec::default()
                },
            )
            .await,
        );
    }
    let first = f
        .store
        .user_coupons(uid(3), t0(), PageRequest::new(2, None).unwrap())
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|c| c.coupon.id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    let rest = f
        .store
        .user_coupons(uid(3), t0(), PageRequest::new(10, first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);
    assert_eq!(rest.next, None);
    let later = f
        .store
        .user_coupons(uid(3), t0() + Duration::days(1), PageRequest::default())
        .await
        .unwrap();
    assert!(later
        .items
        .iter()
        .all(|c| c.status == UserCouponStatus::Expired && c.stored == StoredStatus::Available));
}

async fn used_row(
    f: &Fixture,
    coupon: CouponId,
    user: i64,
) -> (String, Option<i64>, Option<Timestamp>) {
    let mut conn = f.pool.get().await.unwrap();
    user_coupons::table
        .filter(user_coupons::coupon_id.eq(coupon.get()))
        .filter(user_coupons::user_id.eq(user))
        .select((
            user_coupons::status,
            user_coupons::order_id,
            user_coupons::used_at,
        ))
        .first(&mut conn)
        .await
        .unwrap()
}

// Invariant: using is idempotent per order, and restoring is idempotent.
#[tokio::test]
async fn use_and_restore_are_idempotent() {
    let f = fixture(2).await;
    let coupon = create(
        &f,
        Spec {
            discount: Discount::new(DiscountType::Percent, 10).unwrap(),
            min: 10_000,
            issue_to: vec![1],
            ..Spec::default()
        },
    )
    .await;
    let s = &f.store;
    assert_eq!(
        s.apply_to_order(uid(1), coupon, oid(100), won(12_345), t0())
            .await
            .unwrap(),
        won(1_234)
    );
    let after_first = used_row(&f, coupon, 1).await;
    assert_eq!(after_first.0, "USED");
    assert_eq!(after_first.1, Some(100));
    // the same order again (a retry), later: same discount, nothing changes
    assert_eq!(
        s.apply_to_order(
            uid(1),
            coupon,
            oid(100),
            won(12_345),
            t0() + Duration::hours(1)
        )
        .await
        .unwrap(),
        won(1_234)
    );
    assert_eq!(used_row(&f, coupon, 1).await, after_first);
    // another order cannot use it
    assert!(matches!(
        s.apply_to_order(uid(1), coupon, oid(101), won(12_345), t0())
            .await,
        Err(ApplyCouponError::Refused(UseCouponError::NotUsable(
            Unusable::AlreadyUsed
        )))
    ));
    s.restore_for_order(oid(100)).await.unwrap();
    assert_eq!(
        used_row(&f, coupon, 1).await,
        ("AVAILABLE".into(), None, None)
    );
    s.restore_for_order(oid(100)).await.unwrap();
    s.restore_for_order(oid(555)).await.unwrap();
    assert_eq!(
        used_row(&f, coupon, 1).await,
        ("AVAILABLE".into(), None, None)
    );
    // usable again, by another order
    assert_eq!(
        s.apply_to_order(uid(1), coupon, oid(101), won(10_000), t0())
            .await
            .unwrap(),
        won(1_000)
    );
}

#[tokio::test]
async fn use_refuses_unknown_unowned_out_of_window_and_below_minimum() {
    let f = fixture(2).await;
    let coupon = create(
        &f,
        Spec {
            min: 10_000,
            issue_to: vec![1],
            ..Spec::default()
        },
    )
    .await;
    let s = &f.store;
    let refused = |r: Result<Money, ApplyCouponError>| match r {
        Err(ApplyCouponError::Refused(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refused(
            s.apply_to_order(
                uid(1),
                CouponId::try_from(999).unwrap(),
                oid(1),
                won(50_000),
                t0()
            )
            .await
        ),
        UseCouponError::NotFound
    );
    assert_eq!(
        refused(
            s.apply_to_order(uid(2), coupon, oid(1), won(50_000), t0())
                .await
        ),
        UseCouponError::NotUsable(Unusable::NotOwned)
    );
    assert_eq!(
        refused(
            s.apply_to_order(uid(1), coupon, oid(1), won(9_999), t0())
                .await
        ),
        UseCouponError::NotUsable(Unusable::BelowMinimum)
    );
    assert_eq!(
        refused(
            s.apply_to_order(
                uid(1),
                coupon,
                oid(1),
                won(50_000),
                t0() + Duration::days(1)
            )
            .await
        ),
        UseCouponError::NotUsable(Unusable::Expired)
    );
    // nothing was changed by the refusals
    assert_eq!(
        used_row(&f, coupon, 1).await,
        ("AVAILABLE".into(), None, None)
    );
}

// Invariant: a coupon is used by at most one order, whatever the concurrency.
#[tokio::test]
async fn concurrent_orders_use_one_coupon_once() {
    let f = fixture(16).await;
    let coupon = create(
        &f,
        Spec {
            issue_to: vec![1],
            ..Spec::default()
        },
    )
    .await;
    let results = join_all((1..=16).map(|o| {
        let store = f.store.clone();
        tokio::spawn(async move {
            store
                .apply_to_order(uid(1), coupon, oid(o), won(5_000), t0())
                .await
        })
    }))
    .await;
    let ok = results
        .into_iter()
        .filter(|r| match r.as_ref().unwrap() {
            Ok(d) => {
                assert_eq!(*d, won(1_000));
                true
            }
            Err(ApplyCouponError::Refused(UseCouponError::NotUsable(Unusable::AlreadyUsed))) => {
                false
            }
            Err(e) => panic!("unexpected: {e:?}"),
        })
        .count();
    assert_eq!(ok, 1);
}

// Invariant: one order uses at most one coupon (unique partial index on order_id).
#[tokio::test]
async fn one_order_cannot_use_two_coupons() {
    let f = fixture(2).await;
    let a = create(
        &f,
        Spec {
            issue_to: vec![1],
            ..Spec::default()
        },
    )
    .await;
    let b = create(
        &f,
        Spec {
            issue_to: vec![1],
            ..Spec::default()
        },
    )
    .await;
    f.store
        .apply_to_order(uid(1), a, oid(9), won(5_000), t0())
        .await
        .unwrap();
    assert!(f
        .store
        .apply_to_order(uid(1), b, oid(9), won(5_000), t0())
        .await
        .is_err());
    assert_eq!(used_row(&f, b, 1).await, ("AVAILABLE".into(), None, None));
}

fn capped(percent: i64, cap: i64) -> Discount {
    Discount::with_cap(DiscountType::Percent, percent, Some(cap)).unwrap()
}

// Invariant: max_discount survives the round trip through the database and caps the
// discount applied to an order.
#[tokio::test]
async fn a_capped_percent_coupon_is_stored_and_applied_with_its_cap() {
    let f = fixture(2).await;
    let coupon = create(
        &f,
        Spec {
            discount: capped(20, 3_000),
            issue_to: vec![1],
            ..Spec::default()
        },
    )
    .await;
    let read = f.store.get(coupon).await.unwrap().unwrap();
    assert_eq!(read.discount, capped(20, 3_000));
    assert!(read.active);
    // 20% of 50,000 is 10,000: capped at 3,000
    assert_eq!(
        f.store
            .apply_to_order(uid(1), coupon, oid(1), won(50_000), t0())
            .await
            .unwrap(),
        won(3_000)
    );
}

// Invariant: the schema refuses a cap on a FIXED coupon and a cap outside 1..=100,000,000.
#[tokio::test]
async fn the_schema_guards_the_cap() {
    let f = fixture(2).await;
    let fixed = create(&f, Spec::default()).await;
    let percent = create(
        &f,
        Spec {
            discount: Discount::new(DiscountType::Percent, 10).unwrap(),
            ..Spec::default()
        },
    )
    .await;
    let mut conn = f.pool.get().await.unwrap();
    for (coupon, cap) in [(fixed, 100_i64), (percent, 0), (percent, 100_000_001)] {
        let r = diesel::update(coupons::table.find(coupon.get()))
            .set(coupons::max_discount.eq(Some(cap)))
            .execute(&mut conn)
            .await;
        assert!(r.is_err(), "max_discount {cap} on {coupon} must be refused");
    }
    diesel::update(coupons::table.find(percent.get()))
        .set(coupons::max_discount.eq(Some(100_000_000_i64)))
        .execute(&mut conn)
        .await
        .unwrap();
}

// Invariant: deactivation is idempotent (the first time is kept), answers None for an
// unknown coupon, and stops issuing and use while a use already made stays.
#[tokio::test]
async fn a_deactivated_coupon_is_neither_issued_nor_used_and_past_uses_stay() {
    let f = fixture(2).await;
    let coupon = create(
        &f,
        Spec {
            issue_to: vec![1, 2],
            ..Spec::default()
        },
    )
    .await;
    let s = &f.store;
    s.apply_to_order(uid(1), coupon, oid(10), won(5_000), t0())
        .await
        .unwrap();
    let off = s.deactivate(coupon, t0()).await.unwrap().unwrap();
    assert!(!off.active);
    let again = s
        .deactivate(coupon, t0() + Duration::hours(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, off, "deactivating again changes nothing");
    let mut conn = f.pool.get().await.unwrap();
    let at: Option<Timestamp> = coupons::table
        .find(coupon.get())
        .select(coupons::deactivated_at)
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(at, Some(t0()), "the first deactivation's time is kept");
    assert!(s
        .deactivate(CouponId::try_from(999).unwrap(), t0())
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        s.issue(coupon, uid(3), t0()).await,
        Err(IssueCouponError::Deactivated)
    ));
    assert!(matches!(
        s.apply_to_order(uid(2), coupon, oid(11), won(5_000), t0())
            .await,
        Err(ApplyCouponError::Refused(UseCouponError::NotUsable(
            Unusable::Inactive
        )))
    ));
    assert_eq!(
        used_row(&f, coupon, 2).await,
        ("AVAILABLE".into(), None, None)
    );
    // the order that used it before keeps it (a retry of that order is accepted)
    assert_eq!(used_row(&f, coupon, 1).await.1, Some(10));
    assert_eq!(
        s.apply_to_order(uid(1), coupon, oid(10), won(5_000), t0())
            .await
            .unwrap(),
        won(1_000)
    );
    assert_eq!(counts(&f, coupon).await, (2, 2));
}

// Invariant: once a deactivation has committed, no issue succeeds, even one racing it:
// every issue either committed before the deactivation or is refused (never a unit
// claimed after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issuing_racing_a_deactivation_never_issues_after_it() {
    let f = fixture(16).await;
    let coupon = create(&f, Spec::default()).await;
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let issues: Vec<_> = (1..=200)
        .map(|u| {
            let (store, done) = (f.store.clone(), done.clone());
            tokio::spawn(async move {
                let r = store.issue(coupon, uid(u), t0()).await;
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                r
            })
        })
        .collect();
    // let some issues through first, so the deactivation lands among the others
    while std::sync::atomic::AtomicUsize::load(&done, std::sync::atomic::Ordering::SeqCst) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let deactivated = f.store.deactivate(coupon, t0()).await.unwrap().unwrap();
    let mut issued = 0_u64;
    for r in join_all(issues).await {
        match r.unwrap() {
            Ok(_) => issued += 1,
            Err(IssueCouponError::Deactivated) => {}
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    // the deactivation saw every issue that committed before it, and none came after
    assert_eq!(deactivated.issued_quantity, issued);
    assert_eq!(counts(&f, coupon).await, (issued as i64, issued as i64));
    assert!(matches!(
        f.store.issue(coupon, uid(999), t0()).await,
        Err(IssueCouponError::Deactivated)
    ));
}

async fn read_at(f: &Fixture, id: NotificationId) -> Option<Timestamp> {
    let mut conn = f.pool.get().await.unwrap();
    notifications::table
        .find(id.get())
        .select(notifications::read_at)
        .first(&mut conn)
        .await
        .unwrap()
}

// Invariant: a user marks only their own notification read; marking again keeps the
// first read time; another user's (or an unknown) notification is not found and does
// not change.
#[tokio::test]
async fn marking_a_notification_read_is_idempotent_and_scoped_to_its_owner() {
    let f = fixture(2).await;
    create(
        &f,
        Spec {
            issue_to: vec![5, 6],
            ..Spec::default()
        },
    )
    .await;
    let inbox = PgNotificationInbox::new(f.pool.clone());
    let mine = inbox
        .list(uid(5), PageRequest::default())
        .await
        .unwrap()
        .items[0]
        .clone();
    let theirs = inbox
        .list(uid(6), PageRequest::default())
        .await
        .unwrap()
        .items[0]
        .clone();
    assert!(!mine.read);
    assert!(inbox
        .mark_read(uid(5), theirs.id, t0())
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        read_at(&f, theirs.id).await,
        None,
        "another user's is untouched"
    );
    let read = inbox
        .mark_read(uid(5), mine.id, t0())
        .await
        .unwrap()
        .unwrap();
    assert!(read.read);
    assert_eq!(
        read,
        ::coupon::Notification {
            read: true,
            ..mine.clone()
        }
    );
    let again = inbox
        .mark_read(uid(5), mine.id, t0() + Duration::hours(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, read);
    assert_eq!(
        read_at(&f, mine.id).await,
        Some(t0()),
        "the first read time is kept"
    );
    assert!(
        inbox
            .list(uid(5), PageRequest::default())
            .await
            .unwrap()
            .items[0]
            .read
    );
    assert!(inbox
        .mark_read(uid(5), NotificationId::try_from(9_999).unwrap(), t0())
        .await
        .unwrap()
        .is_none());
}
