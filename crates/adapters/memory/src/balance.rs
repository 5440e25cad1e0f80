//! Balances, their history and charges: [`balance::BalanceStore`].

use crate::paging::{keyset, Order};
use crate::state::{id, ChargeRow, State};
use crate::MemoryStore;
use anyhow::anyhow;
use async_trait::async_trait;
use balance::{
    ApproveCharge, ApproveDecision, BalanceChange, BalanceSnapshot, BalanceStore, Charge,
    ChargeReceipt, ChargeSnapshot, ChargeStatus, DeclineCharge, DeclineDecision, HistoryEntry,
    NewCharge, OpenCharge, OpenChargeError, OpenDecision,
};
use kernel::{ChargeId, ClaimLost, Completion, Money, Page, PageRequest, Timestamp, UserId};

impl State {
    /// The user's balance row as a decision sees it (zero for a user without one).
    pub fn balance_snapshot(&self, user: UserId) -> BalanceSnapshot {
        let row = self.balances.get(&user).copied().unwrap_or_default();
        BalanceSnapshot {
            balance: row.balance,
            pending_credit: row.pending_credit,
        }
    }

    /// The charge, or an error when there is none.
    pub fn charge(&self, id: ChargeId) -> anyhow::Result<Charge> {
        self.charges
            .get(&id)
            .map(|row| row.charge.clone())
            .ok_or_else(|| anyhow!("no charge {id}"))
    }

    /// Whether `change` still fits the balance row: the balance is the one the decision
    /// saw (a user without a row is at zero and gets one).
    pub fn balance_fits(&self, change: &BalanceChange) -> bool {
        match (self.balances.get(&change.entry.user_id), change.before) {
            (None, _) => true,
            (Some(row), Some(before)) => row.balance == before,
            (Some(_), None) => false,
        }
    }

    /// Writes a balance change and its history row (call after [`State::balance_fits`]).
    pub fn apply_balance(&mut self, change: &BalanceChange, at: Timestamp) {
        let entry = &change.entry;
        self.balances.entry(entry.user_id).or_default().balance = entry.balance_after;
        let id = self.seq.history();
        self.history.insert(
            id,
            HistoryEntry {
                id,
                user_id: entry.user_id,
                kind: entry.kind,
                amount: entry.amount,
                balance_after: entry.balance_after,
                order_id: entry.order_id,
                created_at: at,
            },
        );
    }
}

#[async_trait]
impl BalanceStore for MemoryStore {
    async fn balance(&self, user: UserId) -> anyhow::Result<Money> {
        Ok(self.db().balance_snapshot(user).balance)
    }

    async fn history(&self, user: UserId, page: PageRequest) -> anyhow::Result<Page<HistoryEntry>> {
        let db = self.db();
        let rows = db
            .history
            .values()
            .rev()
            .filter(|e| e.user_id == user)
            .cloned();
        Ok(keyset(rows, page, Order::Descending, |e| e.id))
    }

    async fn open_charge(
        &self,
        charge: NewCharge,
        decide: OpenDecision,
    ) -> Result<Charge, OpenChargeError> {
        let mut db = self.db();
        let existing = charge.claim_id.and_then(|claim| {
            db.charges
                .values()
                .find(|row| row.claim_id == Some(claim))
                .map(|row| row.charge.clone())
        });
        let snapshot = ChargeSnapshot {
            balance: db.balance_snapshot(charge.user_id),
            existing,
        };
        match decide(&snapshot)? {
            OpenCharge::Resume(existing) => Ok(existing),
            OpenCharge::Open {
                pending_credit_after,
            } => {
                db.balances
                    .entry(charge.user_id)
                    .or_default()
                    .pending_credit = pending_credit_after;
                let opened = Charge {
                    id: id(db.seq.charge()),
                    user_id: charge.user_id,
                    amount: charge.amount.money(),
                    method: charge.method,
                    created_at: charge.now,
                    status: ChargeStatus::Pending,
                };
                db.charges.insert(
                    opened.id,
                    ChargeRow {
                        charge: opened.clone(),
                        claim_id: charge.claim_id,
                    },
                );
                Ok(opened)
            }
        }
    }

    async fn approve_charge(
        &self,
        id: ChargeId,
        decide: ApproveDecision,
        completion: Option<Completion<ChargeReceipt>>,
        now: Timestamp,
    ) -> anyhow::Result<ChargeReceipt> {
        let mut db = self.db();
        let charge = db.charge(id)?;
        let plan = decide(&charge, &db.balance_snapshot(charge.user_id))?;
        let receipt = match &plan {
            ApproveCharge::Credit { receipt, .. } | ApproveCharge::AlreadyApproved(receipt) => {
                receipt.clone()
            }
        };
        let record = completion.map(|c| c.record(&receipt));
        if let Some(record) = &record {
            if !db.claim_in_progress(&record.claim) {
                return Err(ClaimLost.into());
            }
        }
        if let ApproveCharge::Credit {
            change,
            pending_credit_after,
            receipt,
        } = &plan
        {
            if charge.status != ChargeStatus::Pending || !db.balance_fits(change) {
                return Err(anyhow!(
                    "charge {id}: the rows no longer fit the settlement"
                ));
            }
            db.apply_balance(change, now);
            db.balances
                .entry(charge.user_id)
                .or_default()
                .pending_credit = *pending_credit_after;
            if let Some(row) = db.charges.get_mut(&id) {
                row.charge.status = ChargeStatus::Approved {
                    transaction: receipt.gateway_transaction_id.clone(),
                    balance_after: change.after(),
                };
            }
        }
        if let Some(record) = record {
            db.complete_claim(record);
        }
        Ok(receipt)
    }

    async fn decline_charge(
        &self,
        id: ChargeId,
        reason: String,
        decide: DeclineDecision,
        _now: Timestamp,
    ) -> anyhow::Result<()> {
        let mut db = self.db();
        let charge = db.charge(id)?;
        match decide(&charge, &db.balance_snapshot(charge.user_id)) {
            DeclineCharge::AlreadySettled => Ok(()),
            DeclineCharge::Release {
                pending_credit_after,
            } => {
                if charge.status != ChargeStatus::Pending {
                    return Err(anyhow!("charge {id}: the rows no longer fit the decline"));
                }
                db.balances
                    .entry(charge.user_id)
                    .or_default()
                    .pending_credit = pending_credit_after;
                if let Some(row) = db.charges.get_mut(&id) {
                    row.charge.status = ChargeStatus::Declined { reason };
                }
                Ok(())
            }
        }
    }

    async fn stale_charges(&self, before: Timestamp, limit: i64) -> anyhow::Result<Vec<Charge>> {
        let db = self.db();
        let mut stale: Vec<Charge> = db
            .charges
            .values()
            .filter(|row| row.charge.status == ChargeStatus::Pending)
            .filter(|row| row.charge.created_at < before)
            .map(|row| row.charge.clone())
            .collect();
        stale.sort_by_key(|c| (c.created_at, c.id));
        stale.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(stale)
    }
}
