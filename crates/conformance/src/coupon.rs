//! `CouponStore`: first come, first served never passes `total_quantity` nor gives a
//! user two units; creation issues with notifications in one step; deactivation stops
//! issuing and use.

use crate::fixtures::{coupon, coupon_for, now, orders, place_with, product, CouponSpec};
use crate::Stores;
use ::coupon::{
    Discount, DiscountType, IssueCouponError, NotificationKind, StoredStatus, Unusable,
    UserCouponStatus,
};
use ::order::PlaceOrderError;
use chrono::Duration;
use futures::future::join_all;
use kernel::testing::{cid, t0, uid};
use kernel::PageRequest;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn spec_at_t0(total: Option<i64>, issue_to: Vec<i64>) -> CouponSpec {
    CouponSpec {
        discount: Discount::new(DiscountType::Fixed, 1_000).unwrap(),
        total,
        from: t0() - Duration::days(1),
        until: t0() + Duration::days(1),
        issue_to,
        ..CouponSpec::default()
    }
}

/// Invariant: creation writes the coupon, each distinct recipient's copy and one
/// notification each together, counts them in `issued_quantity`, and leaves the rest
/// to first come, first served.
pub async fn creation_issues_to_each_recipient_once_with_one_notification(s: Stores) {
    let id = coupon(
        &s,
        CouponSpec {
            discount: Discount::new(DiscountType::Percent, 15).unwrap(),
            ..spec_at_t0(Some(3), vec![5, 6, 5])
        },
    )
    .await;
    assert_eq!(s.coupons.get(id).await.unwrap().unwrap().issued_quantity, 2);
    for u in [5, 6] {
        let page = s
            .coupons
            .user_coupons(uid(u), t0(), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].coupon.id, id);
        let notes = s.inbox.list(uid(u), PageRequest::default()).await.unwrap();
        assert_eq!(notes.items.len(), 1);
        let n = &notes.items[0];
        assert_eq!(
            (n.kind, n.coupon_id, n.read),
            (NotificationKind::CouponIssued, Some(id), false)
        );
        assert!(n.message.contains("15% off"), "{}", n.message);
    }
    assert!(s
        .inbox
        .list(uid(7), PageRequest::default())
        .await
        .unwrap()
        .items
        .is_empty());
    s.coupons.issue(id, uid(7), t0()).await.unwrap();
    assert!(matches!(
        s.coupons.issue(id, uid(8), t0()).await,
        Err(IssueCouponError::SoldOut)
    ));
    assert!(matches!(
        s.coupons.issue(id, uid(5), t0()).await,
        Err(IssueCouponError::AlreadyIssued)
    ));
}

/// Invariant: each refusal names its reason (unknown, outside the half-open window,
/// already owned, sold out) and consumes no unit.
pub async fn refusals_name_their_reason_and_consume_no_unit(s: Stores) {
    let id = coupon(&s, spec_at_t0(Some(1), vec![])).await;
    assert!(matches!(
        s.coupons.issue(cid(999_999), uid(1), t0()).await,
        Err(IssueCouponError::NotFound)
    ));
    let before = t0() - Duration::days(1) - Duration::microseconds(1);
    assert!(matches!(
        s.coupons.issue(id, uid(1), before).await,
        Err(IssueCouponError::NotActive)
    ));
    assert!(matches!(
        s.coupons.issue(id, uid(1), t0() + Duration::days(1)).await,
        Err(IssueCouponError::NotActive)
    ));
    let first = s
        .coupons
        .issue(id, uid(1), t0() - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(first.coupon.issued_quantity, 1);
    assert_eq!(first.issued_at, t0() - Duration::days(1));
    assert!(matches!(
        s.coupons.issue(id, uid(1), t0()).await,
        Err(IssueCouponError::AlreadyIssued)
    ));
    assert!(matches!(
        s.coupons.issue(id, uid(2), t0()).await,
        Err(IssueCouponError::SoldOut)
    ));
    assert_eq!(s.coupons.get(id).await.unwrap().unwrap().issued_quantity, 1);
}

/// Invariant: at most `total_quantity` units are ever issued: of 64 users racing for
/// 10 units, exactly 10 get one.
pub async fn concurrent_issues_never_pass_total_quantity(s: Stores) {
    let id = coupon(&s, spec_at_t0(Some(10), vec![])).await;
    let results = join_all((1..=64).map(|u| {
        let store = s.coupons.clone();
        tokio::spawn(async move { store.issue(id, uid(u), t0()).await })
    }))
    .await;
    let (mut issued, mut sold_out) = (0, 0);
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
    assert_eq!(
        s.coupons.get(id).await.unwrap().unwrap().issued_quantity,
        10
    );
}

/// Invariant: one user owns a coupon at most once, whatever the concurrency, and a
/// refused duplicate consumes no unit.
pub async fn the_same_user_racing_gets_one_unit(s: Stores) {
    let id = coupon(&s, spec_at_t0(Some(2), vec![])).await;
    let results = join_all((0..20).map(|_| {
        let store = s.coupons.clone();
        tokio::spawn(async move { store.issue(id, uid(7), t0()).await })
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
    let other = s.coupons.issue(id, uid(8), t0()).await.unwrap();
    assert_eq!(
        other.coupon.issued_quantity, 2,
        "the duplicates took no unit"
    );
    assert!(matches!(
        s.coupons.issue(id, uid(9), t0()).await,
        Err(IssueCouponError::SoldOut)
    ));
}

/// Invariant: deactivation is idempotent and answers `None` for an unknown coupon; once
/// it is done, the coupon is neither issued (`Deactivated`) nor used on an order
/// (`Inactive`), while an order that used it before keeps it. An issue racing the
/// deactivation either came before it (and is counted in what it returns) or is refused.
pub async fn a_deactivated_coupon_is_neither_issued_nor_used_and_past_uses_stay(s: Stores) {
    let p = product(&s, 10_000, 10).await;
    let id = coupon_for(&s, &[1, 2]).await;
    let svc = orders(&s);
    let used = svc
        .place(place_with(1, &[(p, 1)], id, false), None)
        .await
        .unwrap();
    assert_eq!(used.discount.won(), 1_000);
    let racing = Arc::new(AtomicUsize::new(0));
    let issues: Vec<_> = (100..=199)
        .map(|u| {
            let (store, racing) = (s.coupons.clone(), racing.clone());
            tokio::spawn(async move {
                let r = store.issue(id, uid(u), now()).await;
                racing.fetch_add(1, Ordering::SeqCst);
                r
            })
        })
        .collect();
    while racing.load(Ordering::SeqCst) < 10 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let off = s.coupons.deactivate(id, now()).await.unwrap().unwrap();
    assert!(!off.active);
    let mut issued = 2_u64;
    for r in join_all(issues).await {
        match r.unwrap() {
            Ok(_) => issued += 1,
            Err(IssueCouponError::Deactivated) => {}
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    assert_eq!(
        off.issued_quantity, issued,
        "no unit was issued after the deactivation"
    );
    let again = s.coupons.deactivate(id, now()).await.unwrap().unwrap();
    assert_eq!(again, off, "deactivating again changes nothing");
    assert!(s
        .coupons
        .deactivate(cid(999_999), now())
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        s.coupons.issue(id, uid(3), now()).await,
        Err(IssueCouponError::Deactivated)
    ));
    let refused = svc.place(place_with(2, &[(p, 1)], id, false), None).await;
    assert!(
        matches!(
            refused,
            Err(PlaceOrderError::CouponNotUsable(Unusable::Inactive))
        ),
        "{refused:?}"
    );
    let kept = svc.get(used.id).await.unwrap().unwrap();
    assert_eq!((kept.coupon_id, kept.discount.won()), (Some(id), 1_000));
    let mine = s
        .coupons
        .user_coupons(uid(1), now(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(mine.items[0].order_id, Some(used.id));
}

/// Invariant: `max_discount` survives the store and caps the discount an order gets:
/// 20% of 50,000 is 10,000, capped at 3,000.
pub async fn a_capped_percent_coupon_is_stored_and_applied_with_its_cap(s: Stores) {
    let capped = Discount::with_cap(DiscountType::Percent, 20, Some(3_000)).unwrap();
    let id = coupon(
        &s,
        CouponSpec {
            discount: capped,
            issue_to: vec![1],
            ..CouponSpec::default()
        },
    )
    .await;
    let read = s.coupons.get(id).await.unwrap().unwrap();
    assert_eq!((read.discount, read.active), (capped, true));
    let p = product(&s, 50_000, 1).await;
    let order = orders(&s)
        .place(place_with(1, &[(p, 1)], id, false), None)
        .await
        .unwrap();
    assert_eq!((order.discount.won(), order.total.won()), (3_000, 47_000));
}

/// Invariant: a user's coupons come newest first, page by page, and EXPIRED is derived
/// from the window at read time (stored AVAILABLE).
pub async fn a_users_coupons_page_newest_first_and_expire_at_read_time(s: Stores) {
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(coupon(&s, spec_at_t0(None, vec![3])).await);
    }
    let first = s
        .coupons
        .user_coupons(uid(3), t0(), PageRequest::new(2, None).unwrap())
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|c| c.coupon.id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    let rest = s
        .coupons
        .user_coupons(uid(3), t0(), PageRequest::new(10, first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|c| c.coupon.id).collect::<Vec<_>>(),
        [ids[2], ids[1], ids[0]]
    );
    assert_eq!(rest.next, None);
    let later = s
        .coupons
        .user_coupons(uid(3), t0() + Duration::days(1), PageRequest::default())
        .await
        .unwrap();
    assert!(later
        .items
        .iter()
        .all(|c| c.status == UserCouponStatus::Expired && c.stored == StoredStatus::Available));
}
