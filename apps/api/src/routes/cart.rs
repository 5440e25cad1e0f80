//! The cart: a user's products and quantities, always shown at current prices.

use crate::auth::UserScope;
use crate::error::{ApiError, Problem};
use crate::extract::{FieldErrors, Json, PathId, TryIntoDomain};
use crate::routes::products::product_not_found;
use crate::routes::{route, RouteSpec};
use crate::state::AppState;
use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use kernel::ProductId;
use order::cart::{Cart, CartItem, CartQuantity, SetCartItemError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_cart, put_item, delete_item),
    components(schemas(CartView, CartItemView, PutCartItemRequest))
)]
pub struct Api;

pub fn routes() -> Vec<RouteSpec> {
    vec![
        route(Method::GET, "/users/{user_id}/cart", get_cart),
        route(
            Method::PUT,
            "/users/{user_id}/cart/items/{product_id}",
            put_item,
        ),
        route(
            Method::DELETE,
            "/users/{user_id}/cart/items/{product_id}",
            delete_item,
        ),
    ]
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CartView {
    pub user_id: i64,
    /// ascending product id
    pub items: Vec<CartItemView>,
    /// sum of the subtotals, won
    pub total: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CartItemView {
    pub product_id: i64,
    /// the product's current name
    pub name: String,
    /// the product's current price, won per unit
    pub price: i64,
    pub quantity: u32,
    /// price * quantity
    pub subtotal: i64,
}

impl From<CartItem> for CartItemView {
    fn from(i: CartItem) -> Self {
        CartItemView {
            product_id: i.product_id.get(),
            name: i.name,
            price: i.price.won(),
            quantity: i.quantity.get(),
            subtotal: i.subtotal.won(),
        }
    }
}

impl From<Cart> for CartView {
    fn from(c: Cart) -> Self {
        CartView {
            user_id: c.user_id.get(),
            items: c.items.into_iter().map(CartItemView::from).collect(),
            total: c.total.won(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCartItemRequest {
    /// 1..=1000; replaces the quantity already in the cart (it is not added to it)
    #[schema(example = 2, minimum = 1, maximum = 1000)]
    pub quantity: i64,
}

impl TryIntoDomain for PutCartItemRequest {
    type Domain = CartQuantity;
    fn try_into_domain(self) -> Result<CartQuantity, ApiError> {
        let mut errors = FieldErrors::default();
        let quantity = errors.check("quantity", CartQuantity::try_from(self.quantity));
        errors.finish(quantity)
    }
}

impl From<SetCartItemError> for ApiError {
    fn from(e: SetCartItemError) -> Self {
        match e {
            SetCartItemError::ProductNotFound(id) => product_not_found(&[id]),
            SetCartItemError::Unexpected(e) => ApiError::from(e),
        }
    }
}

/// The user's cart at current prices (empty for a user who never added anything).
#[utoipa::path(get, path = "/api/v1/users/{user_id}/cart", tag = "cart",
    params(("user_id" = i64, Path, minimum = 1)),
    responses((status = 200, body = CartView),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn get_cart(
    scope: UserScope,
    state: web::Data<AppState>,
) -> Result<web::Json<CartView>, ApiError> {
    Ok(web::Json(state.carts.cart(scope.user).await?.into()))
}

/// Sets the quantity of a product in the cart (adds the product if absent).
#[utoipa::path(put, path = "/api/v1/users/{user_id}/cart/items/{product_id}", tag = "cart",
    params(("user_id" = i64, Path, minimum = 1), ("product_id" = i64, Path, minimum = 1)),
    request_body = PutCartItemRequest,
    responses((status = 200, body = CartView),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, description = "PRODUCT_NOT_FOUND", body = Problem),
              (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 422, description = "VALIDATION_ERROR (quantity outside 1..=1000)", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn put_item(
    scope: UserScope,
    product: PathId<ProductId>,
    body: Json<PutCartItemRequest>,
    state: web::Data<AppState>,
) -> Result<web::Json<CartView>, ApiError> {
    let quantity = body.try_into_domain()?;
    let cart = state
        .carts
        .set_item(scope.user, product.0, quantity)
        .await?;
    Ok(web::Json(cart.into()))
}

/// Removes a product from the cart; 204 whether or not it was there.
#[utoipa::path(delete, path = "/api/v1/users/{user_id}/cart/items/{product_id}", tag = "cart",
    params(("user_id" = i64, Path, minimum = 1), ("product_id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "removed (or was not there)"),
              (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_item(
    scope: UserScope,
    product: PathId<ProductId>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.carts.remove_item(scope.user, product.0).await?;
    Ok(HttpResponse::NoContent().finish())
}
