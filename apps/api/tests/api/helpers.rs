//! `spawn_app()`: the real application on a random port with a fresh database.

use actix_web::dev::ServerHandle;
use commerce_api::auth::{Caller, JwtKeys};
use commerce_api::config::Settings;
use commerce_api::startup::{Application, RunMode};
use kernel::UserId;
use postgres_adapter::testing::TestDatabase;
use postgres_adapter::testing_proxy::{postgres_addr, TcpProxy};
use postgres_adapter::PgPool;
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub keys: Arc<JwtKeys>,
    handle: ServerHandle,
    /// Kept last: the database outlives the server.
    pub db: Arc<TestDatabase>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app after `configure` adjusts its settings.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = Arc::new(TestDatabase::create().await);
    spawn_on(db, configure).await
}

/// An app on a fresh database that it reaches through a TCP proxy the test can stall or
/// break, with every database wait bounded at 1 s and a pool of 4.
pub async fn spawn_behind_proxy() -> (TestApp, TcpProxy) {
    let db = Arc::new(TestDatabase::create().await);
    let proxy = TcpProxy::start(postgres_addr(&db.url).expect("a host:port database URL"))
        .await
        .expect("starting the proxy");
    let url = proxy.postgres_url(&db.url);
    let app = spawn_on(db, |s| {
        s.database.url = url;
        s.database.timeout_ms = 1_000;
        s.database.pool_size = 4;
    })
    .await;
    (app, proxy)
}

/// Spawns an app on an existing database (a second instance sharing it).
pub async fn spawn_on(db: Arc<TestDatabase>, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::load_from(&[]).expect("default settings");
    settings.server.port = 0;
    settings.database.url = db.url.clone();
    settings.database.pool_size = 10;
    settings.jobs.enabled = false;
    configure(&mut settings);
    let app = Application::build(settings.clone(), RunMode::Embedded)
        .await
        .expect("building the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let keys = Arc::new(JwtKeys::new(
        &settings.auth.jwt_secret,
        Duration::from_secs(3600),
    ));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        keys,
        handle,
        db,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

/// A response read whole: status, headers, JSON body (Null when not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn read(res: Response) -> Reply {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("reading a body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["title"].is_string()
                && self.body["type"].is_string()
                && self.body["detail"].is_string()
        );
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn user_token(&self, id: i64) -> String {
        self.keys
            .mint(Caller::User(UserId::try_from(id).unwrap()))
            .unwrap()
    }

    pub fn admin_token(&self) -> String {
        self.keys.mint(Caller::Admin).unwrap()
    }

    /// A pool on the app's database, for checking what the API cannot show.
    pub fn pool(&self) -> PgPool {
        self.db.pool(2)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        self.send(method, path, token, body, &[]).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Reply::read(req.send().await.expect("sending a request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.request(Method::POST, path, token, Some(body)).await
    }

    /// Charges `user` through the API as that user; panics unless 201.
    pub async fn charge(&self, user: i64, amount: i64) -> Reply {
        let r = self
            .post(
                &format!("/api/v1/users/{user}/balance/charges"),
                Some(&self.user_token(user)),
                &serde_json::json!({"amount": amount, "payment_method": "card"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r
    }

    /// Every page of a list endpoint, following `next_cursor`.
    pub async fn get_all(&self, path: &str, token: Option<&str>, limit: u32) -> Vec<Value> {
        let mut items = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut next = format!("{path}{sep}limit={limit}");
        loop {
            let r = self.get(&next, token).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            items.extend(r.body["items"].as_array().expect("items").iter().cloned());
            match r.body["next_cursor"].as_str() {
                Some(c) => next = format!("{path}{sep}limit={limit}&cursor={c}"),
                None => return items,
            }
        }
    }
}

impl TestApp {
    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Creates a product as admin; panics unless 201. Returns the `Product` JSON.
    pub async fn create_product(&self, name: &str, price: i64, stock: i64) -> Value {
        let r = self
            .post(
                "/api/v1/admin/products",
                Some(&self.admin_token()),
                &serde_json::json!({"name": name, "price": price, "stock": stock}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    /// Creates a product as admin and returns its id.
    pub async fn product_id(&self, name: &str, price: i64, stock: i64) -> i64 {
        self.create_product(name, price, stock).await["id"]
            .as_i64()
            .expect("a product id")
    }

    /// The product as the public endpoint shows it; panics unless 200.
    pub async fn product(&self, id: i64) -> Value {
        let r = self.get(&format!("/api/v1/products/{id}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }
}

/// A coupon body (10% off, unlimited, valid from an hour ago for a day) with
/// `overrides` merged over it.
pub fn coupon_body(overrides: Value) -> Value {
    let now = chrono::Utc::now();
    let mut body = serde_json::json!({
        "name": "Test coupon",
        "discount_type": "PERCENT",
        "discount_value": 10,
        "valid_from": (now - chrono::Duration::hours(1)).to_rfc3339(),
        "valid_until": (now + chrono::Duration::days(1)).to_rfc3339(),
    });
    if let (Some(b), Some(o)) = (body.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

/// Creates a coupon as admin from [`coupon_body`]`(overrides)`; panics unless 201.
/// Returns the `Coupon` JSON.
pub async fn create_coupon(app: &TestApp, overrides: Value) -> Value {
    let r = app
        .post(
            "/api/v1/admin/coupons",
            Some(&app.admin_token()),
            &coupon_body(overrides),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

/// `POST /coupons/{coupon}/issues` for `user`, as that user.
pub async fn issue_coupon(app: &TestApp, coupon: i64, user: i64) -> Reply {
    app.post(
        &format!("/api/v1/coupons/{coupon}/issues"),
        Some(&app.user_token(user)),
        &serde_json::json!({ "user_id": user }),
    )
    .await
}

// ---- the data platform -------------------------------------------------------------

/// One request the fake data platform received.
#[derive(Debug, Clone)]
pub struct PlatformRequest {
    pub idempotency_key: Option<String>,
    pub body: Value,
    /// the body byte for byte, and every header (to verify signatures)
    pub raw_body: Vec<u8>,
    pub headers: http::HeaderMap,
    /// whether it was answered with a 2xx
    pub acknowledged: bool,
}

/// How the fake platform answers one request (see [`FakePlatform::answer_next`]).
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// this status at once
    Status(u16),
    /// 200 after this long (longer than the relay's timeout: no answer)
    Hang(Duration),
}

/// One request as it arrived, and when its answer is (or was) sent.
struct Arrival {
    request: PlatformRequest,
    event_id: String,
    status: u16,
    answered_at: std::time::Instant,
}

impl Arrival {
    fn answered(&self) -> bool {
        self.answered_at <= std::time::Instant::now()
    }
}

#[derive(Default)]
struct PlatformState {
    /// answers to the next requests, in order, before anything else
    script: std::collections::VecDeque<Answer>,
    /// answer 503 to this many of the next requests
    fail_next: usize,
    /// how long each answer takes
    delay: Duration,
    /// in arrival order
    arrivals: Vec<Arrival>,
    /// times an event arrived while another request for it was still being answered
    overlaps: usize,
}

/// Answers each request as the state says, and records it (wiremock sends the answer
/// after its delay).
struct Scripted(Arc<std::sync::Mutex<PlatformState>>);

impl wiremock::Respond for Scripted {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let event_id = body["event_id"].as_str().unwrap_or_default().to_string();
        let mut s = self.0.lock().unwrap();
        if s.arrivals
            .iter()
            .any(|a| a.event_id == event_id && !a.answered())
        {
            s.overlaps += 1;
        }
        let (status, delay) = match s.script.pop_front() {
            Some(Answer::Status(code)) => (code, s.delay),
            Some(Answer::Hang(d)) => (200, d),
            None if s.fail_next > 0 => {
                s.fail_next -= 1;
                (503, s.delay)
            }
            None => (200, s.delay),
        };
        s.arrivals.push(Arrival {
            request: PlatformRequest {
                idempotency_key: request
                    .headers
                    .get("Idempotency-Key")
                    .and_then(|v| v.to_str().ok())
                    .map(String::from),
                body,
                raw_body: request.body.clone(),
                headers: request.headers.clone(),
                acknowledged: false,
            },
            event_id,
            status,
            answered_at: std::time::Instant::now() + delay,
        });
        wiremock::ResponseTemplate::new(status).set_delay(delay)
    }
}

/// A recording data platform on a real port (wiremock): `POST /events`, programmable to
/// refuse (503) the next N requests, to answer as scripted, or slowly.
#[derive(Clone)]
pub struct FakePlatform {
    pub url: String,
    state: Arc<std::sync::Mutex<PlatformState>>,
    _server: Arc<wiremock::MockServer>,
}

impl FakePlatform {
    pub async fn start() -> FakePlatform {
        Self::start_on(0).await
    }

    /// Starts on a given port (0: any); used to bring a "down" platform back up.
    pub async fn start_on(port: u16) -> FakePlatform {
        let state: Arc<std::sync::Mutex<PlatformState>> = Arc::default();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .expect("binding the fake data platform");
        let server = wiremock::MockServer::builder()
            .listener(listener)
            .start()
            .await;
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .and(wiremock::matchers::path("/events"))
            .respond_with(Scripted(state.clone()))
            .mount(&server)
            .await;
        FakePlatform {
            url: server.uri(),
            state,
            _server: Arc::new(server),
        }
    }

    /// A port where nothing listens (yet): a platform that is down.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("finding a free port")
            .port()
    }

    pub fn fail_next(&self, n: usize) {
        self.state.lock().unwrap().fail_next = n;
    }

    /// Answers the next requests as scripted, one answer each, before `fail_next`.
    pub fn answer_next(&self, answers: &[Answer]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().copied());
    }

    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Every request, in arrival order; `acknowledged` once a 2xx answer was sent.
    pub fn requests(&self) -> Vec<PlatformRequest> {
        let s = self.state.lock().unwrap();
        s.arrivals
            .iter()
            .map(|a| PlatformRequest {
                acknowledged: a.answered() && (200..300).contains(&a.status),
                ..a.request.clone()
            })
            .collect()
    }

    /// Acknowledged event bodies, in the order they were acknowledged.
    pub fn acknowledged(&self) -> Vec<Value> {
        let s = self.state.lock().unwrap();
        let mut acked: Vec<&Arrival> = s
            .arrivals
            .iter()
            .filter(|a| a.answered() && (200..300).contains(&a.status))
            .collect();
        acked.sort_by_key(|a| a.answered_at);
        acked.into_iter().map(|a| a.request.body.clone()).collect()
    }

    pub fn overlaps(&self) -> usize {
        self.state.lock().unwrap().overlaps
    }

    /// Requests being answered right now (received, not yet answered).
    pub fn in_flight(&self) -> usize {
        let s = self.state.lock().unwrap();
        s.arrivals.iter().filter(|a| !a.answered()).count()
    }

    /// Polls until `done` holds for the acknowledged bodies, or panics after `within`.
    pub async fn wait_for(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let acked = self.acknowledged();
            if done(&acked) {
                return acked;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; acknowledged so far: {acked:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The app with its background jobs running and the relay pointed at `platform_url`,
/// with small, fast retry settings (tests adjust them in `configure`).
pub async fn spawn_app_with_platform(
    platform_url: &str,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let db = Arc::new(TestDatabase::create().await);
    spawn_relaying_on(db, platform_url, configure).await
}

/// Another relaying instance on an existing database.
pub async fn spawn_relaying_on(
    db: Arc<TestDatabase>,
    platform_url: &str,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let url = platform_url.to_string();
    spawn_on(db, move |s| {
        s.jobs.enabled = true;
        s.data_platform.url = url;
        s.data_platform.timeout_ms = 2_000;
        s.data_platform.backoff_base_ms = 20;
        s.data_platform.backoff_max_ms = 200;
        configure(s);
    })
    .await
}

impl TestApp {
    /// Stops the server gracefully, as SIGTERM would; its background jobs stop after it.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}
