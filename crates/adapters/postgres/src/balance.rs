//! Balances, their history and charges. See `balance::ports::BalanceStore` for the
//! guarantees; the SQL that keeps them is here.

use crate::pool::{conn, PgPool};
use crate::schema::{balance_charges, balance_history, balances};
use crate::tx::{valid, TxError};
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use balance::{
    check_charge_headroom, BalanceSnapshot, BalanceStore, ChargeReceipt, GatewayTransactionId,
    HistoryEntry, HistoryKind, NewCharge, OpenChargeError, PaymentMethod, PendingCharge,
};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use kernel::{ChargeId, Money, OrderId, Page, PageRequest, Timestamp, UserId};

#[derive(Clone)]
pub struct PgBalanceStore {
    pool: PgPool,
}

impl PgBalanceStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = balance_charges, check_for_backend(diesel::pg::Pg))]
struct ChargeRow {
    id: i64,
    user_id: i64,
    amount: i64,
    payment_method: String,
    status: String,
    gateway_transaction_id: Option<String>,
    balance_after: Option<i64>,
    created_at: Timestamp,
}

impl ChargeRow {
    fn pending(self) -> anyhow::Result<PendingCharge> {
        Ok(PendingCharge {
            id: valid(ChargeId::try_from(self.id), "charge id")?,
            user_id: valid(UserId::try_from(self.user_id), "user id")?,
            amount: valid(Money::try_from(self.amount), "amount")?,
            method: valid(
                PaymentMethod::try_from(self.payment_method),
                "payment method",
            )?,
            created_at: self.created_at,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = balance_history, check_for_backend(diesel::pg::Pg))]
struct HistoryRow {
    id: i64,
    user_id: i64,
    kind: String,
    amount: i64,
    balance_after: i64,
    order_id: Option<i64>,
    created_at: Timestamp,
}

impl TryFrom<HistoryRow> for HistoryEntry {
    type Error = anyhow::Error;
    fn try_from(r: HistoryRow) -> anyhow::Result<Self> {
        Ok(HistoryEntry {
            id: r.id,
            user_id: valid(UserId::try_from(r.user_id), "user id")?,
            kind: HistoryKind::parse(&r.kind)
                .ok_or_else(|| anyhow!("unknown history kind {}", r.kind))?,
            amount: r.amount,
            balance_after: valid(Money::try_from(r.balance_after), "balance")?,
            order_id: r
                .order_id
                .map(OrderId::try_from)
                .transpose()
                .map_err(|e| anyhow!("{e}"))?,
            created_at: r.created_at,
        })
    }
}

/// Locks the user's balance row (creating it at zero if missing) and returns it.
/// Every change of a balance goes through this lock, so changes of one user are serialised
/// across processes.
pub(crate) async fn lock_balance(
    conn: &mut AsyncPgConnection,
    user: UserId,
) -> QueryResult<BalanceSnapshot> {
    // An upsert that "updates" the existing row takes its row lock in one round trip.
    let (balance, pending): (i64, i64) = diesel::insert_into(balances::table)
        .values(balances::user_id.eq(user.get()))
        .on_conflict(balances::user_id)
        .do_update()
        .set(balances::user_id.eq(excluded(balances::user_id)))
        .returning((balances::balance, balances::pending_credit))
        .get_result(conn)
        .await?;
    let money = |v: i64| {
        Money::try_from(v).map_err(|e| diesel::result::Error::DeserializationError(e.into()))
    };
    Ok(BalanceSnapshot {
        balance: money(balance)?,
        pending_credit: money(pending)?,
    })
}

/// A balance change made by another use case (payment, refund) inside its own
/// transaction, on a balance row it locked with [`lock_balance`].
pub(crate) struct BalanceChange {
    pub user: UserId,
    pub kind: HistoryKind,
    /// signed: negative for a payment
    pub amount: i64,
    pub balance_after: Money,
    pub order_id: OrderId,
    pub now: Timestamp,
}

/// Writes the new balance and its history row. The caller decided `balance_after` with
/// the domain rules on the locked row. A zero change writes nothing.
pub(crate) async fn apply_change(
    conn: &mut AsyncPgConnection,
    change: BalanceChange,
) -> QueryResult<()> {
    if change.amount == 0 {
        return Ok(());
    }
    diesel::update(balances::table.find(change.user.get()))
        .set((
            balances::balance.eq(change.balance_after.won()),
            balances::updated_at.eq(change.now),
        ))
        .execute(conn)
        .await?;
    diesel::insert_into(balance_history::table)
        .values((
            balance_history::user_id.eq(change.user.get()),
            balance_history::kind.eq(change.kind.as_str()),
            balance_history::amount.eq(change.amount),
            balance_history::balance_after.eq(change.balance_after.won()),
            balance_history::order_id.eq(change.order_id.get()),
            balance_history::created_at.eq(change.now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

#[async_trait]
impl BalanceStore for PgBalanceStore {
    async fn balance(&self, user: UserId) -> anyhow::Result<Money> {
        let mut conn = conn(&self.pool).await?;
        let v: Option<i64> = balances::table
            .find(user.get())
            .select(balances::balance)
            .first(&mut conn)
            .await
            .optional()
            .context("reading a balance")?;
        valid(Money::try_from(v.unwrap_or(0)), "balance")
    }

    async fn history(&self, user: UserId, page: PageRequest) -> anyhow::Result<Page<HistoryEntry>> {
        let mut conn = conn(&self.pool).await?;
        let mut query = balance_history::table
            .filter(balance_history::user_id.eq(user.get()))
            .select(HistoryRow::as_select())
            .order(balance_history::id.desc())
            .limit(page.fetch_limit())
            .into_boxed();
        if let Some(after) = page.after() {
            query = query.filter(balance_history::id.lt(after));
        }
        let rows: Vec<HistoryRow> = query
            .load(&mut conn)
            .await
            .context("reading balance history")?;
        let entries = rows
            .into_iter()
            .map(HistoryEntry::try_from)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(page.page(entries, |e| e.id))
    }

    async fn open_charge(&self, charge: NewCharge) -> Result<PendingCharge, OpenChargeError> {
        let mut conn = conn(&self.pool).await?;
        let result = conn
            .transaction::<_, TxError<()>, _>(async move |conn| {
                let snapshot = lock_balance(conn, charge.user_id).await?;
                check_charge_headroom(&snapshot, charge.amount).map_err(|_| TxError::Rule(()))?;
                let amount = charge.amount.money().won();
                diesel::update(balances::table.find(charge.user_id.get()))
                    .set(balances::pending_credit.eq(balances::pending_credit + amount))
                    .execute(conn)
                    .await?;
                let row: ChargeRow = diesel::insert_into(balance_charges::table)
                    .values((
                        balance_charges::user_id.eq(charge.user_id.get()),
                        balance_charges::amount.eq(amount),
                        balance_charges::payment_method.eq(charge.method.as_str()),
                        balance_charges::status.eq("PENDING"),
                        balance_charges::created_at.eq(charge.now),
                    ))
                    .returning(ChargeRow::as_returning())
                    .get_result(conn)
                    .await?;
                Ok(row)
            })
            .await;
        match result {
            Ok(row) => Ok(row.pending()?),
            Err(TxError::Rule(())) => Err(OpenChargeError::LimitExceeded),
            Err(TxError::Db(e)) => Err(OpenChargeError::Unexpected(
                anyhow!(e).context("opening a charge"),
            )),
        }
    }

    async fn approve_charge(
        &self,
        id: ChargeId,
        transaction: GatewayTransactionId,
        now: Timestamp,
    ) -> anyhow::Result<ChargeReceipt> {
        let mut conn = conn(&self.pool).await?;
        let row = conn
            .transaction::<_, TxError<String>, _>(async move |conn| {
                    let row: ChargeRow = balance_charges::table
                        .find(id.get())
                        .select(ChargeRow::as_select())
                        .for_no_key_update()
                        .first(conn)
                        .await?;
                    match row.status.as_str() {
                        // settled before (a retry or recovery): credit nothing again
                        "APPROVED" => return Ok(row),
                        "DECLINED" => {
                            return Err(TxError::Rule(format!(
                                "charge {id} was declined, but the gateway now approves it as {transaction}"
                            )))
                        }
                        _ => {}
                    }
                    let balance_after: i64 = diesel::update(balances::table.find(row.user_id))
                        .set((
                            balances::balance.eq(balances::balance + row.amount),
                            balances::pending_credit.eq(balances::pending_credit - row.amount),
                            balances::updated_at.eq(now),
                        ))
                        .returning(balances::balance)
                        .get_result(conn)
                        .await?;
                    let settled: ChargeRow = diesel::update(balance_charges::table.find(row.id))
                        .set((
                            balance_charges::status.eq("APPROVED"),
                            balance_charges::gateway_transaction_id.eq(&transaction.0),
                            balance_charges::balance_after.eq(balance_after),
                            balance_charges::settled_at.eq(now),
                        ))
                        .returning(ChargeRow::as_returning())
                        .get_result(conn)
                        .await?;
                    diesel::insert_into(balance_history::table)
                        .values((
                            balance_history::user_id.eq(row.user_id),
                            balance_history::kind.eq(HistoryKind::Charge.as_str()),
                            balance_history::amount.eq(row.amount),
                            balance_history::balance_after.eq(balance_after),
                            balance_history::charge_id.eq(row.id),
                            balance_history::created_at.eq(now),
                        ))
                        .execute(conn)
                        .await?;
                    Ok(settled)
            })
            .await
            .map_err(|e| match e {
                TxError::Rule(msg) => anyhow!(msg),
                TxError::Db(e) => anyhow!(e).context("approving a charge"),
            })?;
        let receipt_tx = row
            .gateway_transaction_id
            .clone()
            .ok_or_else(|| anyhow!("approved charge without transaction"))?;
        let balance = row
            .balance_after
            .ok_or_else(|| anyhow!("approved charge without balance"))?;
        let pending = row.pending()?;
        Ok(ChargeReceipt {
            charge_id: pending.id,
            user_id: pending.user_id,
            amount: pending.amount,
            balance: valid(Money::try_from(balance), "balance")?,
            gateway_transaction_id: GatewayTransactionId(receipt_tx),
        })
    }

    async fn decline_charge(
        &self,
        id: ChargeId,
        reason: String,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let mut conn = conn(&self.pool).await?;
        conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
            let declined: Option<(i64, i64)> = diesel::update(
                balance_charges::table
                    .find(id.get())
                    .filter(balance_charges::status.eq("PENDING")),
            )
            .set((
                balance_charges::status.eq("DECLINED"),
                balance_charges::decline_reason.eq(&reason),
                balance_charges::settled_at.eq(now),
            ))
            .returning((balance_charges::user_id, balance_charges::amount))
            .get_result(conn)
            .await
            .optional()?;
            if let Some((user_id, amount)) = declined {
                diesel::update(balances::table.find(user_id))
                    .set(balances::pending_credit.eq(balances::pending_credit - amount))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await
        .context("declining a charge")
    }

    async fn stale_charges(
        &self,
        before: Timestamp,
        limit: i64,
    ) -> anyhow::Result<Vec<PendingCharge>> {
        let mut conn = conn(&self.pool).await?;
        let rows: Vec<ChargeRow> = balance_charges::table
            .filter(balance_charges::status.eq("PENDING"))
            .filter(balance_charges::created_at.lt(before))
            .order(balance_charges::created_at.asc())
            .limit(limit)
            .select(ChargeRow::as_select())
            .load(&mut conn)
            .await
            .context("listing stale charges")?;
        rows.into_iter().map(ChargeRow::pending).collect()
    }
}
