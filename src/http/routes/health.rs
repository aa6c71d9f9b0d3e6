//! Liveness, readiness, metrics and the benchmark ceiling.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::startup::AppState;
use crate::protocol::discovery::discovery_document;

/// `GET /cds-services` (CDS Hooks 2.0.1 "Discovery").
pub async fn discovery() -> HttpResponse {
    HttpResponse::Ok().json(discovery_document())
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// How long `/readyz` waits for its write to commit (probes time out at 2 s).
const READINESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /readyz`: a feedback write can commit now, checked within 1 s (503 otherwise).
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state
        .store
        .get()
        .ok_or_else(|| ApiError::Unavailable("feedback store: not connected yet".into()))?;
    tokio::time::timeout(READINESS_TIMEOUT, store.check_write())
        .await
        .map_err(|_| ApiError::Unavailable("feedback store: no answer within 1 s".into()))?
        .map_err(|e| ApiError::Unavailable(format!("feedback store: {e}")))?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "feedbackStore": "ok" })))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state
        .metrics
        .render()
        .map_err(|e| ApiError::Internal(format!("metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text))
}

/// `GET /bench/ceiling`: a fixed small answer, to measure the HTTP stack alone.
pub async fn ceiling() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"cards":[]}"#)
}

/// `POST /bench/naive-fhirbolt`: the naive handler the load test compares against:
/// every prefetch value through fhirbolt's typed parser whole, no triage, no grading.
pub async fn naive_fhirbolt(
    req: actix_web::HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = super::read_body(
        &req,
        payload,
        state.max_body_bytes,
        state.limits.body_read_timeout,
    )
    .await?;
    let request = crate::protocol::request::CdsRequest::parse(&body)?;
    let parsed = request
        .prefetch
        .iter()
        .flatten()
        .filter(|(_, v)| crate::adapter::naive_typed_parse(v.get()))
        .count();
    Ok(HttpResponse::Ok().json(json!({"cards": [], "parsed": parsed})))
}

/// Any other route.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
