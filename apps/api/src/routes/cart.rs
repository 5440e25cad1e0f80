use actix_web::web;

#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Api;

pub fn configure(_cfg: &mut web::ServiceConfig) {}
