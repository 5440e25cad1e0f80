//! Balance (points): read, charge through the payment gateway, history.

use crate::auth::UserScope;
use crate::error::{ApiError, Problem, ProblemCode};
use crate::extract::{FieldErrors, Json, ListQuery, ListResponse, Query, TryIntoDomain};
use crate::idempotency::{json_answer, Idempotency, IdempotencyKey};
use crate::metrics::{Event, Metrics};
use crate::routes::{route, RouteSpec};
use crate::state::AppState;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpResponse};
use balance::{ChargeAmount, ChargeError, ChargeReceipt, HistoryEntry, HistoryKind, PaymentMethod};
use kernel::RecordedResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_balance, charge, history),
    components(schemas(ChargeRequest, BalanceView, ChargeView, HistoryView, HistoryKindView))
)]
pub struct Api;

pub fn routes() -> Vec<RouteSpec> {
    vec![
        route(Method::GET, "/users/{user_id}/balance", get_balance),
        route(Method::POST, "/users/{user_id}/balance/charges", charge),
        route(Method::GET, "/users/{user_id}/balance/history", history),
    ]
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeRequest {
    /// won, 1..=10,000,000
    #[schema(example = 10000, minimum = 1, maximum = 10000000)]
    pub amount: i64,
    /// passed to the payment gateway; the sandbox declines `card_declined`
    #[schema(
        example = "card",
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]+$"
    )]
    pub payment_method: String,
}

impl TryIntoDomain for ChargeRequest {
    type Domain = (ChargeAmount, PaymentMethod);
    fn try_into_domain(self) -> Result<(ChargeAmount, PaymentMethod), ApiError> {
        let mut errors = FieldErrors::default();
        let amount = errors.check("amount", ChargeAmount::try_from(self.amount));
        let method = errors.check(
            "payment_method",
            PaymentMethod::try_from(self.payment_method),
        );
        errors.finish(amount.zip(method))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    pub user_id: i64,
    pub balance: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChargeView {
    pub charge_id: i64,
    pub user_id: i64,
    pub amount: i64,
    /// the balance right after this charge
    pub balance: i64,
    #[schema(example = "APPROVED")]
    pub status: &'static str,
    pub gateway_transaction_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    pub id: i64,
    pub kind: HistoryKindView,
    /// the signed change: + for CHARGE and REFUND, - for PAYMENT
    pub amount: i64,
    pub balance_after: i64,
    pub order_id: Option<i64>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What a history row records.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HistoryKindView {
    Charge,
    Payment,
    Refund,
}

impl From<HistoryKind> for HistoryKindView {
    fn from(k: HistoryKind) -> Self {
        match k {
            HistoryKind::Charge => HistoryKindView::Charge,
            HistoryKind::Payment => HistoryKindView::Payment,
            HistoryKind::Refund => HistoryKindView::Refund,
        }
    }
}

impl From<HistoryEntry> for HistoryView {
    fn from(e: HistoryEntry) -> Self {
        HistoryView {
            id: e.id,
            kind: e.kind.into(),
            amount: e.amount,
            balance_after: e.balance_after.won(),
            order_id: e.order_id.map(i64::from),
            created_at: e.created_at,
        }
    }
}

impl From<ChargeError> for ApiError {
    fn from(e: ChargeError) -> Self {
        match e {
            ChargeError::BalanceLimitExceeded => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ProblemCode::BalanceLimitExceeded,
                "the balance would pass 1,000,000,000 won",
            ),
            ChargeError::PaymentDeclined { reason } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                ProblemCode::PaymentDeclined,
                format!("the payment gateway declined: {reason}"),
            ),
            ChargeError::GatewayUnavailable(cause) => ApiError::unavailable(
                ProblemCode::PaymentGatewayUnavailable,
                "the payment gateway did not answer; the charge will be settled when it does",
                cause.into(),
            ),
            ChargeError::Unexpected(e) => ApiError::from(e),
        }
    }
}

/// The user's balance (0 for a user never charged).
#[utoipa::path(get, path = "/api/v1/users/{user_id}/balance", tag = "balance",
    params(("user_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = BalanceView),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn get_balance(
    scope: UserScope,
    state: web::Data<AppState>,
) -> Result<web::Json<BalanceView>, ApiError> {
    let balance = state.charges.balance(scope.user).await?;
    Ok(web::Json(BalanceView {
        user_id: scope.user.get(),
        balance: balance.won(),
    }))
}

/// Charges the balance through the payment gateway; credited only once approved.
#[utoipa::path(post, path = "/api/v1/users/{user_id}/balance/charges", tag = "balance",
    params(("user_id" = i64, Path, minimum = 1),
           IdempotencyKey),
    request_body = ChargeRequest,
    responses((status = 201, body = ChargeView),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 402, description = "PAYMENT_DECLINED: the gateway refused; balance unchanged", body = Problem),
              (status = 409, description = "REQUEST_IN_PROGRESS", body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 422, description = "VALIDATION_ERROR (amount outside 1..=10,000,000), BALANCE_LIMIT_EXCEEDED, IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "PAYMENT_GATEWAY_UNAVAILABLE, SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn charge(
    scope: UserScope,
    idempotency: Idempotency,
    body: Json<ChargeRequest>,
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let (amount, method) = body.try_into_domain()?;
    let receipt = state
        .charges
        .charge(
            scope.user,
            amount,
            method,
            idempotency.completion(charge_approved),
        )
        .await?;
    metrics.count(Event::ChargeApproved);
    Ok(idempotency.respond(charge_approved(&receipt)))
}

/// The answer to an approved charge: 201 with its receipt.
fn charge_approved(receipt: &ChargeReceipt) -> RecordedResponse {
    json_answer(
        StatusCode::CREATED,
        None,
        &ChargeView {
            charge_id: receipt.charge_id.get(),
            user_id: receipt.user_id.get(),
            amount: receipt.amount.won(),
            balance: receipt.balance.won(),
            status: "APPROVED",
            gateway_transaction_id: receipt.gateway_transaction_id.0.clone(),
        },
    )
}

/// Every balance change, newest first.
#[utoipa::path(get, path = "/api/v1/users/{user_id}/balance/history", tag = "balance",
    params(("user_id" = i64, Path, minimum = 1), ListQuery),
    responses((status = 200, body = ListResponse<HistoryView>),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn history(
    scope: UserScope,
    query: Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<ListResponse<HistoryView>>, ApiError> {
    let page = state.charges.history(scope.user, query.page()?).await?;
    Ok(web::Json(ListResponse::from_page(page, HistoryView::from)))
}
