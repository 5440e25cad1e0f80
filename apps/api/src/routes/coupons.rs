//! Coupons: admin creation (with `issue_to`) and deactivation, reading,
//! first-come-first-served issuing, a user's coupons, and the user's notification inbox.

use crate::auth::{Admin, Caller, UserScope};
use crate::error::{ApiError, Problem, ProblemCode};
use crate::extract::{FieldErrors, Json, ListQuery, ListResponse, PathId, Query, TryIntoDomain};
use crate::idempotency::IdempotencyKey;
use crate::metrics::{Event, Metrics};
use crate::routes::{route, RouteSpec};
use crate::state::AppState;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use coupon::{
    Coupon, CouponName, DeactivateCouponError, Discount, DiscountType, GetCouponError,
    IssueCouponError, MarkReadError, NewCoupon, NewCouponError, Notification, NotificationKind,
    UserCoupon, UserCouponStatus, ValidityWindow, MAX_ISSUE_TO,
};
use kernel::{CouponId, Money, NotificationId, Quantity, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_coupon,
        deactivate_coupon,
        get_coupon,
        issue_coupon,
        user_coupons,
        notifications,
        mark_notification_read
    ),
    components(schemas(
        CreateCouponRequest,
        IssueRequest,
        CouponView,
        DiscountTypeView,
        UserCouponView,
        UserCouponStatusView,
        NotificationView,
        NotificationKindView
    ))
)]
pub struct Api;

pub fn routes() -> Vec<RouteSpec> {
    vec![
        route(Method::POST, "/admin/coupons", create_coupon),
        route(
            Method::POST,
            "/admin/coupons/{coupon_id}/deactivate",
            deactivate_coupon,
        ),
        route(Method::GET, "/coupons/{coupon_id}", get_coupon),
        route(Method::POST, "/coupons/{coupon_id}/issues", issue_coupon),
        route(Method::GET, "/users/{user_id}/coupons", user_coupons),
        route(Method::GET, "/users/{user_id}/notifications", notifications),
        route(
            Method::POST,
            "/users/{user_id}/notifications/{notification_id}/read",
            mark_notification_read,
        ),
    ]
}

/// How a coupon discounts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DiscountTypeView {
    /// `discount_value` won off
    Fixed,
    /// `discount_value` percent off, rounded down
    Percent,
}

impl From<DiscountTypeView> for DiscountType {
    fn from(v: DiscountTypeView) -> Self {
        match v {
            DiscountTypeView::Fixed => DiscountType::Fixed,
            DiscountTypeView::Percent => DiscountType::Percent,
        }
    }
}

impl From<DiscountType> for DiscountTypeView {
    fn from(v: DiscountType) -> Self {
        match v {
            DiscountType::Fixed => DiscountTypeView::Fixed,
            DiscountType::Percent => DiscountTypeView::Percent,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCouponRequest {
    /// 1..=200 characters
    #[schema(
        example = "Welcome 10%",
        min_length = 1,
        max_length = 200,
        pattern = "\\S"
    )]
    pub name: String,
    pub discount_type: DiscountTypeView,
    /// FIXED: won off, 1..=100,000,000; PERCENT: percent off, 1..=100
    #[schema(example = 10, minimum = 1, maximum = 100000000)]
    pub discount_value: i64,
    /// PERCENT only: the most won the discount takes off, 1..=100,000,000; null or
    /// absent: no cap. Must be absent or null for FIXED.
    #[schema(example = 5000, minimum = 1, maximum = 100000000)]
    pub max_discount: Option<i64>,
    /// the subtotal an order needs; >= 0, default 0
    #[schema(example = 10000, minimum = 0)]
    pub min_order_amount: Option<i64>,
    /// 1..=4,294,967,295; null or absent: unlimited
    #[schema(example = 100, minimum = 1, maximum = 4294967295_i64)]
    pub total_quantity: Option<i64>,
    /// the coupon is usable when valid_from <= now < valid_until
    #[schema(example = "2026-11-01T00:00:00Z")]
    pub valid_from: DateTime<Utc>,
    /// after valid_from
    #[schema(example = "2026-12-01T00:00:00Z")]
    pub valid_until: DateTime<Utc>,
    /// users who get the coupon (and a notification) right away; at most 1000 entries,
    /// duplicates count once, and they must fit in total_quantity
    #[schema(schema_with = issue_to_schema)]
    pub issue_to: Option<Vec<i64>>,
}

/// `issue_to`: null or up to 1000 positive user ids.
fn issue_to_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaFormat, SchemaType, Type};
    use utoipa::openapi::KnownFormat;
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1)),
        )
        .max_items(Some(MAX_ISSUE_TO))
        .description(Some(
            "users who get the coupon (and a notification) right away; at most 1000 \
             entries, duplicates count once, and they must fit in total_quantity",
        ))
        .build()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// the caller's own id (admins may name anyone)
    #[schema(example = 42, minimum = 1)]
    pub user_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CouponView {
    pub id: i64,
    pub name: String,
    pub discount_type: DiscountTypeView,
    pub discount_value: i64,
    /// PERCENT only: the most won the discount takes off; null: no cap
    pub max_discount: Option<i64>,
    pub min_order_amount: i64,
    /// null: unlimited
    pub total_quantity: Option<i64>,
    /// owners so far, `issue_to` included; never above total_quantity
    pub issued_quantity: u64,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    /// false once deactivated: it can no longer be issued nor used
    pub active: bool,
}

impl From<Coupon> for CouponView {
    fn from(c: Coupon) -> Self {
        CouponView {
            id: c.id.get(),
            name: c.name.as_str().to_string(),
            discount_type: c.discount.kind().into(),
            discount_value: c.discount.value(),
            max_discount: c.discount.cap().map(Money::won),
            min_order_amount: c.min_order_amount.won(),
            total_quantity: c.total_quantity.map(i64::from),
            issued_quantity: c.issued_quantity,
            valid_from: c.window.from(),
            valid_until: c.window.until(),
            active: c.active,
        }
    }
}

/// A user's coupon: EXPIRED when unused and its window has ended.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserCouponStatusView {
    Available,
    Used,
    Expired,
}

impl From<UserCouponStatus> for UserCouponStatusView {
    fn from(s: UserCouponStatus) -> Self {
        match s {
            UserCouponStatus::Available => UserCouponStatusView::Available,
            UserCouponStatus::Used => UserCouponStatusView::Used,
            UserCouponStatus::Expired => UserCouponStatusView::Expired,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserCouponView {
    pub coupon: CouponView,
    pub user_id: i64,
    pub status: UserCouponStatusView,
    pub issued_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// the order that uses it (USED only)
    pub order_id: Option<i64>,
}

impl From<UserCoupon> for UserCouponView {
    fn from(c: UserCoupon) -> Self {
        UserCouponView {
            coupon: c.coupon.into(),
            user_id: c.user_id.get(),
            status: c.status.into(),
            issued_at: c.issued_at,
            used_at: c.used_at,
            order_id: c.order_id.map(i64::from),
        }
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationKindView {
    CouponIssued,
}

impl From<NotificationKind> for NotificationKindView {
    fn from(k: NotificationKind) -> Self {
        match k {
            NotificationKind::CouponIssued => NotificationKindView::CouponIssued,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: i64,
    pub kind: NotificationKindView,
    pub message: String,
    pub coupon_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        NotificationView {
            id: n.id.get(),
            kind: n.kind.into(),
            message: n.message,
            coupon_id: n.coupon_id.map(i64::from),
            created_at: n.created_at,
            read: n.read,
        }
    }
}

impl From<IssueCouponError> for ApiError {
    fn from(e: IssueCouponError) -> Self {
        match e {
            IssueCouponError::NotFound => coupon_not_found(),
            IssueCouponError::AlreadyIssued => ApiError::conflict(
                ProblemCode::CouponAlreadyIssued,
                "this user already owns this coupon",
            ),
            IssueCouponError::SoldOut => ApiError::conflict(
                ProblemCode::CouponSoldOut,
                "every unit of this coupon has been issued",
            ),
            IssueCouponError::NotActive => ApiError::conflict(
                ProblemCode::CouponNotActive,
                "the coupon is outside its validity window",
            ),
            IssueCouponError::Deactivated => ApiError::conflict(
                ProblemCode::CouponNotActive,
                "the coupon has been deactivated",
            ),
            IssueCouponError::Unexpected(e) => ApiError::from(e),
        }
    }
}

impl From<GetCouponError> for ApiError {
    fn from(e: GetCouponError) -> Self {
        match e {
            GetCouponError::NotFound => coupon_not_found(),
            GetCouponError::Unexpected(e) => ApiError::from(e),
        }
    }
}

impl From<DeactivateCouponError> for ApiError {
    fn from(e: DeactivateCouponError) -> Self {
        match e {
            DeactivateCouponError::NotFound => coupon_not_found(),
            DeactivateCouponError::Unexpected(e) => ApiError::from(e),
        }
    }
}

impl From<MarkReadError> for ApiError {
    fn from(e: MarkReadError) -> Self {
        match e {
            MarkReadError::NotFound => ApiError::not_found(
                ProblemCode::NotificationNotFound,
                "this user has no such notification",
            ),
            MarkReadError::Unexpected(e) => ApiError::from(e),
        }
    }
}

fn coupon_not_found() -> ApiError {
    ApiError::not_found(ProblemCode::CouponNotFound, "no such coupon")
}

impl TryIntoDomain for CreateCouponRequest {
    type Domain = NewCoupon;
    fn try_into_domain(self) -> Result<NewCoupon, ApiError> {
        let mut errors = FieldErrors::default();
        let name = errors.check("name", CouponName::try_from(self.name));
        let discount = Discount::with_cap(
            self.discount_type.into(),
            self.discount_value,
            self.max_discount,
        )
        .map_err(|e| errors.push(e.field(), e.to_string()))
        .ok();
        let min_order_amount = Money::try_from(self.min_order_amount.unwrap_or(0))
            .map_err(|_| errors.push("min_order_amount", "must be 0 or more"))
            .ok();
        let total_quantity = match self.total_quantity {
            None => Some(None),
            Some(t) => Quantity::try_from(t)
                .map(Some)
                .map_err(|_| errors.push("total_quantity", "must be 1 or more, or null"))
                .ok(),
        };
        let window = errors.check(
            "valid_until",
            ValidityWindow::new(self.valid_from, self.valid_until),
        );
        let raw = self.issue_to.unwrap_or_default();
        if raw.len() > MAX_ISSUE_TO {
            errors.push(
                "issue_to",
                format!("at most {MAX_ISSUE_TO} users, got {}", raw.len()),
            );
        }
        let mut issue_to = Vec::with_capacity(raw.len());
        for (i, id) in raw.into_iter().enumerate() {
            match UserId::try_from(id) {
                Ok(u) => issue_to.push(u),
                Err(_) => errors.push(format!("issue_to[{i}]"), "must be a positive user id"),
            }
        }
        let (
            Some(name),
            Some(discount),
            Some(min_order_amount),
            Some(total_quantity),
            Some(window),
        ) = (name, discount, min_order_amount, total_quantity, window)
        else {
            return errors.finish(None);
        };
        let coupon = NewCoupon::new(
            name,
            discount,
            min_order_amount,
            total_quantity,
            window,
            issue_to,
        )
        .map_err(|e: NewCouponError| errors.push("issue_to", e.to_string()))
        .ok();
        errors.finish(coupon)
    }
}

impl TryIntoDomain for IssueRequest {
    type Domain = UserId;
    fn try_into_domain(self) -> Result<UserId, ApiError> {
        let mut errors = FieldErrors::default();
        let user = UserId::try_from(self.user_id)
            .map_err(|_| errors.push("user_id", "must be a positive user id"))
            .ok();
        errors.finish(user)
    }
}

/// Creates a coupon; every user of `issue_to` owns it and gets a notification, all in
/// one transaction.
#[utoipa::path(post, path = "/api/v1/admin/coupons", tag = "coupons",
    params(IdempotencyKey),
    request_body = CreateCouponRequest,
    responses((status = 201, body = CouponView, headers(("Location" = String, description = "/api/v1/coupons/{id}"))),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 409, description = "REQUEST_IN_PROGRESS", body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 422, description = "VALIDATION_ERROR (also: more distinct issue_to users than total_quantity), IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn create_coupon(
    _admin: Admin,
    body: Json<CreateCouponRequest>,
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let new = body.try_into_domain()?;
    let coupon = state.coupons.create(new).await?;
    // every `issue_to` user now owns it
    if coupon.issued_quantity > 0 {
        metrics.count_n(Event::CouponIssued, coupon.issued_quantity);
    }
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/coupons/{}", coupon.id)))
        .json(CouponView::from(coupon)))
}

/// Deactivates a coupon (admin).
///
/// From now on it can no longer be issued (409 COUPON_NOT_ACTIVE) nor used on an order
/// (409 COUPON_NOT_USABLE, reason INACTIVE); orders already placed with it keep it.
/// Idempotent: deactivating it again answers the same coupon.
#[utoipa::path(post, path = "/api/v1/admin/coupons/{coupon_id}/deactivate", tag = "coupons",
    params(("coupon_id" = i64, Path, minimum = 1),
           IdempotencyKey),
    responses((status = 200, body = CouponView, description = "the coupon, with active: false"),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, description = "COUPON_NOT_FOUND", body = Problem),
              (status = 409, description = "REQUEST_IN_PROGRESS", body = Problem),
              (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn deactivate_coupon(
    _admin: Admin,
    id: PathId<CouponId>,
    state: web::Data<AppState>,
) -> Result<web::Json<CouponView>, ApiError> {
    Ok(web::Json(state.coupons.deactivate(id.get()).await?.into()))
}

/// A coupon (any valid token).
#[utoipa::path(get, path = "/api/v1/coupons/{coupon_id}", tag = "coupons",
    params(("coupon_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = CouponView),
              (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 404, description = "COUPON_NOT_FOUND", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn get_coupon(
    _caller: Caller,
    id: PathId<CouponId>,
    state: web::Data<AppState>,
) -> Result<web::Json<CouponView>, ApiError> {
    let id = id.get();
    Ok(web::Json(state.coupons.get(id).await?.into()))
}

/// First come, first served: one unit for `user_id` (the caller; admins for anyone).
#[utoipa::path(post, path = "/api/v1/coupons/{coupon_id}/issues", tag = "coupons",
    params(("coupon_id" = i64, Path, minimum = 1),
           IdempotencyKey),
    request_body = IssueRequest,
    responses((status = 201, body = UserCouponView),
              (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, description = "FORBIDDEN: user_id is not the caller", body = Problem),
              (status = 404, description = "COUPON_NOT_FOUND", body = Problem),
              (status = 409, description = "COUPON_ALREADY_ISSUED, COUPON_SOLD_OUT, COUPON_NOT_ACTIVE (outside its validity window), REQUEST_IN_PROGRESS", body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 422, description = "VALIDATION_ERROR, IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn issue_coupon(
    caller: Caller,
    coupon: PathId<CouponId>,
    body: Json<IssueRequest>,
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let coupon = coupon.get();
    let user = body.try_into_domain()?;
    caller.ensure_may_act_for(user)?;
    let issued = state.coupons.issue(coupon, user).await?;
    metrics.count(Event::CouponIssued);
    Ok(HttpResponse::build(StatusCode::CREATED).json(UserCouponView::from(issued)))
}

/// The user's coupons, newest first; status as of now.
#[utoipa::path(get, path = "/api/v1/users/{user_id}/coupons", tag = "coupons",
    params(("user_id" = i64, Path, minimum = 1), ListQuery),
    responses((status = 200, body = ListResponse<UserCouponView>),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn user_coupons(
    scope: UserScope,
    query: Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<ListResponse<UserCouponView>>, ApiError> {
    let page = state
        .coupons
        .user_coupons(scope.user, query.page()?)
        .await?;
    Ok(web::Json(ListResponse::from_page(
        page,
        UserCouponView::from,
    )))
}

/// The user's notifications, newest first.
#[utoipa::path(get, path = "/api/v1/users/{user_id}/notifications", tag = "coupons",
    params(("user_id" = i64, Path, minimum = 1), ListQuery),
    responses((status = 200, body = ListResponse<NotificationView>),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn notifications(
    scope: UserScope,
    query: Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<ListResponse<NotificationView>>, ApiError> {
    let page = state
        .coupons
        .notifications(scope.user, query.page()?)
        .await?;
    Ok(web::Json(ListResponse::from_page(
        page,
        NotificationView::from,
    )))
}

/// Marks a notification read.
///
/// Idempotent: a notification already read stays read (its first read time is kept).
/// Another user's notification is not found.
#[utoipa::path(post, path = "/api/v1/users/{user_id}/notifications/{notification_id}/read", tag = "coupons",
    params(("user_id" = i64, Path, minimum = 1),
           ("notification_id" = i64, Path, minimum = 1),
           IdempotencyKey),
    responses((status = 200, body = NotificationView, description = "the notification, with read: true"),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, description = "NOTIFICATION_NOT_FOUND (also another user's)", body = Problem),
              (status = 409, description = "REQUEST_IN_PROGRESS", body = Problem),
              (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn mark_notification_read(
    scope: UserScope,
    id: PathId<NotificationId>,
    state: web::Data<AppState>,
) -> Result<web::Json<NotificationView>, ApiError> {
    let read = state
        .coupons
        .mark_notification_read(scope.user, id.get())
        .await?;
    Ok(web::Json(read.into()))
}
