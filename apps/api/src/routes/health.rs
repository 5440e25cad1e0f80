use crate::error::{ApiError, ProblemCode};
use crate::routes::{route, RouteSpec};
use crate::state::AppState;
use actix_web::http::Method;
use actix_web::{web, HttpResponse};
use diesel_async::RunQueryDsl;
use std::time::Duration;

#[derive(utoipa::OpenApi)]
#[openapi(paths(live, ready))]
pub struct Api;

/// Health routes; full paths (they live outside `/api/v1`).
pub fn routes() -> Vec<RouteSpec> {
    vec![
        route(Method::GET, "/health/live", live),
        route(Method::GET, "/health/ready", ready),
    ]
}

/// 200 while the process runs.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "the process runs")))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "the database answers"),
              (status = 503, description = "NOT_READY: the database does not answer", body = crate::error::Problem)))]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let check = async {
        let mut conn = state.pool.get().await?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await?;
        anyhow::Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(())) => {
            Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ok", "database": "up"})))
        }
        Ok(Err(e)) => Err(ApiError::unavailable(
            ProblemCode::NotReady,
            "the database does not answer",
            e,
        )),
        Err(_) => Err(ApiError::unavailable(
            ProblemCode::NotReady,
            "the database does not answer",
            anyhow::anyhow!("readiness check timed out"),
        )),
    }
}
