//! `NotificationInbox`: a user reads and marks only their own notifications.

use crate::fixtures::coupon_for;
use crate::Stores;
use chrono::Duration;
use kernel::testing::{t0, uid};
use kernel::{NotificationId, PageRequest};

/// Invariant: a user marks only their own notification read; marking again keeps it
/// read and changes nothing; another user's (or an unknown) notification is not found
/// and does not change.
pub async fn marking_read_is_idempotent_and_scoped_to_its_owner(s: Stores) {
    coupon_for(&s, &[5, 6]).await;
    let mine = s
        .inbox
        .list(uid(5), PageRequest::default())
        .await
        .unwrap()
        .items[0]
        .clone();
    let theirs = s
        .inbox
        .list(uid(6), PageRequest::default())
        .await
        .unwrap()
        .items[0]
        .clone();
    assert!(!mine.read);
    assert!(s
        .inbox
        .mark_read(uid(5), theirs.id, t0())
        .await
        .unwrap()
        .is_none());
    assert!(
        !s.inbox
            .list(uid(6), PageRequest::default())
            .await
            .unwrap()
            .items[0]
            .read,
        "another user's is untouched"
    );
    let read = s
        .inbox
        .mark_read(uid(5), mine.id, t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read,
        ::coupon::Notification {
            read: true,
            ..mine.clone()
        }
    );
    let again = s
        .inbox
        .mark_read(uid(5), mine.id, t0() + Duration::hours(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, read);
    assert!(
        s.inbox
            .list(uid(5), PageRequest::default())
            .await
            .unwrap()
            .items[0]
            .read
    );
    assert!(s
        .inbox
        .mark_read(uid(5), NotificationId::try_from(999_999).unwrap(), t0())
        .await
        .unwrap()
        .is_none());
}

/// Invariant: a user's notifications come newest first, page by page, and only theirs.
pub async fn notifications_page_newest_first(s: Stores) {
    let mut coupons = Vec::new();
    for _ in 0..3 {
        coupons.push(coupon_for(&s, &[8, 9]).await);
    }
    let first = s
        .inbox
        .list(uid(8), PageRequest::new(2, None).unwrap())
        .await
        .unwrap();
    assert_eq!(
        first
            .items
            .iter()
            .map(|n| n.coupon_id.unwrap())
            .collect::<Vec<_>>(),
        [coupons[2], coupons[1]]
    );
    assert!(first.items.iter().all(|n| n.user_id == uid(8)));
    let rest = s
        .inbox
        .list(uid(8), PageRequest::new(2, first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(
        rest.items
            .iter()
            .map(|n| n.coupon_id.unwrap())
            .collect::<Vec<_>>(),
        [coupons[0]]
    );
    assert_eq!(rest.next, None);
}
