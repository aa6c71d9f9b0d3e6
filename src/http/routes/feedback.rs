//! `POST /cds-services/{id}/feedback` (CDS Hooks 2.0.1 "Feedback").

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::routes::read_body;
use crate::http::startup::AppState;
use crate::protocol::discovery;
use crate::protocol::feedback::parse_feedback;

/// Validates and stores feedback; answers 200 only after the write committed (a retried
/// item is stored once), 503 with Retry-After when it could not be.
#[tracing::instrument(name = "cds_feedback", skip_all, fields(service = tracing::field::Empty))]
pub async fn post_feedback(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = super::service_id(&req);
    let service = discovery::service(&id).ok_or(ApiError::UnknownService(id))?;
    let body = read_body(
        &req,
        payload,
        state.max_body_bytes,
        state.limits.body_read_timeout,
    )
    .await?;
    let entries = parse_feedback(&body)?;
    // Until the database is up (start-up retries it), feedback is refused, never dropped.
    let store = state.store.get().ok_or_else(|| {
        ApiError::Unavailable("the feedback database is not connected yet".into())
    })?;
    store
        .record(&service.id, &entries)
        .await
        .map_err(|e| ApiError::Unavailable(format!("storing feedback: {e}")))?;
    tracing::info!(entries = entries.len(), "feedback stored");
    Ok(HttpResponse::Ok().json(json!({ "stored": entries.len() })))
}
