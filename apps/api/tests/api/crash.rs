//! The server process killed with SIGKILL in the middle of a run of payments (issue 6).
//!
//! The real `commerce-api serve` binary runs as a child process on a fresh database,
//! relaying to a [`FakePlatform`] that answers slowly and refuses everything, so events
//! pile up and deliveries are under way (their claims leased) when the process is killed.
//! Right after the kill the database is checked directly: every PAID order has its
//! `order.paid` row in the outbox and the money adds up. Then the binary is started
//! again on the same database with the platform healthy, and every PAID order's event
//! must reach the platform, those whose claims died with the process included.

use crate::helpers::FakePlatform;
use crate::relay_metrics::{sample, DELIVERED, FAILED};
use commerce_api::auth::{Caller, JwtKeys};
use commerce_api::config::DEV_JWT_SECRET;
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use futures::StreamExt;
use kernel::UserId;
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::{build_pool, PgPool, PoolSettings};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Upper bounds on waits; the test moves on as soon as each condition holds.
const STARTUP: Duration = Duration::from_secs(30);
const WITHIN: Duration = Duration::from_secs(60);

/// The killed process's delivery timeout: its lease is 2 × timeout + 10 s
/// (`RelaySettings::lease_for`), which is how long the events it had claimed wait before
/// they are due again.
const DOOMED_TIMEOUT_MS: u64 = 600;
/// How long the failing platform takes to refuse: deliveries are under way this long.
const PLATFORM_DELAY: Duration = Duration::from_millis(250);
/// The restarted process's timeout: the default, so a busy machine causes no retries.
const RESTARTED_TIMEOUT_MS: u64 = 5_000;

const USERS: i64 = 24;
const CHARGE: i64 = 30_000;
/// Requests fired at the server; the kill comes long before they are all answered.
const REQUESTS: usize = 600;
const CONCURRENCY: usize = 24;
/// Orders paid (in the database) before the kill.
const PAID_BEFORE_KILL: i64 = 60;

// ---- the child process ----------------------------------------------------------------

/// `commerce-api serve` as a child process; killed (and reaped) when dropped, so a
/// panicking test leaves no server behind. Its output goes to a file, whose tail is
/// printed if the test panics.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    log: PathBuf,
}

impl Server {
    /// Starts the binary on a free port and waits until it answers `/health/ready`.
    async fn start(db_url: &str, platform_url: &str, timeout_ms: u64, name: &str) -> Server {
        Self::start_with(db_url, platform_url, timeout_ms, name, &[]).await
    }

    /// [`Server::start`] with more settings (`COMMERCE__...` variables).
    pub(crate) async fn start_with(
        db_url: &str,
        platform_url: &str,
        timeout_ms: u64,
        name: &str,
        extra: &[(&str, &str)],
    ) -> Server {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "commerce-crash-{}-{name}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let out = File::create(&log).expect("creating the server log");
        let err = out.try_clone().expect("cloning the log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_commerce-api"));
        // only the settings below: nothing from the environment of the test run
        for (key, _) in std::env::vars() {
            if key.starts_with("COMMERCE") || key == "DATABASE_URL" {
                cmd.env_remove(key);
            }
        }
        cmd.arg("serve")
            .env("COMMERCE__DATABASE__URL", db_url)
            .env("COMMERCE__SERVER__HOST", "127.0.0.1")
            .env("COMMERCE__SERVER__PORT", port.to_string())
            .env("COMMERCE__DATA_PLATFORM__URL", platform_url)
            .env("COMMERCE__DATA_PLATFORM__BACKOFF_BASE_MS", "50")
            .env("COMMERCE__DATA_PLATFORM__BACKOFF_MAX_MS", "200")
            .env(
                "COMMERCE__DATA_PLATFORM__TIMEOUT_MS",
                timeout_ms.to_string(),
            )
            // nothing may go DEAD while the platform refuses
            .env("COMMERCE__DATA_PLATFORM__MAX_ATTEMPTS", "100000")
            .env("RUST_LOG", "warn")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().expect("starting commerce-api serve");
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling the server") {
                panic!("commerce-api serve exited at startup: {status}");
            }
            let ready = client
                .get(format!("{}/health/ready", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "the server never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown code runs, transactions under way die with their connections.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("killing the server");
        self.child.wait().expect("reaping the server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let mut text = String::new();
            let _ = File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "--- last lines of {} ({} lines) ---\n{}",
                self.log.display(),
                lines.len(),
                tail.join("\n")
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("finding a free port")
        .port()
}

// ---- talking to it --------------------------------------------------------------------

/// HTTP to the child; answers are `Err` when the connection dies (the point of the test).
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) client: reqwest::Client,
    keys: std::sync::Arc<JwtKeys>,
}

pub(crate) type Answer = Result<(u16, Value), String>;

impl Api {
    pub(crate) fn new() -> Api {
        Api {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            keys: std::sync::Arc::new(JwtKeys::new(DEV_JWT_SECRET, Duration::from_secs(3600))),
        }
    }

    pub(crate) fn token(&self, caller: Caller) -> String {
        self.keys.mint(caller).unwrap()
    }

    pub(crate) fn user(&self, id: i64) -> String {
        self.token(Caller::User(UserId::try_from(id).unwrap()))
    }

    pub(crate) async fn send(
        &self,
        base: &str,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self
            .client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|e| format!("{e:#}"))?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await.map_err(|e| format!("{e:#}"))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    pub(crate) async fn charge(&self, base: &str, user: i64, amount: i64) -> Answer {
        self.send(
            base,
            Method::POST,
            &format!("/api/v1/users/{user}/balance/charges"),
            &self.user(user),
            Some(json!({"amount": amount, "payment_method": "card"})),
        )
        .await
    }

    async fn place(&self, base: &str, user: i64, items: &Value, pay_now: bool) -> Answer {
        self.send(
            base,
            Method::POST,
            "/api/v1/orders",
            &self.user(user),
            Some(json!({"user_id": user, "items": items, "pay_now": pay_now})),
        )
        .await
    }

    async fn pay(&self, base: &str, user: i64, order: i64) -> Answer {
        self.send(
            base,
            Method::POST,
            &format!("/api/v1/orders/{order}/payment"),
            &self.user(user),
            None,
        )
        .await
    }
}

/// What one unit of the payment run saw.
#[derive(Debug)]
struct Seen {
    /// the statuses of the answers it got
    statuses: Vec<u16>,
    /// the order the server said was PAID, if any
    paid: Option<i64>,
    /// the error if a request never got an answer
    cut_off: Option<String>,
}

/// Unit `i` of the payment run: a `pay_now` order, a placed-then-paid order, or a charge.
async fn unit(api: Api, base: String, i: usize, items: [Value; 2]) -> Seen {
    let user = (i as i64 % USERS) + 1;
    let lines = &items[i % 2];
    let mut seen = Seen {
        statuses: Vec::new(),
        paid: None,
        cut_off: None,
    };
    let first = match i % 10 {
        9 => api.charge(&base, user, 5_000).await,
        3 | 6 => api.place(&base, user, lines, false).await,
        _ => api.place(&base, user, lines, true).await,
    };
    let (status, body) = match first {
        Ok(answer) => answer,
        Err(e) => {
            seen.cut_off = Some(e);
            return seen;
        }
    };
    seen.statuses.push(status);
    if status == 201 && body["status"] == "PAID" {
        seen.paid = body["id"].as_i64();
    }
    if status == 201 && body["status"] == "PENDING" {
        let order = body["id"].as_i64().expect("an order id");
        match api.pay(&base, user, order).await {
            Ok((status, body)) => {
                seen.statuses.push(status);
                if status == 200 && body["status"] == "PAID" {
                    seen.paid = Some(order);
                }
            }
            Err(e) => seen.cut_off = Some(e),
        }
    }
    seen
}

// ---- the database, read directly ------------------------------------------------------

#[derive(QueryableByName)]
struct Problem {
    #[diesel(sql_type = Text)]
    problem: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName, Debug)]
struct EventRow {
    #[diesel(sql_type = BigInt)]
    order_id: i64,
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Text)]
    status: String,
    /// milliseconds from the kill to the row's next attempt (a lease ends long after)
    #[diesel(sql_type = BigInt)]
    due_in_ms: i64,
}

#[derive(QueryableByName, Debug)]
struct OrderRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// The test's own connections carry this name, so the server's can be told apart.
const TEST_APPLICATION: &str = "commerce-crash-test";

/// A small pool on `db` whose connections are named [`TEST_APPLICATION`].
pub(crate) fn test_pool(db: &TestDatabase) -> PgPool {
    let sep = if db.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}application_name={TEST_APPLICATION}", db.url);
    build_pool(&PoolSettings::new(url, 2)).expect("building the test pool")
}

/// Waits until no connection of the killed server is left. A backend that had already
/// received a COMMIT when its client died still commits it, so the database may change
/// for a moment after SIGKILL; once the backends are gone it is final.
pub(crate) async fn wait_for_server_backends_to_exit(pool: &PgPool) {
    let sql = format!(
        "SELECT count(*) AS n FROM pg_stat_activity
         WHERE datname = current_database() AND backend_type = 'client backend'
           AND application_name <> '{TEST_APPLICATION}'"
    );
    let deadline = Instant::now() + WITHIN;
    loop {
        let left = count(pool, &sql).await;
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{left} connections of the killed server remain"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) async fn count(pool: &PgPool, sql: &str) -> i64 {
    let mut conn = pool.get().await.expect("a connection");
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

async fn paid_orders(pool: &PgPool) -> Vec<OrderRow> {
    let mut conn = pool.get().await.expect("a connection");
    diesel::sql_query("SELECT id, total FROM orders WHERE status = 'PAID' ORDER BY id")
        .load(&mut conn)
        .await
        .expect("reading paid orders")
}

async fn outbox(pool: &PgPool, killed_at: chrono::DateTime<chrono::Utc>) -> Vec<EventRow> {
    let mut conn = pool.get().await.expect("a connection");
    diesel::sql_query(
        "SELECT order_id, event_id::text AS event_id, event_type, status, \
                (extract(epoch FROM next_attempt_at - $1) * 1000)::bigint AS due_in_ms \
         FROM outbox_events ORDER BY id",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(killed_at)
    .load(&mut conn)
    .await
    .expect("reading the outbox")
}

/// Every row of every query is a broken invariant, described.
async fn problems(pool: &PgPool, queries: &[&str]) -> Vec<String> {
    let mut conn = pool.get().await.expect("a connection");
    let mut found = Vec::new();
    for sql in queries {
        let rows: Vec<Problem> = diesel::sql_query(*sql)
            .load(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        found.extend(rows.into_iter().map(|r| r.problem));
    }
    found
}

/// The event's `order.paid` row exists if and only if the order is PAID.
const OUTBOX_MATCHES_ORDERS: &[&str] = &[
    "SELECT format('order %s is PAID but has no order.paid event', o.id) AS problem
     FROM orders o WHERE o.status = 'PAID' AND NOT EXISTS
       (SELECT 1 FROM outbox_events e WHERE e.order_id = o.id AND e.event_type = 'order.paid')",
    "SELECT format('order %s has %s order.paid events but is %s', e.order_id, count(*), o.status) AS problem
     FROM outbox_events e LEFT JOIN orders o ON o.id = e.order_id
     WHERE e.event_type = 'order.paid'
     GROUP BY e.order_id, o.status
     HAVING o.status IS DISTINCT FROM 'PAID' OR count(*) <> 1",
];

/// Money: balances equal their history, credit comes only from approved charges, pending
/// credit only from pending charges, and every paid order was debited exactly once.
const MONEY_ADDS_UP: &[&str] = &[
    "SELECT format('user %s: balance %s, but the history sums to %s', u, b, h) AS problem FROM (
       SELECT coalesce(b.user_id, h.user_id) AS u, coalesce(b.balance, 0) AS b, coalesce(h.s, 0) AS h
       FROM balances b FULL JOIN
         (SELECT user_id, sum(amount) AS s FROM balance_history GROUP BY user_id) h
         ON h.user_id = b.user_id) x
     WHERE b <> h",
    "SELECT format('user %s: pending credit %s, but PENDING charges sum to %s', u, p, c) AS problem FROM (
       SELECT coalesce(b.user_id, c.user_id) AS u, coalesce(b.pending_credit, 0) AS p, coalesce(c.s, 0) AS c
       FROM balances b FULL JOIN
         (SELECT user_id, sum(amount) AS s FROM balance_charges WHERE status = 'PENDING' GROUP BY user_id) c
         ON c.user_id = b.user_id) x
     WHERE p <> c",
    "SELECT format('history %s credits %s for charge %s, which is %s for %s', h.id, h.amount, c.id, c.status, c.amount) AS problem
     FROM balance_history h JOIN balance_charges c ON c.id = h.charge_id
     WHERE h.kind = 'CHARGE' AND (c.status <> 'APPROVED' OR c.amount <> h.amount OR c.user_id <> h.user_id)",
    "SELECT format('charge %s is APPROVED but credited nothing', c.id) AS problem
     FROM balance_charges c
     WHERE c.status = 'APPROVED' AND NOT EXISTS (SELECT 1 FROM balance_history h WHERE h.charge_id = c.id)",
    "SELECT format('order %s (%s, total %s): %s payment rows for %s, %s PAYMENT history rows for %s',
                   o.id, o.status, o.total, coalesce(p.n, 0), p.a, coalesce(h.n, 0), h.s) AS problem
     FROM orders o
     LEFT JOIN (SELECT order_id, count(*) AS n, sum(amount) AS a FROM payments GROUP BY order_id) p
       ON p.order_id = o.id
     LEFT JOIN (SELECT order_id, count(*) AS n, sum(amount) AS s FROM balance_history
                WHERE kind = 'PAYMENT' GROUP BY order_id) h
       ON h.order_id = o.id
     WHERE (o.status = 'PAID' AND (p.n IS DISTINCT FROM 1 OR p.a <> o.total
                                   OR h.n IS DISTINCT FROM 1 OR h.s <> -o.total))
        OR (o.status = 'PENDING' AND (p.n IS NOT NULL OR h.n IS NOT NULL))",
    "SELECT format('PAYMENT history %s is for order %s, which does not exist', h.id, h.order_id) AS problem
     FROM balance_history h
     WHERE h.kind = 'PAYMENT' AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = h.order_id)",
];

// ---- the test -------------------------------------------------------------------------

// Invariant: whatever a SIGKILL interrupts, every PAID order has its order.paid event in
// the outbox (same transaction), the money adds up, and after a restart every PAID
// order's event reaches the platform, including those whose deliveries died with the
// process (they are due again when the dead process's lease ends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_paid_order_reaches_the_platform_after_a_sigkill_mid_payments() {
    let started = Instant::now();
    let db = TestDatabase::create().await;
    let pool = test_pool(&db);
    let platform = FakePlatform::start().await;
    platform.fail_next(usize::MAX);
    platform.set_delay(PLATFORM_DELAY);
    let api = Api::new();
    let admin = api.token(Caller::Admin);

    let mut server = Server::start(&db.url, &platform.url, DOOMED_TIMEOUT_MS, "first").await;
    let base = server.base.clone();
    let mut products = BTreeMap::new();
    for (name, price) in [("Crash A", 1_000), ("Crash B", 700)] {
        let (status, body) = api
            .send(
                &base,
                Method::POST,
                "/api/v1/admin/products",
                &admin,
                Some(json!({"name": name, "price": price, "stock": 100_000})),
            )
            .await
            .expect("creating a product");
        assert_eq!(status, 201, "{body}");
        products.insert(body["id"].as_i64().unwrap(), 100_000i64);
    }
    let ids: Vec<i64> = products.keys().copied().collect();
    let items = [
        json!([{"product_id": ids[0], "quantity": 1}]),
        json!([{"product_id": ids[0], "quantity": 1}, {"product_id": ids[1], "quantity": 1}]),
    ];
    let charged: Vec<Answer> = futures::stream::iter(1..=USERS)
        .map(|u| {
            let (api, base) = (api.clone(), base.clone());
            async move { api.charge(&base, u, CHARGE).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(
        charged.iter().all(|a| matches!(a, Ok((201, _)))),
        "{charged:?}"
    );

    // the payment run, in the background
    let run = {
        let (api, base) = (api.clone(), base.clone());
        tokio::spawn(async move {
            futures::stream::iter(0..REQUESTS)
                .map(|i| unit(api.clone(), base.clone(), i, items.clone()))
                .buffer_unordered(CONCURRENCY)
                .collect::<Vec<Seen>>()
                .await
        })
    };

    // kill it mid-run, while a delivery is under way at the platform
    let deadline = Instant::now() + WITHIN;
    loop {
        let paid = count(
            &pool,
            "SELECT count(*) AS n FROM orders WHERE status = 'PAID'",
        )
        .await;
        if paid >= PAID_BEFORE_KILL && platform.in_flight() > 0 {
            break;
        }
        assert!(!run.is_finished(), "the payment run ended before the kill");
        assert!(Instant::now() < deadline, "only {paid} orders paid");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    let killed_at = chrono::Utc::now();
    let killed = Instant::now();
    let seen = run.await.expect("the payment run");
    wait_for_server_backends_to_exit(&pool).await;
    let settled_in = killed.elapsed();

    // what the clients saw: requests in flight at the kill or sent after it got no
    // answer; every answer before it was a success or a business refusal
    let cut_off = seen.iter().filter(|s| s.cut_off.is_some()).count();
    let answered: usize = seen.iter().map(|s| s.statuses.len()).sum();
    let unexpected: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.statuses.iter().any(|c| ![200, 201, 409].contains(c)))
        .collect();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
    assert!(
        cut_off > 0,
        "the kill interrupted nothing ({answered} answers)"
    );
    let confirmed: BTreeSet<i64> = seen.iter().filter_map(|s| s.paid).collect();

    // once the dead server's connections are gone, before anything could repair it: the
    // database is consistent
    let paid = paid_orders(&pool).await;
    let paid_ids: BTreeSet<i64> = paid.iter().map(|o| o.id).collect();
    assert!(
        confirmed.is_subset(&paid_ids),
        "orders confirmed PAID to a client are not PAID: {:?}",
        confirmed.difference(&paid_ids).collect::<Vec<_>>()
    );
    let broken = problems(&pool, OUTBOX_MATCHES_ORDERS).await;
    assert!(broken.is_empty(), "outbox and orders disagree: {broken:#?}");
    let broken = problems(&pool, MONEY_ADDS_UP).await;
    assert!(broken.is_empty(), "the money does not add up: {broken:#?}");
    let mut conn = pool.get().await.unwrap();
    #[derive(QueryableByName)]
    struct Units {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = BigInt)]
        units: i64,
    }
    // stock left + units held by orders that are not cancelled = stock created
    let units: Vec<Units> = diesel::sql_query(
        "SELECT p.id, ((SELECT sum(units) FROM stock_slots s WHERE s.product_id = p.id)
                + coalesce(sum(l.quantity) FILTER (WHERE o.status <> 'CANCELLED'), 0))::bigint AS units
         FROM products p LEFT JOIN order_lines l ON l.product_id = p.id LEFT JOIN orders o ON o.id = l.order_id
         GROUP BY p.id",
    )
    .load(&mut conn)
    .await
    .unwrap();
    drop(conn);
    for u in &units {
        assert_eq!(Some(&u.units), products.get(&u.id), "product {}", u.id);
    }
    let rows = outbox(&pool, killed_at).await;
    // the platform refused everything so far: all deliveries checked below come after
    // the restart; some events were claimed by the dead process, under its lease
    assert!(platform.acknowledged().is_empty());
    let by_status = |status: &str| rows.iter().filter(|r| r.status == status).count();
    assert_eq!(
        (by_status("DELIVERED"), by_status("DEAD")),
        (0, 0),
        "events recorded as delivered (or dead) that the platform never acknowledged"
    );
    let leased: Vec<&EventRow> = rows
        .iter()
        .filter(|r| r.status == "PENDING" && r.due_in_ms > 2_000)
        .collect();
    assert!(
        !leased.is_empty(),
        "no event was claimed by the killed process ({} PENDING)",
        by_status("PENDING")
    );
    let attempts_before = platform.requests().len();

    // restart on the same database with the platform healthy
    platform.fail_next(0);
    platform.set_delay(Duration::ZERO);
    let restarted = Instant::now();
    let server = Server::start(&db.url, &platform.url, RESTARTED_TIMEOUT_MS, "second").await;
    let ready_in = restarted.elapsed();

    let expected: HashMap<i64, &EventRow> = rows
        .iter()
        .filter(|r| r.event_type == "order.paid")
        .map(|r| (r.order_id, r))
        .collect();
    let acked = platform
        .wait_for(
            WITHIN,
            "an order.paid event for every PAID order",
            |acked| {
                let got: BTreeSet<i64> = acked
                    .iter()
                    .filter(|b| b["event_type"] == "order.paid")
                    .filter_map(|b| b["order"]["id"].as_i64())
                    .collect();
                paid_ids.is_subset(&got)
            },
        )
        .await;
    let all_delivered_in = restarted.elapsed();
    let since_kill = killed.elapsed();
    let mut times: HashMap<String, usize> = HashMap::new();
    for body in &acked {
        let order = body["order"]["id"].as_i64().unwrap();
        let row = expected
            .get(&order)
            .unwrap_or_else(|| panic!("an event for order {order}, which is not PAID: {body}"));
        assert_eq!(body["event_id"], row.event_id.as_str(), "{body}");
        assert_eq!(body["order"]["status"], "PAID", "{body}");
        let total = paid.iter().find(|o| o.id == order).unwrap().total;
        assert_eq!(body["order"]["total"], total, "{body}");
        *times.entry(row.event_id.clone()).or_default() += 1;
    }
    assert!(
        times.values().all(|n| *n == 1),
        "delivered more than once: {times:?}"
    );
    for r in platform.requests().iter().filter(|r| r.acknowledged) {
        assert_eq!(
            r.idempotency_key.as_ref(),
            r.body["event_id"].as_str().map(String::from).as_ref()
        );
    }

    // the restarted relay recorded every delivery, and counted them on /metrics
    let deadline = Instant::now() + WITHIN;
    let text = loop {
        let text = api
            .client
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .expect("scraping /metrics")
            .text()
            .await
            .unwrap();
        let pending = count(
            &pool,
            "SELECT count(*) AS n FROM outbox_events WHERE status <> 'DELIVERED'",
        )
        .await;
        if pending == 0 && sample(&text, DELIVERED) == Some(rows.len() as f64) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} events not recorded as DELIVERED; metrics: {text}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(sample(&text, FAILED), None, "{text}");
    let paid_now: BTreeSet<i64> = paid_orders(&pool).await.iter().map(|o| o.id).collect();
    assert_eq!(paid_now, paid_ids, "PAID orders changed after the restart");

    eprintln!(
        "crash: {answered} answers, {cut_off} requests without an answer (in flight at the \
         kill or sent after it); {} orders PAID ({} confirmed to clients); {} events in the \
         outbox, {} under the dead process's lease (due in {}..{} ms); {attempts_before} \
         refused attempts before the kill; its connections gone {settled_in:?} after the \
         kill; restart ready in {ready_in:?}; every event \
         delivered {all_delivered_in:?} after the restart, {since_kill:?} after the kill; \
         whole test {:?}",
        paid_ids.len(),
        confirmed.len(),
        rows.len(),
        leased.len(),
        leased.iter().map(|r| r.due_in_ms).min().unwrap_or(0),
        leased.iter().map(|r| r.due_in_ms).max().unwrap_or(0),
        started.elapsed(),
    );
}
