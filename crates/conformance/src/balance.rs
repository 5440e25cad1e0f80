//! `BalanceStore`: no credit without an approval, one credit per approval, the limit
//! never passed (charges at the gateway counted), one charge per request.

use crate::fixtures::{balance_of, charge, claim, history_of, new_charge, now};
use crate::Stores;
use ::balance::{
    plan_approve, plan_decline, plan_open_charge, Charge, ChargeReceipt, ChargeStatus,
    GatewayTransactionId, HistoryKind, NewCharge, OpenChargeError, MAX_BALANCE,
};
use kernel::testing::uid;
use kernel::{BeginOutcome, ChargeId, Completion, IdempotencyClaim, PageRequest};

async fn open(s: &Stores, c: NewCharge) -> Result<Charge, OpenChargeError> {
    let amount = c.amount;
    s.balances
        .open_charge(c, Box::new(move |snap| plan_open_charge(snap, amount)))
        .await
}

async fn approve(
    s: &Stores,
    id: ChargeId,
    completion: Option<Completion<ChargeReceipt>>,
) -> anyhow::Result<ChargeReceipt> {
    let tx = GatewayTransactionId(format!("tx-{id}"));
    s.balances
        .approve_charge(
            id,
            Box::new(move |c, b| plan_approve(c, b, tx)),
            completion,
            now(),
        )
        .await
}

async fn decline(s: &Stores, id: ChargeId) {
    s.balances
        .decline_charge(id, "declined".into(), Box::new(plan_decline), now())
        .await
        .unwrap()
}

fn receipt_completion(claim: IdempotencyClaim) -> Completion<ChargeReceipt> {
    kernel::testing::completion(claim, 201, |r: &ChargeReceipt| {
        r.balance.won().to_string().into_bytes()
    })
}

/// Invariant: a user never charged has a balance of zero and no history.
pub async fn a_user_never_charged_has_zero(s: Stores) {
    assert_eq!(balance_of(&s, 1).await, 0);
    assert!(history_of(&s, 1).await.is_empty());
}

/// Invariant: nothing is credited before the approval, and approving the same charge
/// twice credits it once (one CHARGE row).
pub async fn approving_twice_credits_once(s: Stores) {
    let pending = open(&s, new_charge(1, 5_000, None)).await.unwrap();
    assert_eq!(pending.status, ChargeStatus::Pending);
    assert_eq!(
        balance_of(&s, 1).await,
        0,
        "nothing credited before approval"
    );
    let first = approve(&s, pending.id, None).await.unwrap();
    let again = approve(&s, pending.id, None).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(balance_of(&s, 1).await, 5_000);
    let history = history_of(&s, 1).await;
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].kind, history[0].amount),
        (HistoryKind::Charge, 5_000)
    );
}

/// Invariant: the limit counts charges still at the gateway; a declined charge credits
/// nothing and gives its headroom back.
pub async fn declining_releases_the_headroom_and_credits_nothing(s: Stores) {
    for _ in 0..100 {
        charge(&s, 2, 10_000_000).await;
    }
    assert_eq!(balance_of(&s, 2).await, MAX_BALANCE.won());
    assert!(matches!(
        open(&s, new_charge(2, 1, None)).await,
        Err(OpenChargeError::LimitExceeded(_))
    ));
    let big = open(&s, new_charge(3, 10_000_000, None)).await.unwrap();
    for _ in 0..99 {
        charge(&s, 3, 10_000_000).await;
    }
    assert!(matches!(
        open(&s, new_charge(3, 1, None)).await,
        Err(OpenChargeError::LimitExceeded(_))
    ));
    decline(&s, big.id).await;
    assert_eq!(
        balance_of(&s, 3).await,
        990_000_000,
        "a decline credits nothing"
    );
    assert!(
        open(&s, new_charge(3, 10_000_000, None)).await.is_ok(),
        "declining freed the headroom"
    );
}

/// Invariant: concurrent opens never reserve past the limit: of 130 charges of
/// 10,000,000 opened at once, exactly 100 fit.
pub async fn concurrent_opens_never_pass_the_limit(s: Stores) {
    let tasks: Vec<_> = (0..130)
        .map(|_| {
            let store = s.balances.clone();
            tokio::spawn(async move {
                let c = new_charge(6, 10_000_000, None);
                let amount = c.amount;
                store
                    .open_charge(c, Box::new(move |snap| plan_open_charge(snap, amount)))
                    .await
            })
        })
        .collect();
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let opened = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(OpenChargeError::LimitExceeded(_))))
        .count();
    assert_eq!((opened, refused), (100, 30));
}

/// Invariant: a retried request finds the charge its first attempt opened (one charge
/// per claim), and the credit records the request's answer with it, so the key replays
/// it; the completion happens once: a second credit with the claim is `ClaimLost` and
/// changes nothing.
pub async fn a_claim_opens_one_charge_and_its_credit_completes_the_key(s: Stores) {
    let claim = claim(&s, "user:7", "charge-1").await;
    let first = new_charge(7, 4_000, Some(claim.claim_id));
    let opened = open(&s, first.clone()).await.unwrap();
    let again = open(&s, first).await.unwrap();
    assert_eq!(opened.id, again.id, "the same request resumes its charge");
    assert_eq!(again.status, ChargeStatus::Pending);
    let receipt = approve(&s, opened.id, Some(receipt_completion(claim.clone())))
        .await
        .unwrap();
    assert_eq!(receipt.balance.won(), 4_000);
    match s.keys.begin("user:7", "charge-1", "hash").await.unwrap() {
        BeginOutcome::Replay(stored) => assert_eq!(stored.body, b"4000"),
        other => panic!("the key was completed with the credit, got {other:?}"),
    }
    let lost = approve(&s, opened.id, Some(receipt_completion(claim))).await;
    assert!(lost.unwrap_err().is::<kernel::ClaimLost>());
    assert_eq!(balance_of(&s, 7).await, 4_000);
}

/// Invariant: a credit whose claim is no longer in progress (another request completed
/// the key) is rolled back whole: `ClaimLost`, nothing credited, the charge still PENDING.
pub async fn a_credit_whose_claim_was_lost_changes_nothing(s: Stores) {
    let claim = claim(&s, "user:8", "charge-2").await;
    let opened = open(&s, new_charge(8, 1_000, Some(claim.claim_id)))
        .await
        .unwrap();
    s.keys
        .complete(
            "user:8",
            "charge-2",
            &kernel::RecordedResponse {
                status: 500,
                headers: vec![],
                body: vec![],
            },
        )
        .await
        .unwrap();
    let lost = approve(&s, opened.id, Some(receipt_completion(claim))).await;
    assert!(lost.unwrap_err().is::<kernel::ClaimLost>());
    assert_eq!(balance_of(&s, 8).await, 0);
    assert!(history_of(&s, 8).await.is_empty());
    let stale = s
        .balances
        .stale_charges(now() + chrono::Duration::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(
        stale.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![opened.id]
    );
}

/// Invariant: recovery finds the charges still PENDING opened before the cutoff, oldest
/// first, and no settled one.
pub async fn stale_charges_are_the_pending_ones_before_the_cutoff(s: Stores) {
    let stuck = open(&s, new_charge(4, 100, None)).await.unwrap();
    let done = open(&s, new_charge(4, 200, None)).await.unwrap();
    approve(&s, done.id, None).await.unwrap();
    let declined = open(&s, new_charge(4, 300, None)).await.unwrap();
    decline(&s, declined.id).await;
    let also_stuck = open(&s, new_charge(5, 400, None)).await.unwrap();
    let later = now() + chrono::Duration::seconds(1);
    let stale = s.balances.stale_charges(later, 10).await.unwrap();
    assert_eq!(
        stale.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![stuck.id, also_stuck.id]
    );
    assert_eq!(s.balances.stale_charges(later, 1).await.unwrap().len(), 1);
    let earlier = stuck.created_at - chrono::Duration::seconds(1);
    assert!(s
        .balances
        .stale_charges(earlier, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Invariant: history comes newest first, page by page, only the user's own, and each
/// row's `balance_after` is the running balance.
pub async fn history_pages_newest_first(s: Stores) {
    for amount in [100, 200, 300] {
        charge(&s, 9, amount).await;
    }
    charge(&s, 10, 5).await;
    let first = s
        .balances
        .history(uid(9), PageRequest::new(2, None).unwrap())
        .await
        .unwrap();
    assert_eq!(
        first
            .items
            .iter()
            .map(|h| (h.amount, h.balance_after.won()))
            .collect::<Vec<_>>(),
        [(300, 600), (200, 300)]
    );
    let rest = s
        .balances
        .history(uid(9), PageRequest::new(2, first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(
        rest.items
            .iter()
            .map(|h| (h.amount, h.balance_after.won()))
            .collect::<Vec<_>>(),
        [(100, 100)]
    );
    assert_eq!(rest.next, None);
}
