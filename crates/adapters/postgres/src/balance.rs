//! Balances, their history and charges. See `balance::ports::BalanceStore` for the
//! guarantees. Each charge step is one transaction: lock and read what the decision
//! needs (the balance row; a charge row before its balance row), call the decision,
//! write what it says in one statement, commit.

use crate::paging::newest_first;
use crate::pool::{conn, PgPool};
use crate::schema::{balance_charges, balance_history, balances};
use crate::sql::{sql, Bind, Statement};
use crate::tx::valid;
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use balance::{
    ApproveCharge, ApproveDecision, BalanceSnapshot, BalanceStore, Charge, ChargeReceipt,
    ChargeSnapshot, ChargeStatus, DeclineCharge, DeclineDecision, GatewayTransactionId,
    HistoryEntry, HistoryKind, NewCharge, OpenCharge, OpenChargeError, OpenDecision, PaymentMethod,
};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, RunQueryDsl};
use kernel::{
    ChargeId, ClaimLost, Completion, Money, OrderId, Page, PageRequest, Timestamp, UserId,
};

/// The PostgreSQL balance store.
#[derive(Clone)]
pub struct PgBalanceStore {
    pool: PgPool,
}

impl PgBalanceStore {
    /// A store over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

macro_rules! charge_columns {
    () => {
        "c.id, c.user_id, c.amount, c.payment_method, c.status, c.gateway_transaction_id,
         c.decline_reason, c.balance_after, c.created_at"
    };
}

sql!(
    /// Opening a charge: locks the user's balance row (creating it at zero: an upsert
    /// takes the row lock in one round trip, so charges of one user are serialised
    /// even before their first one) and finds the charge this request opened before.
    LockForOpen,
    concat!(
        "WITH b AS (
    INSERT INTO balances (user_id) VALUES ($user_id)
        ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id
 RETURNING balance, pending_credit
)
SELECT b.balance AS balance, b.pending_credit AS pending_credit, ",
        charge_columns!(),
        "
  FROM b LEFT JOIN balance_charges c ON c.claim_id = $claim_id"
    )
);

sql!(
    /// Records a new PENDING charge and its reserved headroom.
    OpenChargeSql,
    concat!(
        "WITH b AS (
    UPDATE balances SET pending_credit = $pending_after WHERE user_id = $user_id
), c AS (
    INSERT INTO balance_charges (user_id, amount, payment_method, status, created_at, claim_id)
    VALUES ($user_id, $amount, $method, 'PENDING', $now, $claim_id)
 RETURNING *
)
SELECT NULL::int8 AS balance, NULL::int8 AS pending_credit, ",
        charge_columns!(),
        " FROM c"
    )
);

sql!(
    /// Settling: locks the charge, then its user's balance row.
    LockForSettle,
    concat!(
        "WITH c AS MATERIALIZED (
    SELECT * FROM balance_charges WHERE id = $charge_id FOR NO KEY UPDATE
), b AS MATERIALIZED (
    SELECT balance, pending_credit FROM balances
     WHERE user_id = (SELECT user_id FROM c) FOR NO KEY UPDATE
)
SELECT b.balance AS balance, b.pending_credit AS pending_credit, ",
        charge_columns!(),
        " FROM c, b"
    )
);

sql!(
    /// Credits an approved charge: the balance (guarded by the value decided on), the
    /// APPROVED charge (guarded: still PENDING), the CHARGE history row, and the
    /// request's Idempotency-Key record (guarded: its claim still in progress).
    ApproveSql,
    "WITH b AS (
    UPDATE balances
       SET balance = $balance_after, pending_credit = $pending_after, updated_at = $now
     WHERE user_id = $user_id AND balance = $balance_before
 RETURNING 1
), c AS (
    UPDATE balance_charges
       SET status = 'APPROVED', gateway_transaction_id = $transaction,
           balance_after = $balance_after, settled_at = $now
     WHERE id = $charge_id AND status = 'PENDING'
 RETURNING 1
), h AS (
    INSERT INTO balance_history (user_id, kind, amount, balance_after, charge_id, created_at)
    SELECT $user_id, 'CHARGE', $amount, $balance_after, $charge_id, $now WHERE $credit
), k AS (
    UPDATE idempotency_keys
       SET status = 'COMPLETED', response_status = $response_status,
           response_headers = $response_headers, response_body = $response_body
     WHERE caller = $idem_caller AND key = $idem_key AND claim_id = $idem_claim
       AND status = 'IN_PROGRESS'
 RETURNING 1
)
SELECT (SELECT count(*) FROM b) AS balances, (SELECT count(*) FROM c) AS charges,
       (SELECT count(*) FROM k) AS idempotency"
);

sql!(
    /// Settles a declined charge and releases its headroom.
    DeclineSql,
    "WITH c AS (
    UPDATE balance_charges SET status = 'DECLINED', decline_reason = $reason, settled_at = $now
     WHERE id = $charge_id AND status = 'PENDING'
 RETURNING 1
), b AS (
    UPDATE balances SET pending_credit = $pending_after
     WHERE user_id = $user_id AND EXISTS (SELECT 1 FROM c)
 RETURNING 1
)
SELECT (SELECT count(*) FROM b) AS balances, (SELECT count(*) FROM c) AS charges,
       0::int8 AS idempotency"
);

#[derive(QueryableByName)]
struct ChargeRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    balance: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pending_credit: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    user_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    amount: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    payment_method: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    gateway_transaction_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    decline_reason: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    balance_after: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created_at: Option<Timestamp>,
}

#[derive(QueryableByName)]
struct Settled {
    #[diesel(sql_type = BigInt)]
    balances: i64,
    #[diesel(sql_type = BigInt)]
    charges: i64,
    #[diesel(sql_type = BigInt)]
    idempotency: i64,
}

impl ChargeRow {
    fn snapshot(&self) -> anyhow::Result<BalanceSnapshot> {
        Ok(BalanceSnapshot {
            balance: valid(Money::try_from(self.balance.unwrap_or(0)), "balance")?,
            pending_credit: valid(
                Money::try_from(self.pending_credit.unwrap_or(0)),
                "pending credit",
            )?,
        })
    }

    /// The charge of this row, `None` when the row has none (a left join found nothing).
    fn charge(&self) -> anyhow::Result<Option<Charge>> {
        let (Some(id), Some(user_id), Some(amount), Some(method), Some(status), Some(created_at)) = (
            self.id,
            self.user_id,
            self.amount,
            self.payment_method.clone(),
            self.status.as_deref(),
            self.created_at,
        ) else {
            return Ok(None);
        };
        let status = match status {
            "PENDING" => ChargeStatus::Pending,
            "APPROVED" => ChargeStatus::Approved {
                transaction: GatewayTransactionId(
                    self.gateway_transaction_id
                        .clone()
                        .ok_or_else(|| anyhow!("approved charge {id} without a transaction"))?,
                ),
                balance_after: valid(
                    Money::try_from(self.balance_after.unwrap_or(-1)),
                    "balance after",
                )?,
            },
            "DECLINED" => ChargeStatus::Declined {
                reason: self.decline_reason.clone().unwrap_or_default(),
            },
            other => return Err(anyhow!("unknown charge status {other}")),
        };
        Ok(Some(Charge {
            id: valid(ChargeId::try_from(id), "charge id")?,
            user_id: valid(UserId::try_from(user_id), "user id")?,
            amount: valid(Money::try_from(amount), "amount")?,
            method: valid(PaymentMethod::try_from(method), "payment method")?,
            created_at,
            status,
        }))
    }
}

/// Why a charge transaction rolled back.
enum Abort<E> {
    Refused(E),
    Failed(anyhow::Error),
}

impl<E> From<diesel::result::Error> for Abort<E> {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Failed(e.into())
    }
}

impl<E> From<anyhow::Error> for Abort<E> {
    fn from(e: anyhow::Error) -> Self {
        Abort::Failed(e)
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
        let query = newest_first(
            balance_history::table
                .filter(balance_history::user_id.eq(user.get()))
                .select(HistoryRow::as_select())
                .into_boxed(),
            balance_history::id,
            page,
        );
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

    async fn open_charge(
        &self,
        charge: NewCharge,
        decide: OpenDecision,
    ) -> Result<Charge, OpenChargeError> {
        let mut conn = conn(&self.pool).await?;
        let result = conn
            .transaction::<_, Abort<OpenChargeError>, _>(async move |conn| {
                let row: ChargeRow = Statement::<LockForOpen>::new()
                    .bind("user_id", Bind::I64(charge.user_id.get()))
                    .bind("claim_id", Bind::OptUuid(charge.claim_id))
                    .get_result(conn)
                    .await?;
                let snapshot = ChargeSnapshot {
                    balance: row.snapshot()?,
                    existing: row.charge()?,
                };
                match decide(&snapshot).map_err(|e| Abort::Refused(e.into()))? {
                    OpenCharge::Resume(existing) => Ok(existing),
                    OpenCharge::Open {
                        pending_credit_after,
                    } => {
                        let opened: ChargeRow = Statement::<OpenChargeSql>::new()
                            .bind("user_id", Bind::I64(charge.user_id.get()))
                            .bind("pending_after", Bind::I64(pending_credit_after.won()))
                            .bind("amount", Bind::I64(charge.amount.money().won()))
                            .bind("method", Bind::Text(charge.method.as_str().into()))
                            .bind("now", Bind::Ts(charge.now))
                            .bind("claim_id", Bind::OptUuid(charge.claim_id))
                            .get_result(conn)
                            .await?;
                        Ok(opened
                            .charge()?
                            .ok_or_else(|| anyhow!("opening a charge returned no row"))?)
                    }
                }
            })
            .await;
        result.map_err(|e| match e {
            Abort::Refused(e) => e,
            Abort::Failed(e) => OpenChargeError::Unexpected(e.context("opening a charge")),
        })
    }

    async fn approve_charge(
        &self,
        id: ChargeId,
        decide: ApproveDecision,
        completion: Option<Completion<ChargeReceipt>>,
        now: Timestamp,
    ) -> anyhow::Result<ChargeReceipt> {
        let mut conn = conn(&self.pool).await?;
        let result = conn
            .transaction::<_, Abort<anyhow::Error>, _>(async move |conn| {
                let row: ChargeRow = Statement::<LockForSettle>::new()
                    .bind("charge_id", Bind::I64(id.get()))
                    .get_result(conn)
                    .await?;
                let charge = row.charge()?.ok_or_else(|| anyhow!("no charge {id}"))?;
                let plan = decide(&charge, &row.snapshot()?)
                    .map_err(|e| Abort::Refused(anyhow::Error::new(e)))?;
                let (credit, receipt) = match &plan {
                    ApproveCharge::Credit { receipt, .. } => (true, receipt.clone()),
                    ApproveCharge::AlreadyApproved(receipt) => (false, receipt.clone()),
                };
                let record = completion.as_ref().map(|c| c.record(&receipt));
                if !credit && record.is_none() {
                    return Ok(receipt);
                }
                let (before, after, pending_after, amount) = match &plan {
                    ApproveCharge::Credit {
                        change,
                        pending_credit_after,
                        ..
                    } => (
                        change.before.map_or(0, Money::won),
                        change.after().won(),
                        pending_credit_after.won(),
                        change.entry.amount,
                    ),
                    // nothing to credit: the guards below match no balance or charge row
                    ApproveCharge::AlreadyApproved(_) => (-1, 0, 0, 0),
                };
                let settled: Settled = Statement::<ApproveSql>::new()
                    .bind("user_id", Bind::I64(charge.user_id.get()))
                    .bind("charge_id", Bind::I64(if credit { id.get() } else { 0 }))
                    .bind("balance_before", Bind::I64(before))
                    .bind("balance_after", Bind::I64(after))
                    .bind("pending_after", Bind::I64(pending_after))
                    .bind("amount", Bind::I64(amount))
                    .bind("credit", Bind::Bool(credit))
                    .bind(
                        "transaction",
                        Bind::Text(receipt.gateway_transaction_id.0.clone()),
                    )
                    .bind("now", Bind::Ts(now))
                    .bind(
                        "response_status",
                        Bind::OptI16(record.as_ref().map(|r| r.response.status as i16)),
                    )
                    .bind(
                        "response_headers",
                        Bind::OptJson(
                            record
                                .as_ref()
                                .map(|r| serde_json::to_value(&r.response.headers))
                                .transpose()
                                .map_err(anyhow::Error::from)?,
                        ),
                    )
                    .bind(
                        "response_body",
                        Bind::OptBytes(record.as_ref().map(|r| r.response.body.clone())),
                    )
                    .bind(
                        "idem_caller",
                        Bind::OptText(record.as_ref().map(|r| r.claim.caller.clone())),
                    )
                    .bind(
                        "idem_key",
                        Bind::OptText(record.as_ref().map(|r| r.claim.key.clone())),
                    )
                    .bind(
                        "idem_claim",
                        Bind::OptUuid(record.as_ref().map(|r| r.claim.claim_id)),
                    )
                    .get_result(conn)
                    .await?;
                if record.is_some() && settled.idempotency != 1 {
                    return Err(Abort::Failed(ClaimLost.into()));
                }
                let expected = if credit { (1, 1) } else { (0, 0) };
                if (settled.balances, settled.charges) != expected {
                    return Err(Abort::Failed(anyhow!(
                        "charge {id}: the rows no longer fit the settlement"
                    )));
                }
                Ok(receipt)
            })
            .await;
        result.map_err(|e| match e {
            Abort::Refused(e) => e,
            Abort::Failed(e) if e.is::<ClaimLost>() => e,
            Abort::Failed(e) => e.context("approving a charge"),
        })
    }

    async fn decline_charge(
        &self,
        id: ChargeId,
        reason: String,
        decide: DeclineDecision,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let mut conn = conn(&self.pool).await?;
        let result = conn
            .transaction::<_, Abort<anyhow::Error>, _>(async move |conn| {
                let row: ChargeRow = Statement::<LockForSettle>::new()
                    .bind("charge_id", Bind::I64(id.get()))
                    .get_result(conn)
                    .await?;
                let charge = row.charge()?.ok_or_else(|| anyhow!("no charge {id}"))?;
                match decide(&charge, &row.snapshot()?) {
                    DeclineCharge::AlreadySettled => Ok(()),
                    DeclineCharge::Release {
                        pending_credit_after,
                    } => {
                        let settled: Settled = Statement::<DeclineSql>::new()
                            .bind("charge_id", Bind::I64(id.get()))
                            .bind("user_id", Bind::I64(charge.user_id.get()))
                            .bind("reason", Bind::Text(reason))
                            .bind("pending_after", Bind::I64(pending_credit_after.won()))
                            .bind("now", Bind::Ts(now))
                            .get_result(conn)
                            .await?;
                        if (settled.balances, settled.charges) != (1, 1) {
                            return Err(Abort::Failed(anyhow!(
                                "charge {id}: the rows no longer fit the decline"
                            )));
                        }
                        Ok(())
                    }
                }
            })
            .await;
        result.map_err(|e| match e {
            Abort::Refused(e) => e,
            Abort::Failed(e) => e.context("declining a charge"),
        })
    }

    async fn stale_charges(&self, before: Timestamp, limit: i64) -> anyhow::Result<Vec<Charge>> {
        let mut conn = conn(&self.pool).await?;
        let rows: Vec<(i64, i64, i64, String, Timestamp)> = balance_charges::table
            .filter(balance_charges::status.eq("PENDING"))
            .filter(balance_charges::created_at.lt(before))
            .order(balance_charges::created_at.asc())
            .limit(limit)
            .select((
                balance_charges::id,
                balance_charges::user_id,
                balance_charges::amount,
                balance_charges::payment_method,
                balance_charges::created_at,
            ))
            .load(&mut conn)
            .await
            .context("listing stale charges")?;
        rows.into_iter()
            .map(|(id, user_id, amount, method, created_at)| {
                Ok(Charge {
                    id: valid(ChargeId::try_from(id), "charge id")?,
                    user_id: valid(UserId::try_from(user_id), "user id")?,
                    amount: valid(Money::try_from(amount), "amount")?,
                    method: valid(PaymentMethod::try_from(method), "payment method")?,
                    created_at,
                    status: ChargeStatus::Pending,
                })
            })
            .collect()
    }
}
