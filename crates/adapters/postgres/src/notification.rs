//! The users' notification inbox. A notification is written in the transaction of the
//! change it reports (`notify_in_tx`); the inbox row IS the notification, so nothing
//! outside the database is called while that transaction is open. A future sender
//! (push, e-mail) would relay committed rows, like the outbox relay.

use crate::coupon::coalesce;
use crate::paging::newest_first;
use crate::pool::{conn, PgPool};
use crate::schema::coupon::notifications;
use crate::tx::valid;
use ::coupon::{Notification, NotificationInbox, NotificationKind};
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use kernel::{CouponId, NotificationId, Page, PageRequest, Timestamp, UserId};

#[derive(Clone)]
pub struct PgNotificationInbox {
    pool: PgPool,
}

impl PgNotificationInbox {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = notifications, check_for_backend(diesel::pg::Pg))]
struct NotificationRow {
    id: i64,
    user_id: i64,
    kind: String,
    message: String,
    coupon_id: Option<i64>,
    created_at: Timestamp,
    read_at: Option<Timestamp>,
}

impl TryFrom<NotificationRow> for Notification {
    type Error = anyhow::Error;
    fn try_from(r: NotificationRow) -> anyhow::Result<Self> {
        Ok(Notification {
            id: valid(NotificationId::try_from(r.id), "notification id")?,
            user_id: valid(UserId::try_from(r.user_id), "user id")?,
            kind: NotificationKind::parse(&r.kind)
                .ok_or_else(|| anyhow!("unknown notification kind {}", r.kind))?,
            message: r.message,
            coupon_id: r
                .coupon_id
                .map(|c| valid(CouponId::try_from(c), "coupon id"))
                .transpose()?,
            created_at: r.created_at,
            read: r.read_at.is_some(),
        })
    }
}

/// Puts one notification into each user's inbox, inside the CALLER's transaction.
pub(crate) async fn notify_in_tx(
    conn: &mut AsyncPgConnection,
    users: &[UserId],
    kind: NotificationKind,
    message: &str,
    coupon: Option<CouponId>,
    now: Timestamp,
) -> QueryResult<usize> {
    if users.is_empty() {
        return Ok(0);
    }
    let rows: Vec<_> = users
        .iter()
        .map(|u| {
            (
                notifications::user_id.eq(u.get()),
                notifications::kind.eq(kind.as_str()),
                notifications::message.eq(message),
                notifications::coupon_id.eq(coupon.map(CouponId::get)),
                notifications::created_at.eq(now),
            )
        })
        .collect();
    diesel::insert_into(notifications::table)
        .values(&rows)
        .execute(conn)
        .await
}

#[async_trait]
impl NotificationInbox for PgNotificationInbox {
    async fn list(&self, user: UserId, page: PageRequest) -> anyhow::Result<Page<Notification>> {
        let mut conn = conn(&self.pool).await?;
        let query = newest_first(
            notifications::table
                .filter(notifications::user_id.eq(user.get()))
                .select(NotificationRow::as_select())
                .into_boxed(),
            notifications::id,
            page,
        );
        let rows: Vec<NotificationRow> = query
            .load(&mut conn)
            .await
            .context("reading notifications")?;
        let items = rows
            .into_iter()
            .map(Notification::try_from)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page.page(items, |n| n.id.get()))
    }

    async fn mark_read(
        &self,
        user: UserId,
        id: NotificationId,
        now: Timestamp,
    ) -> anyhow::Result<Option<Notification>> {
        let mut conn = conn(&self.pool).await?;
        // One statement, scoped to the owner: another user's notification matches no row.
        // The first read time is kept, so marking it again changes nothing.
        let row: Option<NotificationRow> = diesel::update(
            notifications::table
                .filter(notifications::id.eq(id.get()))
                .filter(notifications::user_id.eq(user.get())),
        )
        .set(notifications::read_at.eq(coalesce(notifications::read_at, now)))
        .returning(NotificationRow::as_returning())
        .get_result(&mut conn)
        .await
        .optional()
        .context("marking a notification read")?;
        row.map(Notification::try_from).transpose()
    }
}
