//! Orders and payment: place (optionally paying at once, optionally from the cart),
//! read, list, search (admin), pay, cancel, refund part; and the best sellers of the
//! catalogue.

use crate::auth::{Admin, Caller, UserScope};
use crate::error::{ApiError, FieldError, Problem, ProblemCode};
use crate::extract::{FieldErrors, Json, ListQuery, ListResponse, PathId, Query, TryIntoDomain};
use crate::idempotency::{json_answer, Idempotency, IdempotencyKey};
use crate::metrics::{Event, Metrics};
use crate::routes::products::{out_of_stock, product_not_found};
use crate::routes::{route, RouteSpec};
use crate::state::AppState;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpResponse};
use kernel::{CouponId, OrderId, ProductId, Quantity, RecordedResponse, UserId};
use order::plan::RefundRequest;
use order::{
    CancelOrderError, LineRequest, Order, OrderFilter, OrderStatus, PayOrderError, PlaceOrder,
    PlaceOrderError, Refund, RefundItem, RefundOrderError,
};
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
        refund_order,
        search_orders,
        popular_products
    ),
    components(schemas(
        PlaceOrderRequest,
        OrderItemRequest,
        RefundOrderRequest,
        OrderDoc,
        OrderLineDoc,
        OrderPaymentDoc,
        RefundDoc,
        RefundItemDoc,
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
        route(Method::POST, "/orders/{order_id}/refunds", refund_order),
        route(Method::GET, "/users/{user_id}/orders", list_user_orders),
        route(Method::GET, "/admin/orders", search_orders),
    ]
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    #[schema(minimum = 1)]
    pub user_id: i64,
    /// 1..=50 lines with distinct products (or `from_cart: true` instead)
    #[schema(min_items = 1, max_items = 50)]
    pub items: Option<Vec<OrderItemRequest>>,
    /// order the lines of the user's cart instead of `items` (an empty cart: 422)
    #[serde(default)]
    pub from_cart: bool,
    #[schema(minimum = 1)]
    pub coupon_id: Option<i64>,
    /// place and pay in one step; without enough balance nothing is created
    #[serde(default)]
    pub pay_now: bool,
}

/// A partial refund: units of products of the order, and why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundOrderRequest {
    /// 1..=50 lines with distinct products of the order
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<OrderItemRequest>,
    /// at most 200 characters
    #[schema(max_length = 200)]
    pub reason: Option<String>,
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

/// `Order` as documented. What is sent is `order::Order`'s serialisation (the same body
/// the outbox events carry): the one wire format, which
/// `tests::the_documented_order_and_refund_are_what_is_sent` holds this schema equal to.
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
    /// partial refunds, oldest first
    refunds: Vec<RefundDoc>,
    /// what the partial refunds gave back so far
    refunded_total: i64,
}

/// `Refund` as documented; held equal to `order::Refund`'s serialisation (see [`OrderDoc`]).
#[derive(ToSchema)]
#[schema(as = Refund)]
#[allow(dead_code)]
pub struct RefundDoc {
    id: i64,
    order_id: i64,
    items: Vec<RefundItemDoc>,
    /// given back to the balance: floor(total × value / subtotal); the last refund takes the rest
    amount: i64,
    reason: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(ToSchema)]
#[schema(as = RefundItem)]
#[allow(dead_code)]
pub struct RefundItemDoc {
    product_id: i64,
    quantity: i64,
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

/// Request lines as domain lines, every bad field named.
fn lines_of(items: &[OrderItemRequest], errors: &mut FieldErrors) -> Vec<LineRequest> {
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let product = ProductId::try_from(item.product_id)
            .map_err(|_| errors.push(format!("items[{i}].product_id"), "must be a positive id"))
            .ok();
        let quantity = Quantity::try_from(item.quantity)
            .ok()
            .filter(|q| q.get() <= order::MAX_LINE_QUANTITY)
            .or_else(|| {
                errors.push(format!("items[{i}].quantity"), "must be between 1 and 1000");
                None
            });
        if let (Some(product_id), Some(quantity)) = (product, quantity) {
            lines.push(LineRequest {
                product_id,
                quantity,
            });
        }
    }
    lines
}

fn invalid_fields(problems: Vec<order::InvalidField>) -> ApiError {
    ApiError::validation(
        problems
            .into_iter()
            .map(|p| FieldError::new(p.field, p.message))
            .collect(),
    )
}

impl TryIntoDomain for PlaceOrderRequest {
    type Domain = PlaceOrder;
    fn try_into_domain(self) -> Result<PlaceOrder, ApiError> {
        let mut errors = FieldErrors::default();
        let user = UserId::try_from(self.user_id)
            .map_err(|_| errors.push("user_id", "must be a positive id"))
            .ok();
        let coupon = match self.coupon_id {
            Some(c) => CouponId::try_from(c)
                .map(Some)
                .map_err(|_| errors.push("coupon_id", "must be a positive id"))
                .unwrap_or(None),
            None => None,
        };
        let lines = match (&self.items, self.from_cart) {
            (Some(items), false) => Some(lines_of(items, &mut errors)),
            (None, true) => None,
            (Some(_), true) => {
                errors.push(
                    "from_cart",
                    "give either items or from_cart: true, not both",
                );
                None
            }
            (None, false) => {
                errors.push("items", "required (or from_cart: true to order the cart)");
                None
            }
        };
        let Some(user) = user.filter(|_| errors.is_empty()) else {
            return errors.finish(None);
        };
        match lines {
            Some(lines) => {
                PlaceOrder::new(user, lines, coupon, self.pay_now).map_err(invalid_fields)
            }
            None => Ok(PlaceOrder::from_cart(user, coupon, self.pay_now)),
        }
    }
}

impl TryIntoDomain for RefundOrderRequest {
    type Domain = RefundRequest;
    fn try_into_domain(self) -> Result<RefundRequest, ApiError> {
        let mut errors = FieldErrors::default();
        let items: Vec<RefundItem> = lines_of(&self.items, &mut errors)
            .into_iter()
            .map(|l| RefundItem {
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect();
        if !errors.is_empty() {
            return errors.finish(None);
        }
        RefundRequest::new(items, self.reason).map_err(invalid_fields)
    }
}

fn insufficient(e: balance::InsufficientBalance) -> ApiError {
    let (balance, required) = (e.balance, e.required);
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
            PlaceOrderError::PurchaseLimitExceeded { product_ids } => ApiError::conflict(
                ProblemCode::PurchaseLimitExceeded,
                "the order would pass the purchase limit (max_per_user) of these products",
            )
            .with(
                "product_ids",
                product_ids.iter().map(|p| p.get()).collect::<Vec<_>>(),
            ),
            PlaceOrderError::CouponNotFound => {
                ApiError::not_found(ProblemCode::CouponNotFound, "no such coupon")
            }
            PlaceOrderError::CouponNotUsable(reason) => ApiError::conflict(
                ProblemCode::CouponNotUsable,
                format!("the coupon cannot be used for this order: {reason}"),
            )
            .with("reason", reason.code()),
            PlaceOrderError::InsufficientBalance(e) => insufficient(e),
            PlaceOrderError::EmptyCart => {
                ApiError::validation(vec![FieldError::new("from_cart", "the cart is empty")])
            }
            PlaceOrderError::InvalidCart(problems) => ApiError::validation(
                problems
                    .into_iter()
                    .map(|p| FieldError::new(format!("from_cart ({})", p.field), p.message))
                    .collect(),
            ),
            PlaceOrderError::Unexpected(e) => ApiError::from(e),
        }
    }
}

fn forbidden_order() -> ApiError {
    ApiError::forbidden("this order belongs to another user")
}

impl From<PayOrderError> for ApiError {
    fn from(e: PayOrderError) -> Self {
        match e {
            PayOrderError::NotFound => order_not_found(),
            PayOrderError::Forbidden => forbidden_order(),
            PayOrderError::InvalidState(s) => ApiError::conflict(
                ProblemCode::InvalidOrderState,
                format!("a {} order cannot be paid", s.as_str()),
            ),
            PayOrderError::Expired => ApiError::conflict(
                ProblemCode::OrderExpired,
                "the order expired before it was paid",
            ),
            PayOrderError::InsufficientBalance(e) => insufficient(e),
            PayOrderError::Unexpected(e) => ApiError::from(e),
        }
    }
}

impl From<CancelOrderError> for ApiError {
    fn from(e: CancelOrderError) -> Self {
        match e {
            CancelOrderError::NotFound => order_not_found(),
            CancelOrderError::Forbidden => forbidden_order(),
            CancelOrderError::InvalidState(s) => ApiError::conflict(
                ProblemCode::InvalidOrderState,
                format!("a {} order cannot be cancelled", s.as_str()),
            ),
            // only the expiry sweep asks for that
            CancelOrderError::NotDue => ApiError::conflict(
                ProblemCode::InvalidOrderState,
                "the order is not due to expire",
            ),
            CancelOrderError::Unexpected(e) => ApiError::from(e),
        }
    }
}

impl From<RefundOrderError> for ApiError {
    fn from(e: RefundOrderError) -> Self {
        match e {
            RefundOrderError::NotFound => order_not_found(),
            RefundOrderError::Forbidden => forbidden_order(),
            RefundOrderError::InvalidState(s) => ApiError::conflict(
                ProblemCode::InvalidOrderState,
                format!("a {} order cannot be refunded; only a PAID one", s.as_str()),
            ),
            RefundOrderError::ExceedsOrder { product_ids } => ApiError::conflict(
                ProblemCode::RefundExceedsOrder,
                "more units than ordered and not yet refunded, or products not in the order",
            )
            .with(
                "product_ids",
                product_ids.iter().map(|p| p.get()).collect::<Vec<_>>(),
            ),
            RefundOrderError::Unexpected(e) => ApiError::from(e),
        }
    }
}

fn order_not_found() -> ApiError {
    ApiError::not_found(ProblemCode::OrderNotFound, "no such order")
}

/// The answer to placing an order: 201 with its `Location`.
fn order_created(order: &Order) -> RecordedResponse {
    json_answer(
        StatusCode::CREATED,
        Some(format!("/api/v1/orders/{}", order.id)),
        order,
    )
}

/// The answer to paying or cancelling: 200 with the order.
fn order_changed(order: &Order) -> RecordedResponse {
    json_answer(StatusCode::OK, None, order)
}

/// The answer to a refund: 201 with the refund, `Location` the order.
fn refund_created(refund: &Refund) -> RecordedResponse {
    json_answer(
        StatusCode::CREATED,
        Some(format!("/api/v1/orders/{}", refund.order_id)),
        refund,
    )
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
              (status = 422, description = "VALIDATION_ERROR, IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn place_order(
    caller: Caller,
    idempotency: Idempotency,
    body: Json<PlaceOrderRequest>,
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let command = body.try_into_domain()?;
    caller.ensure_may_act_for(command.user_id())?;
    let order = state
        .orders
        .place(command, idempotency.completion(order_created))
        .await?;
    metrics.count(Event::OrderPlaced);
    if order.status == OrderStatus::Paid {
        metrics.count(Event::OrderPaid);
    }
    Ok(idempotency.respond(order_created(&order)))
}

/// One order (its owner or an admin).
#[utoipa::path(get, path = "/api/v1/orders/{order_id}", tag = "orders",
    params(("order_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = OrderDoc), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, description = "ORDER_NOT_FOUND", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
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
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn list_user_orders(
    scope: UserScope,
    query: Query<ListQuery>,
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
              (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn pay_order(
    caller: Caller,
    idempotency: Idempotency,
    id: PathId<OrderId>,
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let paid = state
        .orders
        .pay(
            caller.actor(),
            id.get(),
            idempotency.completion(order_changed),
        )
        .await?;
    metrics.count(Event::OrderPaid);
    Ok(idempotency.respond(order_changed(&paid)))
}

/// Cancels an order: stock and coupon come back; a paid order is also refunded.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/cancel", tag = "orders",
    params(("order_id" = i64, Path, minimum = 1),
           IdempotencyKey),
    responses((status = 200, body = OrderDoc), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, description = "ORDER_NOT_FOUND", body = Problem),
              (status = 409, description = "INVALID_ORDER_STATE, REQUEST_IN_PROGRESS", body = Problem),
              (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn cancel_order(
    caller: Caller,
    idempotency: Idempotency,
    id: PathId<OrderId>,
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let cancelled = state
        .orders
        .cancel(
            caller.actor(),
            id.get(),
            idempotency.completion(order_changed),
        )
        .await?;
    metrics.count(Event::OrderCancelled);
    Ok(idempotency.respond(order_changed(&cancelled)))
}

/// Refunds part of a PAID order: the units go back to stock, their share of the total
/// back to the balance.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/refunds", tag = "orders",
    params(("order_id" = i64, Path, minimum = 1),
           IdempotencyKey),
    request_body = RefundOrderRequest,
    responses((status = 201, body = RefundDoc, headers(("Location" = String, description = "/api/v1/orders/{order_id}"))),
              (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, description = "ORDER_NOT_FOUND", body = Problem),
              (status = 409, description = "INVALID_ORDER_STATE (not PAID), REFUND_EXCEEDS_ORDER (with product_ids), REQUEST_IN_PROGRESS", body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 422, description = "VALIDATION_ERROR, IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn refund_order(
    caller: Caller,
    idempotency: Idempotency,
    id: PathId<OrderId>,
    body: Json<RefundOrderRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = id.get();
    let request = body.try_into_domain()?;
    let refund = state
        .orders
        .refund(
            caller.actor(),
            id,
            request,
            idempotency.completion(refund_created),
        )
        .await?;
    Ok(idempotency.respond(refund_created(&refund)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// PENDING, PAID or CANCELLED
    pub status: Option<String>,
    #[param(minimum = 1)]
    pub user_id: Option<i64>,
    /// RFC 3339, inclusive
    pub created_from: Option<String>,
    /// RFC 3339, exclusive
    pub created_to: Option<String>,
    /// 1..=100, default 20
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page
    pub cursor: Option<String>,
}

fn timestamp(raw: Option<&str>) -> Result<Option<kernel::Timestamp>, &'static str> {
    raw.map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| "must be an RFC 3339 timestamp with a time zone")
    })
    .transpose()
}

impl SearchQuery {
    fn filter(&self) -> Result<OrderFilter, ApiError> {
        let mut errors = FieldErrors::default();
        let status = self
            .status
            .as_deref()
            .map(|s| OrderStatus::parse(s).ok_or("PENDING, PAID or CANCELLED"))
            .transpose();
        let status = errors.check("status", status);
        let user_id = self
            .user_id
            .map(|u| UserId::try_from(u).map_err(|_| "must be a positive id"))
            .transpose();
        let user_id = errors.check("user_id", user_id);
        let created_from = errors.check("created_from", timestamp(self.created_from.as_deref()));
        let created_to = errors.check("created_to", timestamp(self.created_to.as_deref()));
        let filter = match (status, user_id, created_from, created_to) {
            (Some(status), Some(user_id), Some(created_from), Some(created_to)) => {
                Some(OrderFilter {
                    status,
                    user_id,
                    created_from,
                    created_to,
                })
            }
            _ => None,
        };
        errors.finish(filter)
    }
}

/// Every order matching the filters, newest first (admin).
#[utoipa::path(get, path = "/api/v1/admin/orders", tag = "orders",
    params(SearchQuery),
    responses((status = 200, body = ListResponse<OrderDoc>), (status = 400, body = Problem),
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, description = "VALIDATION_ERROR", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn search_orders(
    _: Admin,
    query: Query<SearchQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.filter()?;
    let page = ListQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .page()?;
    let found = state.orders.search(filter, page).await?;
    Ok(HttpResponse::Ok().json(ListResponse::from_page(found, |o| o)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
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
    responses((status = 200, body = PopularList), (status = 400, body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)))]
pub async fn popular_products(
    query: Query<PopularQuery>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use kernel::{Money, RefundId};
    use order::{CancelReason, OrderLine, OrderPayment, PaymentStatus};
    use serde_json::Value;

    /// Resolves `{"$ref": "#/components/schemas/X"}` against the document.
    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                &doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    /// The JSON types a schema allows (`type` may be a name or a list; `oneOf` with a
    /// `null` member makes a nullable reference).
    fn types(doc: &Value, schema: &Value) -> Vec<String> {
        if let Some(options) = schema["oneOf"].as_array() {
            return options.iter().flat_map(|o| types(doc, o)).collect();
        }
        let schema = resolve(doc, schema);
        match &schema["type"] {
            Value::String(t) => vec![t.clone()],
            Value::Array(ts) => ts
                .iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
            _ if schema["properties"].is_object() => vec!["object".into()],
            _ => vec![],
        }
    }

    /// Asserts that `value` has exactly the shape of `schema`: the same property names,
    /// each of a type the schema allows, nested objects and arrays alike.
    fn assert_matches(doc: &Value, schema: &Value, value: &Value, at: &str) {
        let allowed = types(doc, schema);
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        assert!(
            allowed
                .iter()
                .any(|t| t == kind || (t == "number" && kind == "integer")),
            "{at}: the wire value is {kind}, the document allows {allowed:?}"
        );
        let schema = match schema["oneOf"].as_array() {
            Some(options) => options
                .iter()
                .map(|o| resolve(doc, o))
                .find(|o| !types(doc, o).iter().all(|t| t == "null"))
                .unwrap_or(schema),
            None => resolve(doc, schema),
        };
        match value {
            Value::Object(fields) => {
                let documented: std::collections::BTreeSet<&String> =
                    schema["properties"].as_object().unwrap().keys().collect();
                let sent: std::collections::BTreeSet<&String> = fields.keys().collect();
                assert_eq!(
                    sent, documented,
                    "{at}: the fields sent and documented differ"
                );
                for (name, v) in fields {
                    assert_matches(doc, &schema["properties"][name], v, &format!("{at}.{name}"));
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    assert_matches(doc, &schema["items"], v, &format!("{at}[{i}]"));
                }
            }
            _ => {}
        }
    }

    fn order(paid_and_refunded: bool) -> (Order, Option<Refund>) {
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
        let won = |v| Money::try_from(v).unwrap();
        let product = ProductId::try_from(3).unwrap();
        let id = OrderId::try_from(7).unwrap();
        let refund = Refund {
            id: RefundId::try_from(1).unwrap(),
            order_id: id,
            items: vec![RefundItem {
                product_id: product,
                quantity: Quantity::try_from(1).unwrap(),
            }],
            amount: won(900),
            reason: Some("damaged".into()),
            created_at: t,
        };
        let order = Order {
            id,
            user_id: UserId::try_from(1).unwrap(),
            status: OrderStatus::Cancelled,
            items: vec![OrderLine {
                product_id: product,
                name: "tea".into(),
                unit_price: won(1_000),
                quantity: Quantity::try_from(3).unwrap(),
                subtotal: won(3_000),
            }],
            subtotal: won(3_000),
            discount: won(300),
            total: won(2_700),
            coupon_id: Some(CouponId::try_from(2).unwrap()),
            created_at: t,
            expires_at: t,
            paid_at: Some(t),
            cancelled_at: Some(t),
            cancel_reason: Some(CancelReason::UserRequest),
            payment: Some(OrderPayment {
                id: 5,
                amount: won(2_700),
                status: PaymentStatus::Refunded,
                paid_at: t,
                refunded_at: Some(t),
            }),
            refunds: vec![refund.clone()],
            refunded_total: won(900),
        };
        if paid_and_refunded {
            (order, Some(refund))
        } else {
            let bare = Order {
                status: OrderStatus::Pending,
                coupon_id: None,
                paid_at: None,
                cancelled_at: None,
                cancel_reason: None,
                payment: None,
                refunds: vec![],
                refunded_total: won(0),
                ..order
            };
            (bare, None)
        }
    }

    // Invariant: one wire format per resource. `order::Order` and `order::Refund` are
    // what the handlers send (and the outbox events carry); the documented `Order` and
    // `Refund` schemas are held equal to them, field by field and type by type, with
    // every optional member set and with every one absent.
    #[test]
    fn the_documented_order_and_refund_are_what_is_sent() {
        let doc = serde_json::to_value(crate::docs::openapi()).unwrap();
        let schema = |name: &str| doc["components"]["schemas"][name].clone();
        for full in [true, false] {
            let (order, refund) = order(full);
            let sent = serde_json::to_value(&order).unwrap();
            assert_matches(&doc, &schema("Order"), &sent, "Order");
            if let Some(refund) = refund {
                let sent = serde_json::to_value(&refund).unwrap();
                assert_matches(&doc, &schema("Refund"), &sent, "Refund");
            }
        }
    }
}
