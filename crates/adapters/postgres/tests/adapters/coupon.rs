//! `PgCouponStore`: an issue takes a slot nobody holds without waiting (one statement),
//! and waits for one, in a second statement, only when every slot with room is held.

use crate::ports::stores;
use crate::schema::pool;
use conformance::fixtures::{coupon, now, CouponSpec};
use coupon::IssueCouponError;
use diesel_async::RunQueryDsl;
use kernel::testing::uid;
use std::time::Duration;

// Invariant: busy slots never refuse an issue: while another transaction holds every
// slot of the coupon, the issue waits (the fast statement gives way to the waiting one)
// and takes its unit once they are released; a coupon with no unit left is sold out,
// not an error.
#[tokio::test]
async fn an_issue_waits_for_a_slot_when_every_one_with_room_is_held() {
    let s = stores().await;
    let c = coupon(
        &s,
        CouponSpec {
            total: Some(16),
            ..CouponSpec::default()
        },
    )
    .await;
    let pool = pool(&s);
    let mut holder = pool.get().await.expect("a connection");
    for sql in [
        "BEGIN".to_string(),
        format!("SELECT 1 FROM coupon_slots WHERE coupon_id = {c} FOR UPDATE"),
    ] {
        diesel::sql_query(sql).execute(&mut holder).await.unwrap();
    }
    let coupons = s.coupons.clone();
    let issue = tokio::spawn(async move { coupons.issue(c, uid(1), now()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !issue.is_finished(),
        "the issue should wait for a held slot, not answer: {:?}",
        issue.await
    );
    diesel::sql_query("COMMIT")
        .execute(&mut holder)
        .await
        .unwrap();
    let issued = issue
        .await
        .unwrap()
        .expect("issued once the slots are free");
    assert_eq!(issued.user_id, uid(1));
    assert_eq!(issued.coupon.issued_quantity, 1);

    let one = coupon(
        &s,
        CouponSpec {
            total: Some(1),
            ..CouponSpec::default()
        },
    )
    .await;
    s.coupons.issue(one, uid(1), now()).await.unwrap();
    assert!(matches!(
        s.coupons.issue(one, uid(2), now()).await,
        Err(IssueCouponError::SoldOut)
    ));
}
