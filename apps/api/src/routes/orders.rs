//! Orders and payment: place (optionally paying at once), read, list, pay, cancel; and
//! the best sellers of the catalogue.

use crate::auth::{Caller, UserScope};
use crate::error::{ApiError, FieldError, Problem, ProblemCode};
use crate::extract::{Json, ListQuery, ListResponse, PathId};
use crate::idempotency::IdempotencyKey;
use crate::metrics::{Event, Metrics};
use crate::routes::products::{out_of_stock, product_not_found};
use crate::routes::{route, RouteSpec};
use crate::state::AppState;
use actix_web::http::{header, Method};
use actix_web::{web, HttpResponse};
use kernel::{CouponId, OrderId, ProductId, Quantity, UserId};
use order::{CancelOrderError, LineRequest, OrderStatus, PlaceOrder, PlaceOrderError};
use payment::PayOrderError;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        place_order,
        get_order,
        list_user_orders,
        pay_order,
        cancel_order,
        popular_products
    ),
    components(schemas(
        PlaceOrderRequest,
        OrderItemRequest,
        OrderDoc,
        OrderLineDoc,
        OrderPaymentDoc,
        PopularItem,
        PopularList
    ))
)]
pub struct Api;

/// `GET /products/popular` ([`popular_products`]) is in [`super::products::routes`],
/// which must register it before `/products/{id}`.
pub fn routes() -> Vec<RouteSpec> {
    vec![
        route(Method::POST, "/orders", place_order),
        route(Method::GET, "/orders/{order_id}", get_order),
        route(Method::POST, "/orders/{order_id}/payment", pay_order),
        route(Method::POST, "/orders/{order_id}/cancel", cancel_order),
        route(Method::GET, "/users/{user_id}/orders", list_user_orders),
    ]
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    #[schema(minimum = 1)]
    pub user_id: i64,
    /// 1..=50 lines with distinct products
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<OrderItemRequest>,
    #[schema(minimum = 1)]
    pub coupon_id: Option<i64>,
    /// place and pay in one step; without enough balance nothing is created
    #[serde(default)]
    pub pay_now: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemRequest {
    #[schema(minimum = 1)]
    pub product_id: i64,
    /// 1..=1000
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i64,
}

/// `Order` as documented (the handlers serialise `order::Order`, which has this shape).
#[derive(ToSchema)]
#[schema(as = Order)]
#[allow(dead_code)]
pub struct OrderDoc {
    id: i64,
    user_id: i64,
    #[schema(example = "PENDING")]
    /// PENDING, PAID or CANCELLED
    status: String,
    items: Vec<OrderLineDoc>,
    subtotal: i64,
    discount: i64,
    total: i64,
    coupon_id: Option<i64>,
    created_at: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
    paid_at: Option<chrono::DateTime<chrono::Utc>>,
    cancelled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// USER_REQUEST or EXPIRED
    cancel_reason: Option<String>,
    payment: Option<OrderPaymentDoc>,
}

#[derive(ToSchema)]
#[schema(as = OrderLine)]
#[allow(dead_code)]
pub struct OrderLineDoc {
    product_id: i64,
    name: String,
    unit_price: i64,
    quantity: i64,
    subtotal: i64,
}

#[derive(ToSchema)]
#[schema(as = OrderPayment)]
#[allow(dead_code)]
pub struct OrderPaymentDoc {
    id: i64,
    amount: i64,
    /// PAID or REFUNDED
    status: String,
    paid_at: chrono::DateTime<chrono::Utc>,
    refunded_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl PlaceOrderRequest {
    fn into_command(self) -> Result<PlaceOrder, ApiError> {
        let mut errors = Vec::new();
        let user = UserId::try_from(self.user_id)
            .map_err(|_| errors.push(FieldError::new("user_id", "must be a positive id")))
            .ok();
        let coupon = match self.coupon_id {
            Some(c) => CouponId::try_from(c)
                .map(Some)
                .map_err(|_| errors.push(FieldError::new("coupon_id", "must be a positive id")))
                .unwrap_or(None),
            None => None,
        };
        let mut lines = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            let product = ProductId::try_from(item.product_id)
                .map_err(|_| {
                    errors.push(FieldError::new(
                        format!("items[{i}].product_id"),
                        "must be a positive id",
                    ))
                })
                .ok();
            let quantity = Quantity::try_from(item.quantity)
                .ok()
                .filter(|q| q.get() <= order::MAX_LINE_QUANTITY)
                .or_else(|| {
                    errors.push(FieldError::new(
                        format!("items[{i}].quantity"),
                        "must be between 1 and 1000",
                    ));
                    None
                });
            if let (Some(product_id), Some(quantity)) = (product, quantity) {
                lines.push(LineRequest {
                    product_id,
                    quantity,
                });
            }
        }
        let Some(user) = user else {
            return Err(ApiError::validation(errors));
        };
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        PlaceOrder::new(user, lines, coupon, self.pay_now).map_err(|problems| {
            ApiError::validation(
                problems
                    .into_iter()
                    .map(|p| FieldError::new(p.field, p.message))
                    .collect(),
            )
        })
    }
}

fn insufficient(balance: kernel::Money, required: kernel::Money) -> ApiError {
    ApiError::conflict(
        ProblemCode::InsufficientBalance,
        format!(
            "the balance ({} won) does not cover the total ({} won)",
            balance.won(),
            required.won()
        ),
    )
    .with("balance", balance.won())
    .with("required", required.won())
}

impl From<PlaceOrderError> for ApiError {
    fn from(e: PlaceOrderError) -> Self {
        match e {
            PlaceOrderError::ProductNotFound { product_ids } => product_not_found(&product_ids),
            PlaceOrderError::OutOfStock { product_ids } => out_of_stock(&product_ids),
            PlaceOrderError::CouponNotFound => ApiError::not_found(ProblemCode::CouponNotFound, "no such coupon"),
            PlaceOrderError::CouponNotUsable => ApiError::conflict(
                ProblemCode::CouponNotUsable,
                "the coupon is not yours, already used, outside its validity window, or the subtotal is below its minimum",
            ),
            PlaceOrderError::InsufficientBalance { balance, required } => insufficient(balance, required),
            PlaceOrderError::Unexpected(e) => ApiError::from(e),
        }
    }
}

impl From<PayOrderError> for ApiError {
    fn from(e: PayOrderError) -> Self {
        match e {
            PayOrderError::NotFound => {
                ApiError::not_found(ProblemCode::OrderNotFound, "no such order")
            }
            PayOrderError::InvalidState(s) => ApiError::conflict(
                ProblemCode::InvalidOrderState,
                format!("a {} order cannot be paid", s.as_str()),
            ),
            PayOrderError::Expired => ApiError::conflict(
                ProblemCode::OrderExpired,
                "the order expired before it was paid",
            ),
            PayOrderError::InsufficientBalance { balance, required } => {
                insufficient(balance, required)
            }
            PayOrderError::Unexpected(e) => ApiError::from(e),
        }
    }
}

impl From<CancelOrderError> for ApiError {
    fn from(e: CancelOrderError) -> Self {
        match e {
            CancelOrderError::NotFound => {
                ApiError::not_found(ProblemCode::OrderNotFound, "no such order")
            }
            CancelOrderError::InvalidState(s) => ApiError::conflict(
                ProblemCode::InvalidOrderState,
                format!("a {} order cannot be cancelled", s.as_str()),
            ),
            CancelOrderError::Unexpected(e) => ApiError::from(e),
        }
    }
}

/// Loads an order the caller may see: 404 when missing, 403 when another user's.
fn order_not_found() -> ApiError {
    ApiError::not_found(ProblemCode::OrderNotFound, "no such order")
}

/// The order `id`, if the caller may act on that order: 404 when it does not exist,
/// 403 when it is another user's. One cheap read (the owner only).
async fn owned_order_id(
    state: &AppState,
    caller: Caller,
    id: OrderId,
) -> Result<OrderId, ApiError> {
    let owner = state.orders.owner(id).await?.ok_or_else(order_not_found)?;
    caller.ensure_may_act_for(owner)?;
    Ok(id)
}

/// Places an order: reserves stock, uses the coupon, prices it, saves it PENDING (or
/// PAID with `pay_now`), all or nothing.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders",
    params(IdempotencyKey),
    request_body = PlaceOrderRequest,
    responses((status = 201, body = OrderDoc, headers(("Location" = String, description = "/api/v1/orders/{id}")),
               links(("GetOrder" = (operation_id = "get_order", parameters(("order_id" = "$response.body#/id")))),
                     ("PayOrder" = (operation_id = "pay_order", parameters(("order_id" = "$response.body#/id")))),
                     ("CancelOrder" = (operation_id = "cancel_order", parameters(("order_id" = "$response.body#/id")))))),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, description = "PRODUCT_NOT_FOUND (with product_ids), COUPON_NOT_FOUND", body = Problem),
              (status = 409, description = "OUT_OF_STOCK (with product_ids), COUPON_NOT_USABLE, INSUFFICIENT_BALANCE (pay_now), REQUEST_IN_PROGRESS", body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 422, description = "VALIDATION_ERROR, IDEMPOTENCY_KEY_REUSED", body = Problem)),
    security(("bearer" = [])))]
pub async fn place_order(
    caller: Caller,
    body: Json<PlaceOrderRequest>,
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let command = body.into_inner().into_command()?;
    caller.ensure_may_act_for(command.user_id())?;
    let order = state.orders.place(command).await?;
    metrics.count(Event::OrderPlaced);
    if order.status == OrderStatus::Paid {
        metrics.count(Event::OrderPaid);
    }
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/orders/{}", order.id)))
        .json(order))
}

#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "orders",
    params(("order_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = OrderDoc), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, description = "ORDER_NOT_FOUND", body = Problem)),
    security(("bearer" = [])))]
pub async fn get_order(
    caller: Caller,
    id: PathId<OrderId>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = id.get();
    let order = state.orders.get(id).await?.ok_or_else(order_not_found)?;
    caller.ensure_may_act_for(order.user_id)?;
    Ok(HttpResponse::Ok().json(order))
}

/// The user's orders, newest first.
#[utoipa::path(get, path = "/api/v1/users/{user_id}/orders", tag = "orders",
    params(("user_id" = i64, Path, minimum = 1), ListQuery),
    responses((status = 200, body = ListResponse<OrderDoc>), (status = 400, body = Problem),
              (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_user_orders(
    scope: UserScope,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .orders
        .list_for_user(scope.user, query.page()?)
        .await?;
    Ok(HttpResponse::Ok().json(ListResponse::from_page(page, |o| o)))
}

/// Pays a PENDING order from the balance.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/payment", tag = "orders",
    params(("order_id" = i64, Path, minimum = 1),
           IdempotencyKey),
    responses((status = 200, body = OrderDoc), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, description = "ORDER_NOT_FOUND", body = Problem),
              (status = 409, description = "INSUFFICIENT_BALANCE, INVALID_ORDER_STATE, ORDER_EXPIRED, REQUEST_IN_PROGRESS", body = Problem),
              (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = Problem)),
    security(("bearer" = [])))]
pub async fn pay_order(
    caller: Caller,
    id: PathId<OrderId>,
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let id = owned_order_id(&state, caller, id.get()).await?;
    let paid = state.payments.pay(id).await?;
    metrics.count(Event::OrderPaid);
    Ok(HttpResponse::Ok().json(paid))
}

/// Cancels an order: stock and coupon come back; a paid order is also refunded.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/cancel", tag = "orders",
    params(("order_id" = i64, Path, minimum = 1),
           IdempotencyKey),
    responses((status = 200, body = OrderDoc), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, description = "ORDER_NOT_FOUND", body = Problem),
              (status = 409, description = "INVALID_ORDER_STATE, REQUEST_IN_PROGRESS", body = Problem),
              (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = Problem)),
    security(("bearer" = [])))]
pub async fn cancel_order(
    caller: Caller,
    id: PathId<OrderId>,
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let id = owned_order_id(&state, caller, id.get()).await?;
    let cancelled = state.orders.cancel(id).await?;
    metrics.count(Event::OrderCancelled);
    Ok(HttpResponse::Ok().json(cancelled))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PopularQuery {
    /// look back this many days, 1..=30 (default 3)
    #[param(minimum = 1, maximum = 30)]
    pub days: Option<i64>,
    /// 1..=100 (default 5)
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PopularItem {
    pub product: crate::routes::products::ProductView,
    pub sold_quantity: i64,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PopularList {
    pub items: Vec<PopularItem>,
}

/// Most units sold in orders paid (and not cancelled) in the last `days` days; ties by
/// product id.
#[utoipa::path(get, path = "/api/v1/products/popular", tag = "products",
    params(PopularQuery),
    responses((status = 200, body = PopularList), (status = 400, body = Problem)))]
pub async fn popular_products(
    query: web::Query<PopularQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<PopularList>, ApiError> {
    let days = query.days.unwrap_or(3);
    let limit = query.limit.unwrap_or(5);
    if !(1..=i64::from(order::service::MAX_POPULAR_DAYS)).contains(&days) {
        return Err(ApiError::bad_request("days", "must be between 1 and 30"));
    }
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit", "must be between 1 and 100"));
    }
    let sales = state.orders.best_sellers(days as u32, limit).await?;
    Ok(web::Json(PopularList {
        items: sales
            .into_iter()
            .map(|s| PopularItem {
                product: s.product.into(),
                sold_quantity: s.sold_quantity,
            })
            .collect(),
    }))
}
