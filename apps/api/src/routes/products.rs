//! Products and stock: the public catalogue (no token needed) and the admin endpoints
//! that add products and restock or write off.

use crate::auth::Admin;
use crate::error::{ApiError, FieldError, Problem, ProblemCode};
use crate::extract::{FieldErrors, Json, ListQuery, ListResponse, PathId, Query, TryIntoDomain};
use crate::idempotency::IdempotencyKey;
use crate::routes::{route, RouteSpec};
use crate::state::AppState;
use actix_web::http::{header, Method};
use actix_web::{web, HttpResponse};
use kernel::ProductId;
use serde::{Deserialize, Serialize};
use stock::{
    AdjustRuleError, AdjustStockError, NewProduct, Price, Product, ProductChanges, ProductError,
    ProductName, PurchaseLimit, StockDelta, StockLevel, UpdateProductError,
};
use utoipa::ToSchema;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_products,
        get_product,
        create_product,
        update_product,
        adjust_stock
    ),
    components(schemas(
        ProductView,
        CreateProductRequest,
        UpdateProductRequest,
        StockAdjustmentRequest
    ))
)]
pub struct Api;

pub fn routes() -> Vec<RouteSpec> {
    vec![
        route(Method::GET, "/products", list_products),
        // before `/products/{id}`, which would take "popular" for an id
        route(
            Method::GET,
            "/products/popular",
            super::orders::popular_products,
        ),
        route(Method::GET, "/products/{id}", get_product),
        route(Method::POST, "/admin/products", create_product),
        route(Method::PATCH, "/admin/products/{id}", update_product),
        route(Method::POST, "/admin/products/{id}/stock", adjust_stock),
    ]
}

/// `Product`: `stock` is the number available to order now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub id: i64,
    pub name: String,
    /// won per unit, 1..=100,000,000
    pub price: i64,
    /// units available to order now
    pub stock: i64,
    /// the most units one user may hold in PENDING and PAID orders; null: no limit
    #[schema(minimum = 1, maximum = 1000)]
    pub max_per_user: Option<i64>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        ProductView {
            id: p.id.get(),
            name: p.name,
            price: p.price.won(),
            stock: p.stock,
            max_per_user: p.max_per_user.map(|l| l.get()),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    /// 1..=200 characters, not blank, no control characters
    #[schema(
        example = "Mechanical keyboard",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    pub name: String,
    /// won per unit, 1..=100,000,000
    #[schema(example = 89000, minimum = 1, maximum = 100000000)]
    pub price: i64,
    /// initial stock, 0..=1,000,000,000
    #[schema(example = 100, minimum = 0, maximum = 1000000000)]
    pub stock: i64,
    /// purchase limit per user, 1..=1000; absent or null: no limit
    #[schema(minimum = 1, maximum = 1000)]
    pub max_per_user: Option<i64>,
}

/// A field that may be absent (`None`), null (`Some(None)`) or a value.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /admin/products/{id}`: any of the fields; an empty object changes nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProductRequest {
    /// 1..=200 characters, not blank, no control characters
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// won per unit, 1..=100,000,000; orders already placed keep their prices
    #[schema(minimum = 1, maximum = 100000000)]
    pub price: Option<i64>,
    /// 1..=1000; null removes the limit
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, nullable, minimum = 1, maximum = 1000)]
    pub max_per_user: Option<Option<i64>>,
}

impl TryIntoDomain for UpdateProductRequest {
    type Domain = ProductChanges;
    fn try_into_domain(self) -> Result<ProductChanges, ApiError> {
        let mut errors = FieldErrors::default();
        let name = self
            .name
            .and_then(|n| errors.check("name", ProductName::try_from(n)));
        let price = self
            .price
            .and_then(|p| errors.check("price", Price::try_from(p)));
        let max_per_user = match self.max_per_user {
            None => None,
            Some(None) => Some(None),
            Some(Some(l)) => errors
                .check("max_per_user", PurchaseLimit::try_from(l))
                .map(Some),
        };
        errors.finish(Some(ProductChanges {
            name,
            price,
            max_per_user,
        }))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockAdjustmentRequest {
    /// positive restocks, negative writes off; non-zero, at most 1,000,000,000 either
    /// way. The stock may not go below 0 (409 OUT_OF_STOCK) nor, restocking, past
    /// 1,000,000,000 (422 VALIDATION_ERROR).
    #[schema(example = -3, minimum = -1000000000, maximum = 1000000000)]
    pub delta: i64,
}

impl TryIntoDomain for CreateProductRequest {
    type Domain = NewProduct;
    fn try_into_domain(self) -> Result<NewProduct, ApiError> {
        let mut errors = FieldErrors::default();
        let name = errors.check("name", ProductName::try_from(self.name));
        let price = errors.check("price", Price::try_from(self.price));
        let stock = errors.check("stock", StockLevel::try_from(self.stock));
        let max_per_user = match self.max_per_user {
            None => Some(None),
            Some(l) => errors
                .check("max_per_user", PurchaseLimit::try_from(l))
                .map(Some),
        };
        let product = match (name, price, stock, max_per_user) {
            (Some(name), Some(price), Some(stock), Some(max_per_user)) => Some(NewProduct {
                name,
                price,
                stock,
                max_per_user,
            }),
            _ => None,
        };
        errors.finish(product)
    }
}

impl TryIntoDomain for StockAdjustmentRequest {
    type Domain = StockDelta;
    fn try_into_domain(self) -> Result<StockDelta, ApiError> {
        let mut errors = FieldErrors::default();
        let delta = errors.check("delta", StockDelta::try_from(self.delta));
        errors.finish(delta)
    }
}

/// 404 PRODUCT_NOT_FOUND naming the products (`product_ids`).
pub fn product_not_found(ids: &[ProductId]) -> ApiError {
    ApiError::not_found(
        ProblemCode::ProductNotFound,
        format!("no such product: {}", join(ids)),
    )
    .with("product_ids", ids)
}

/// 409 OUT_OF_STOCK naming the products (`product_ids`).
pub fn out_of_stock(ids: &[ProductId]) -> ApiError {
    ApiError::conflict(
        ProblemCode::OutOfStock,
        format!("not enough stock of product: {}", join(ids)),
    )
    .with("product_ids", ids)
}

fn join(ids: &[ProductId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<ProductError> for ApiError {
    fn from(e: ProductError) -> Self {
        match e {
            ProductError::NotFound(id) => product_not_found(&[id]),
            ProductError::Unexpected(e) => ApiError::from(e),
        }
    }
}

/// The answer to a refused stock change of product `id`.
fn adjust_error(id: ProductId, e: AdjustStockError) -> ApiError {
    match e {
        AdjustStockError::NotFound(id) => product_not_found(&[id]),
        AdjustStockError::Refused(AdjustRuleError::BelowZero { stock, delta }) => {
            ApiError::conflict(
                ProblemCode::OutOfStock,
                format!(
                "writing off {} of the {stock} units of product {id} would leave less than zero",
                -delta
            ),
            )
            .with("product_ids", [id])
            .with("stock", stock)
        }
        AdjustStockError::Refused(e @ AdjustRuleError::AboveMax { .. }) => {
            ApiError::validation(vec![FieldError::new("delta", e.to_string())])
        }
        AdjustStockError::Unexpected(e) => ApiError::from(e),
    }
}

/// Products in ascending id.
#[utoipa::path(get, path = "/api/v1/products", tag = "products",
    params(ListQuery),
    responses((status = 200, body = ListResponse<ProductView>),
              (status = 400, description = "VALIDATION_ERROR (limit or cursor)", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)))]
pub async fn list_products(
    query: Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<ListResponse<ProductView>>, ApiError> {
    let page = state.stock.products(query.page()?).await?;
    Ok(web::Json(ListResponse::from_page(page, ProductView::from)))
}

/// One product.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "products",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = ProductView),
              (status = 400, body = Problem),
              (status = 404, description = "PRODUCT_NOT_FOUND", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)))]
pub async fn get_product(
    id: PathId<ProductId>,
    state: web::Data<AppState>,
) -> Result<web::Json<ProductView>, ApiError> {
    Ok(web::Json(state.stock.product(id.0).await?.into()))
}

/// Adds a product (admin).
#[utoipa::path(post, path = "/api/v1/admin/products", tag = "products",
    params(IdempotencyKey),
    request_body = CreateProductRequest,
    responses((status = 201, body = ProductView,
               headers(("Location" = String, description = "/api/v1/products/{id}"))),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 409, description = "REQUEST_IN_PROGRESS", body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 422, description = "VALIDATION_ERROR naming the fields, IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn create_product(
    _admin: Admin,
    body: Json<CreateProductRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let product = state.stock.create_product(body.try_into_domain()?).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/products/{}", product.id)))
        .json(ProductView::from(product)))
}

/// Changes a product's name, price or purchase limit (admin); placed orders keep their
/// prices.
#[utoipa::path(patch, path = "/api/v1/admin/products/{id}", tag = "products",
    params(("id" = i64, Path, minimum = 1)),
    request_body = UpdateProductRequest,
    responses((status = 200, body = ProductView),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, description = "PRODUCT_NOT_FOUND", body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 422, description = "VALIDATION_ERROR naming the fields", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn update_product(
    _admin: Admin,
    id: PathId<ProductId>,
    body: Json<UpdateProductRequest>,
    state: web::Data<AppState>,
) -> Result<web::Json<ProductView>, ApiError> {
    let changes = body.try_into_domain()?;
    let product = state
        .stock
        .update_product(id.0, changes)
        .await
        .map_err(|e| match e {
            UpdateProductError::NotFound(id) => product_not_found(&[id]),
            UpdateProductError::Unexpected(e) => ApiError::from(e),
        })?;
    Ok(web::Json(product.into()))
}

/// Restocks (positive `delta`) or writes off (negative `delta`) a product (admin).
#[utoipa::path(post, path = "/api/v1/admin/products/{id}/stock", tag = "products",
    params(("id" = i64, Path, minimum = 1),
           IdempotencyKey),
    request_body = StockAdjustmentRequest,
    responses((status = 200, body = ProductView),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, description = "PRODUCT_NOT_FOUND", body = Problem),
              (status = 409, description = "OUT_OF_STOCK (the stock would go below 0), REQUEST_IN_PROGRESS", body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 422, description = "VALIDATION_ERROR (delta 0, out of range, or stock past 1,000,000,000), IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn adjust_stock(
    _admin: Admin,
    id: PathId<ProductId>,
    body: Json<StockAdjustmentRequest>,
    state: web::Data<AppState>,
) -> Result<web::Json<ProductView>, ApiError> {
    let delta = body.try_into_domain()?;
    let product = state
        .stock
        .adjust_stock(id.0, delta)
        .await
        .map_err(|e| adjust_error(id.0, e))?;
    Ok(web::Json(product.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_off_below_zero_is_409_out_of_stock_and_past_the_maximum_is_422() {
        let id = ProductId::try_from(4).unwrap();
        let below = adjust_error(
            id,
            AdjustStockError::Refused(AdjustRuleError::BelowZero {
                stock: 2,
                delta: -3,
            }),
        );
        assert_eq!(below.code(), "OUT_OF_STOCK");
        let above = adjust_error(
            id,
            AdjustStockError::Refused(AdjustRuleError::AboveMax {
                stock: 2,
                delta: 1_000_000_000,
            }),
        );
        assert_eq!(above.code(), "VALIDATION_ERROR");
        assert_eq!(
            adjust_error(id, AdjustStockError::NotFound(id)).code(),
            "PRODUCT_NOT_FOUND"
        );
    }
}
