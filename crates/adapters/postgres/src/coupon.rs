//! Coupons and the users who own them. See `coupon::ports::CouponStore` for the
//! guarantees; the SQL that keeps them is here.
//!
//! - First-come-first-served issuing is ONE statement (`IssueCoupon`): it takes a unit
//!   from one of the coupon's slots (one nobody holds, so a drop does not queue on one
//!   counter row; ADR 0009; a second statement only when every slot with room is held)
//!   with a conditional UPDATE and records
//!   the owner in the same statement. If the owner row conflicts, the unique violation
//!   aborts the whole statement, so a duplicate never keeps a unit. `issued_quantity`
//!   is the sum of the slots (the `coupons` view).
//! - Using a coupon on an order and restoring it are effects of the order's plan,
//!   written by `order.rs` in the order's transaction.

use crate::notification::notify_in_tx;
use crate::paging::newest_first;
use crate::pool::{conn, PgPool};
use crate::schema::coupon::{coupon_slots, coupons, user_coupons};
use crate::sql::{sql, Bind, Statement};
use crate::tx::valid;
use ::coupon::{
    coupon_issued_message, issue_refusal, Coupon, CouponName, CouponStore, Discount, DiscountType,
    IssueCouponError, NewCoupon, NotificationKind, StoredStatus, UserCoupon, UserCouponStatus,
    ValidityWindow,
};
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use diesel::dsl::exists;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Nullable, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kernel::{CouponId, Money, OrderId, Page, PageRequest, Quantity, Timestamp, UserId};

diesel::define_sql_function! {
    /// SQL `COALESCE` of a nullable timestamp and a fallback.
    #[sql_name = "COALESCE"]
    fn coalesce(x: Nullable<Timestamptz>, y: Timestamptz) -> Nullable<Timestamptz>;
}

/// The unique constraint "a user owns a coupon at most once".
const OWNER_KEY: &str = "user_coupons_coupon_id_user_id_key";

#[derive(Clone)]
pub struct PgCouponStore {
    pool: PgPool,
}

impl PgCouponStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = coupons, check_for_backend(diesel::pg::Pg))]
pub(crate) struct CouponRow {
    pub id: i64,
    pub name: String,
    pub discount_type: String,
    pub discount_value: i64,
    pub min_order_amount: i64,
    pub total_quantity: Option<i64>,
    pub issued_quantity: i64,
    pub valid_from: Timestamp,
    pub valid_until: Timestamp,
    pub max_discount: Option<i64>,
    pub deactivated_at: Option<Timestamp>,
}

impl TryFrom<CouponRow> for Coupon {
    type Error = anyhow::Error;
    fn try_from(r: CouponRow) -> anyhow::Result<Coupon> {
        let kind = DiscountType::parse(&r.discount_type)
            .ok_or_else(|| anyhow!("unknown discount type {}", r.discount_type))?;
        Ok(Coupon {
            id: valid(CouponId::try_from(r.id), "coupon id")?,
            name: valid(CouponName::try_from(r.name), "coupon name")?,
            discount: valid(
                Discount::with_cap(kind, r.discount_value, r.max_discount),
                "discount",
            )?,
            min_order_amount: valid(Money::try_from(r.min_order_amount), "min order amount")?,
            total_quantity: r
                .total_quantity
                .map(|t| valid(Quantity::try_from(t), "total quantity"))
                .transpose()?,
            issued_quantity: valid(u64::try_from(r.issued_quantity), "issued quantity")?,
            window: valid(
                ValidityWindow::new(r.valid_from, r.valid_until),
                "validity window",
            )?,
            active: r.deactivated_at.is_none(),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = user_coupons, check_for_backend(diesel::pg::Pg))]
pub(crate) struct UserCouponRow {
    pub id: i64,
    pub user_id: i64,
    pub status: String,
    pub issued_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub order_id: Option<i64>,
}

pub(crate) fn user_coupon(
    row: UserCouponRow,
    coupon: CouponRow,
    now: Timestamp,
) -> anyhow::Result<UserCoupon> {
    let coupon = Coupon::try_from(coupon)?;
    let stored = StoredStatus::parse(&row.status)
        .ok_or_else(|| anyhow!("unknown user coupon status {}", row.status))?;
    Ok(UserCoupon {
        id: row.id,
        status: UserCouponStatus::derive(stored, &coupon.window, now),
        coupon,
        user_id: valid(UserId::try_from(row.user_id), "user id")?,
        stored,
        issued_at: row.issued_at,
        used_at: row.used_at,
        order_id: row
            .order_id
            .map(|o| valid(OrderId::try_from(o), "order id"))
            .transpose()?,
    })
}

/// Inside a transaction, a row the schema should have kept valid is a database error.
fn corrupt(e: anyhow::Error) -> DieselError {
    DieselError::DeserializationError(e.into())
}

/// The issuing statement around the function that picks the slot (`issue_head!()`,
/// the function's name, `issue_tail!()`): see [`IssueCoupon`].
macro_rules! issue_head {
    () => {
        "WITH c AS MATERIALIZED (
    SELECT * FROM coupons
     WHERE id = $coupon AND valid_from <= $now AND $now < valid_until
       AND NOT EXISTS (SELECT 1 FROM user_coupons WHERE coupon_id = $coupon AND user_id = $user)
), s AS MATERIALIZED (
    SELECT "
    };
}
macro_rules! issue_tail {
    () => {
        "($coupon) AS slot FROM c
), claimed AS (
    UPDATE coupon_slots
       SET issued = issued + 1, remaining = remaining - 1
     WHERE coupon_id = $coupon AND slot = (SELECT slot FROM s)
       AND open AND (remaining IS NULL OR remaining > 0)
 RETURNING 1
), owned AS (
    INSERT INTO user_coupons (coupon_id, user_id, status, issued_at)
    SELECT $coupon, $user, 'AVAILABLE', $now FROM claimed
 RETURNING id AS user_coupon_id, issued_at
)
SELECT c.id, c.name, c.discount_type, c.discount_value, c.min_order_amount, c.total_quantity,
       c.issued_quantity + 1 AS issued_quantity, c.valid_from, c.valid_until, c.max_discount,
       c.deactivated_at, owned.user_coupon_id, owned.issued_at
  FROM c, owned"
    };
}

sql!(
    /// Takes one unit and records the owner, in one statement (one round trip). No row:
    /// nothing taken, nothing written. The coupon must exist, be in its window, not be
    /// owned by the user; the slot held must still be open (not deactivated) with room.
    /// When two requests of one user race past the ownership check, the second INSERT
    /// hits `UNIQUE (coupon_id, user_id)` and the error undoes the whole statement, its
    /// UPDATE included. `issued_quantity` answered is the count as of this issue.
    ///
    /// The slot comes from `try_coupon_slot`, which never waits (migration 000070): when
    /// slots have room but every one is held, the statement fails with
    /// `serialization_failure`, undone as a whole, and [`IssueCouponWaiting`] runs.
    IssueCoupon,
    concat!(issue_head!(), "try_coupon_slot", issue_tail!())
);

sql!(
    /// [`IssueCoupon`] with `take_coupon_slot`, which waits for a slot when every one with
    /// room is held (ADR 0009).
    IssueCouponWaiting,
    concat!(issue_head!(), "take_coupon_slot", issue_tail!())
);

/// Runs the issuing statement `S`.
async fn issue_with<S: crate::sql::Sql>(
    conn: &mut AsyncPgConnection,
    coupon: CouponId,
    user: UserId,
    now: Timestamp,
) -> Result<Option<IssuedRow>, DieselError> {
    Statement::<S>::new()
        .bind("coupon", Bind::I64(coupon.get()))
        .bind("user", Bind::I64(user.get()))
        .bind("now", Bind::Ts(now))
        .get_result(conn)
        .await
        .optional()
}

/// The slots of a new coupon ([`coupon::initial_issue_slots`]).
async fn write_slots(
    conn: &mut AsyncPgConnection,
    coupon: i64,
    total: Option<Quantity>,
    issued: u64,
) -> QueryResult<()> {
    let slots = ::coupon::initial_issue_slots(total, issued);
    let rows: Vec<_> = slots
        .iter()
        .map(|s| {
            (
                coupon_slots::coupon_id.eq(coupon),
                coupon_slots::slot.eq(s.index),
                coupon_slots::issued.eq(s.issued as i64),
                coupon_slots::remaining.eq(s.remaining.map(|r| r as i64)),
            )
        })
        .collect();
    diesel::insert_into(coupon_slots::table)
        .values(&rows)
        .execute(conn)
        .await?;
    Ok(())
}

/// A coupon as it is now in this transaction (its issued count is the slots' sum).
async fn reread(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<CouponRow> {
    coupons::table
        .find(id)
        .select(CouponRow::as_select())
        .first(conn)
        .await
}

#[derive(QueryableByName)]
struct IssuedRow {
    #[diesel(embed)]
    coupon: CouponRow,
    #[diesel(sql_type = BigInt)]
    user_coupon_id: i64,
    #[diesel(sql_type = Timestamptz)]
    issued_at: Timestamp,
}

fn is_owner_conflict(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some(OWNER_KEY)
    )
}

#[async_trait]
impl CouponStore for PgCouponStore {
    async fn create(&self, new: NewCoupon, now: Timestamp) -> anyhow::Result<Coupon> {
        let mut conn = conn(&self.pool).await?;
        let row = conn
            .transaction::<_, DieselError, _>(async move |conn| {
                let created: CouponRow = diesel::insert_into(coupons::table)
                    .values((
                        coupons::name.eq(new.name.as_str()),
                        coupons::discount_type.eq(new.discount.kind().as_str()),
                        coupons::discount_value.eq(new.discount.value()),
                        coupons::max_discount.eq(new.discount.cap().map(Money::won)),
                        coupons::min_order_amount.eq(new.min_order_amount.won()),
                        coupons::total_quantity.eq(new.total_quantity.map(i64::from)),
                        coupons::valid_from.eq(new.window.from()),
                        coupons::valid_until.eq(new.window.until()),
                        coupons::created_at.eq(now),
                    ))
                    .returning(CouponRow::as_returning())
                    .get_result(conn)
                    .await?;
                if new.issue_to().is_empty() {
                    write_slots(conn, created.id, new.total_quantity, 0).await?;
                    return reread(conn, created.id).await;
                }
                // Recipients are distinct and ascending (NewCoupon), so rows are written
                // in one order; users who already own it are skipped.
                let owners: Vec<_> = new
                    .issue_to()
                    .iter()
                    .map(|u| {
                        (
                            user_coupons::coupon_id.eq(created.id),
                            user_coupons::user_id.eq(u.get()),
                            user_coupons::status.eq(StoredStatus::Available.as_str()),
                            user_coupons::issued_at.eq(now),
                        )
                    })
                    .collect();
                let issued: Vec<i64> = diesel::insert_into(user_coupons::table)
                    .values(&owners)
                    .on_conflict((user_coupons::coupon_id, user_coupons::user_id))
                    .do_nothing()
                    .returning(user_coupons::user_id)
                    .get_results(conn)
                    .await?;
                // NewCoupon checked that the recipients fit in total_quantity
                write_slots(conn, created.id, new.total_quantity, issued.len() as u64).await?;
                let updated = reread(conn, created.id).await?;
                let coupon = Coupon::try_from(updated.clone()).map_err(corrupt)?;
                let recipients = issued
                    .into_iter()
                    .map(|u| UserId::try_from(u).map_err(|e| corrupt(anyhow!("{e}"))))
                    .collect::<QueryResult<Vec<_>>>()?;
                notify_in_tx(
                    conn,
                    &recipients,
                    NotificationKind::CouponIssued,
                    &coupon_issued_message(&coupon),
                    Some(coupon.id),
                    now,
                )
                .await?;
                Ok(updated)
            })
            .await
            .context("creating a coupon")?;
        Coupon::try_from(row)
    }

    async fn get(&self, id: CouponId) -> anyhow::Result<Option<Coupon>> {
        let mut conn = conn(&self.pool).await?;
        let row: Option<CouponRow> = coupons::table
            .find(id.get())
            .select(CouponRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .context("reading a coupon")?;
        row.map(Coupon::try_from).transpose()
    }

    async fn deactivate(&self, id: CouponId, now: Timestamp) -> anyhow::Result<Option<Coupon>> {
        let mut conn = conn(&self.pool).await?;
        // Closing every slot waits for the issues holding one; an issue that gets a slot
        // afterwards re-checks `open` on it and takes nothing. The slots are locked in
        // slot order first, as issues that combine them lock them, so the two cannot
        // deadlock. The first deactivation's time is kept.
        let row: Option<CouponRow> = conn
            .transaction::<_, DieselError, _>(async move |conn| {
                coupon_slots::table
                    .filter(coupon_slots::coupon_id.eq(id.get()))
                    .order(coupon_slots::slot.asc())
                    .select(coupon_slots::slot)
                    .for_no_key_update()
                    .load::<i16>(conn)
                    .await?;
                diesel::update(coupon_slots::table.filter(coupon_slots::coupon_id.eq(id.get())))
                    .set(coupon_slots::open.eq(false))
                    .execute(conn)
                    .await?;
                diesel::update(coupons::table.find(id.get()))
                    .set(coupons::deactivated_at.eq(coalesce(coupons::deactivated_at, now)))
                    .returning(CouponRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()
            })
            .await
            .context("deactivating a coupon")?;
        row.map(Coupon::try_from).transpose()
    }

    async fn issue(
        &self,
        coupon: CouponId,
        user: UserId,
        now: Timestamp,
    ) -> Result<UserCoupon, IssueCouponError> {
        let mut conn = conn(&self.pool).await?;
        // the fast statement first; it refuses to wait, the waiting one then runs
        let issued = match issue_with::<IssueCoupon>(&mut conn, coupon, user, now).await {
            Err(DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => {
                issue_with::<IssueCouponWaiting>(&mut conn, coupon, user, now).await
            }
            first => first,
        };
        match issued {
            Ok(Some(row)) => {
                let coupon = Coupon::try_from(row.coupon)?;
                Ok(UserCoupon {
                    id: row.user_coupon_id,
                    status: UserCouponStatus::derive(StoredStatus::Available, &coupon.window, now),
                    coupon,
                    user_id: user,
                    stored: StoredStatus::Available,
                    issued_at: row.issued_at,
                    used_at: None,
                    order_id: None,
                })
            }
            Err(e) if is_owner_conflict(&e) => Err(IssueCouponError::AlreadyIssued),
            Err(e) => Err(anyhow!(e).context("issuing a coupon").into()),
            // Nothing claimed: find out why (a second, cheap query).
            Ok(None) => {
                let found: Option<(CouponRow, bool)> = coupons::table
                    .find(coupon.get())
                    .select((
                        CouponRow::as_select(),
                        exists(
                            user_coupons::table
                                .filter(user_coupons::coupon_id.eq(coupon.get()))
                                .filter(user_coupons::user_id.eq(user.get())),
                        ),
                    ))
                    .first(&mut conn)
                    .await
                    .optional()
                    .context("reading why a coupon was not issued")?;
                let Some((row, owned)) = found else {
                    return Err(IssueCouponError::NotFound);
                };
                let definition = Coupon::try_from(row)?;
                Err(issue_refusal(&definition, owned, now).map_or_else(
                    || {
                        IssueCouponError::Unexpected(anyhow!(
                            "coupon {coupon} was not issued to user {user}, and no reason holds"
                        ))
                    },
                    IssueCouponError::from,
                ))
            }
        }
    }

    async fn user_coupons(
        &self,
        user: UserId,
        now: Timestamp,
        page: PageRequest,
    ) -> anyhow::Result<Page<UserCoupon>> {
        let mut conn = conn(&self.pool).await?;
        let query = newest_first(
            user_coupons::table
                .inner_join(coupons::table)
                .filter(user_coupons::user_id.eq(user.get()))
                .select((UserCouponRow::as_select(), CouponRow::as_select()))
                .into_boxed(),
            user_coupons::id,
            page,
        );
        let rows: Vec<(UserCouponRow, CouponRow)> = query
            .load(&mut conn)
            .await
            .context("reading a user's coupons")?;
        let items = rows
            .into_iter()
            .map(|(owned, coupon)| user_coupon(owned, coupon, now))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page.page(items, |c| c.id))
    }
}
