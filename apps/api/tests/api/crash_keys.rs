//! Idempotency-Keys across a SIGKILL (issue 10): the real `commerce-api serve` binary is
//! killed while a burst of charges and pay-now orders, each with its own key, is in
//! flight; restarted on the same database; and every request is sent again with its key
//! (also after the keys' lease ran out). Every key must have exactly one effect (one
//! charge credited, one order paid, one history row each), and every retry of a request
//! that got an answer before the kill must get that same answer, byte for byte.
//!
//! The server reaches PostgreSQL through a proxy that, just before the kill, holds the
//! answer to every COMMIT it forwards: the database commits, the server never hears of
//! it, so the requests in flight commit their work and die without answering: exactly
//! what a retry must replay rather than run again.

use crate::crash::{count, test_pool, wait_for_server_backends_to_exit, Api, Server};
use commerce_api::auth::Caller;
use futures::StreamExt;
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::testing_proxy::{postgres_addr, TcpProxy};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const USERS: i64 = 8;
/// Rounds of burst-and-kill at most, until one leaves work committed but unanswered.
const MAX_ROUNDS: usize = 3;
const FUNDS: i64 = 1_000_000;
const CHARGE: i64 = 5_000;
const PRICE: i64 = 1_000;
const REQUESTS: usize = 240;
const CONCURRENCY: usize = 16;
/// Answered requests before the kill.
const ANSWERED_BEFORE_KILL: usize = 40;
/// The keys' lease in the test (the default is 60 s).
const LEASE_SECONDS: &str = "2";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Charge,
    PayNow,
}

struct Request {
    kind: Kind,
    user: i64,
    key: String,
}

impl Request {
    /// Request `i` of round `round`.
    fn of(round: usize, i: usize) -> Request {
        Request {
            kind: if i.is_multiple_of(3) {
                Kind::Charge
            } else {
                Kind::PayNow
            },
            user: (i as i64 % USERS) + 1,
            key: format!("burst-{round}-{i}"),
        }
    }
}

/// An answer: status, body bytes, and whether it was a replay.
type Raw = (u16, Vec<u8>, bool);

async fn send(api: &Api, base: &str, product: i64, r: &Request) -> Result<Raw, String> {
    let (path, body) = match r.kind {
        Kind::Charge => (
            format!("/api/v1/users/{}/balance/charges", r.user),
            json!({"amount": CHARGE, "payment_method": "card"}),
        ),
        Kind::PayNow => (
            "/api/v1/orders".to_string(),
            json!({"user_id": r.user, "items": [{"product_id": product, "quantity": 1}], "pay_now": true}),
        ),
    };
    let res = api
        .client
        .request(Method::POST, format!("{base}{path}"))
        .bearer_auth(api.user(r.user))
        .header("Idempotency-Key", &r.key)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("{e:#}"))?;
    let status = res.status().as_u16();
    let replayed = res.headers().contains_key("idempotent-replayed");
    let bytes = res.bytes().await.map_err(|e| format!("{e:#}"))?;
    Ok((status, bytes.to_vec(), replayed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_has_one_effect_and_one_answer_across_a_sigkill() {
    let db = TestDatabase::create().await;
    let pool = test_pool(&db);
    let api = Api::new();
    let admin = api.token(Caller::Admin);
    let extra = [("COMMERCE__IDEMPOTENCY__LEASE_SECONDS", LEASE_SECONDS)];
    let proxy = TcpProxy::start(postgres_addr(&db.url).expect("the database's address"))
        .await
        .unwrap();
    let mut server = Server::start_with(
        &proxy.postgres_url(&db.url),
        "",
        5_000,
        "keys-first",
        &extra,
    )
    .await;
    let base = server.base.clone();
    let (status, body) = api
        .send(
            &base,
            Method::POST,
            "/api/v1/admin/products",
            &admin,
            Some(json!({"name": "Burst", "price": PRICE, "stock": 100_000})),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let product = body["id"].as_i64().unwrap();
    for u in 1..=USERS {
        let (status, body) = api.charge(&base, u, FUNDS / 10).await.unwrap();
        assert_eq!(status, 201, "{body}");
        for _ in 1..10 {
            api.charge(&base, u, FUNDS / 10).await.unwrap();
        }
    }

    let mut first: BTreeMap<(usize, usize), Result<Raw, String>> = BTreeMap::new();
    let mut committed_unanswered = 0;
    let mut rounds = 0;
    while committed_unanswered == 0 {
        assert!(
            rounds < MAX_ROUNDS,
            "no request committed without answering in {MAX_ROUNDS} rounds: the test would prove nothing"
        );
        let round = rounds;
        rounds += 1;
        if round > 0 {
            proxy.resume();
            server = Server::start_with(
                &proxy.postgres_url(&db.url),
                "",
                5_000,
                &format!("keys-round-{round}"),
                &extra,
            )
            .await;
        }
        let base = server.base.clone();
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let run = {
            let (api, base, answered) = (api.clone(), base.clone(), answered.clone());
            tokio::spawn(async move {
                futures::stream::iter(0..REQUESTS)
                    .map(|i| {
                        let (api, base, answered) = (api.clone(), base.clone(), answered.clone());
                        async move {
                            let got = send(&api, &base, product, &Request::of(round, i)).await;
                            if got.is_ok() {
                                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            (i, got)
                        }
                    })
                    .buffer_unordered(CONCURRENCY)
                    .collect::<Vec<_>>()
                    .await
            })
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while answered.load(std::sync::atomic::Ordering::SeqCst) < ANSWERED_BEFORE_KILL {
            assert!(Instant::now() < deadline, "the burst got no answers");
            assert!(!run.is_finished(), "the burst ended before the kill");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // the database commits what it receives; the server never hears of a commit
        let held_before = proxy.held_connections();
        proxy.hold_replies_after(b"COMMIT");
        let trap_deadline = Instant::now() + Duration::from_secs(2);
        while proxy.held_connections() - held_before < 4 && Instant::now() < trap_deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill();
        proxy.break_connections();
        let got = run.await.unwrap();
        wait_for_server_backends_to_exit(&pool).await;
        // requests whose work committed (their key is completed) but whose answer was
        // lost with the process: the case a retry must replay rather than run again
        let cut: Vec<String> = got
            .iter()
            .filter(|(_, a)| a.is_err())
            .map(|(i, _)| format!("'burst-{round}-{i}'"))
            .collect();
        assert!(!cut.is_empty(), "the kill interrupted nothing");
        committed_unanswered += count(
            &pool,
            &format!(
                "SELECT count(*) AS n FROM idempotency_keys WHERE status = 'COMPLETED' AND key IN ({})",
                cut.join(",")
            ),
        )
        .await;
        first.extend(got.into_iter().map(|(i, a)| ((round, i), a)));
    }
    let cut_off = first.values().filter(|a| a.is_err()).count();
    for (i, a) in &first {
        if let Ok((status, body, _)) = a {
            assert_eq!(
                *status,
                201,
                "request {i:?} before the kill: {}",
                String::from_utf8_lossy(body)
            );
        }
    }
    let requests: Vec<((usize, usize), Request)> = (0..rounds)
        .flat_map(|r| (0..REQUESTS).map(move |i| ((r, i), Request::of(r, i))))
        .collect();

    // restart, and send every request again with its key until none is in progress
    let server = Server::start_with(&db.url, "", 5_000, "keys-second", &extra).await;
    let base = server.base.clone();
    let mut last: BTreeMap<(usize, usize), Raw> = BTreeMap::new();
    let mut waited_for_lease = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    for (i, r) in &requests {
        loop {
            let (status, body, replayed) = send(&api, &base, product, r).await.unwrap();
            let in_progress = status == 409
                && serde_json::from_slice::<Value>(&body)
                    .is_ok_and(|b| b["code"] == "REQUEST_IN_PROGRESS");
            if !in_progress {
                last.insert(*i, (status, body, replayed));
                break;
            }
            waited_for_lease += 1;
            assert!(Instant::now() < deadline, "request {i:?} stays in progress");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // and once more, long after the lease: the same answers
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (i, r) in &requests {
        let again = send(&api, &base, product, r).await.unwrap();
        assert_eq!(
            (again.0, &again.1),
            (last[i].0, &last[i].1),
            "request {i:?}: a later retry answers differently"
        );
        assert!(again.2, "request {i:?}: a retry is a replay");
    }

    // every retry of an answered request got the first answer, byte for byte
    for (i, a) in &first {
        if let Ok((status, body, _)) = a {
            assert_eq!(
                (last[i].0, &last[i].1),
                (*status, body),
                "request {i:?}: the retry after the crash answered differently"
            );
            assert!(last[i].2, "request {i:?}: the retry was not a replay");
        }
        assert_eq!(
            last[i].0,
            201,
            "request {i:?} finally: {}",
            String::from_utf8_lossy(&last[i].1)
        );
    }

    // exactly one effect per key
    let charges_per_user = rounds as i64 * (REQUESTS as i64 / 3 / USERS);
    let orders_per_user = rounds as i64 * ((REQUESTS as i64 - REQUESTS as i64 / 3) / USERS);
    for u in 1..=USERS {
        let approved = count(
            &pool,
            &format!("SELECT count(*) AS n FROM balance_charges WHERE user_id = {u} AND status = 'APPROVED'"),
        )
        .await;
        assert_eq!(
            approved,
            10 + charges_per_user,
            "user {u}: charges credited"
        );
        let orders = count(
            &pool,
            &format!("SELECT count(*) AS n FROM orders WHERE user_id = {u}"),
        )
        .await;
        assert_eq!(orders, orders_per_user, "user {u}: orders");
        let paid = count(
            &pool,
            &format!("SELECT count(*) AS n FROM orders WHERE user_id = {u} AND status = 'PAID'"),
        )
        .await;
        assert_eq!(paid, orders_per_user, "user {u}: paid orders");
        let balance = count(
            &pool,
            &format!("SELECT balance AS n FROM balances WHERE user_id = {u}"),
        )
        .await;
        assert_eq!(
            balance,
            FUNDS + CHARGE * charges_per_user - PRICE * orders_per_user,
            "user {u}: balance"
        );
    }
    let rows_per_effect = count(
        &pool,
        "SELECT count(*) AS n FROM (
            SELECT charge_id FROM balance_history WHERE kind = 'CHARGE' GROUP BY charge_id HAVING count(*) <> 1
            UNION ALL
            SELECT order_id FROM balance_history WHERE kind = 'PAYMENT' GROUP BY order_id HAVING count(*) <> 1) x",
    )
    .await;
    assert_eq!(
        rows_per_effect, 0,
        "one history row per charge and per payment"
    );
    let history = count(&pool, "SELECT count(*) AS n FROM balance_history").await;
    assert_eq!(
        history,
        USERS * (10 + charges_per_user + orders_per_user),
        "history rows"
    );
    let pending = count(
        &pool,
        "SELECT count(*) AS n FROM balance_charges WHERE status <> 'APPROVED'",
    )
    .await;
    assert_eq!(pending, 0, "every charge settled");
    eprintln!(
        "keys: {rounds} rounds; {} answered before the kills, {cut_off} cut off \
         ({committed_unanswered} of them committed, answer lost); {waited_for_lease} retries \
         waited for a lease",
        first.len() - cut_off
    );
}
