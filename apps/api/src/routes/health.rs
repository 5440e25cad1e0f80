use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use diesel_async::RunQueryDsl;
use std::time::Duration;

#[derive(utoipa::OpenApi)]
#[openapi(paths(live, ready))]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health/live").route(web::get().to(live)))
        .service(web::resource("/health/ready").route(web::get().to(ready)));
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
              (status = 503, description = "the database does not answer", body = crate::error::Problem)))]
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
            "NOT_READY",
            "the database does not answer",
            e,
        )),
        Err(_) => Err(ApiError::unavailable(
            "NOT_READY",
            "the database does not answer",
            anyhow::anyhow!("readiness check timed out"),
        )),
    }
}
