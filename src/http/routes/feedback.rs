//! `POST /cds-services/{id}/feedback` (CDS Hooks 2.0.1 "Feedback").

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::routes::read_body;
use crate::http::startup::AppState;
use crate::protocol::discovery;
use crate::protocol::feedback::parse_feedback;

/// Validates and stores feedback; answers 200 only after the write committed.
#[tracing::instrument(name = "cds_feedback", skip_all, fields(service = tracing::field::Empty))]
pub async fn post_feedback(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = super::service_id(&req);
    let service = discovery::service(&id).ok_or(ApiError::UnknownService(id))?;
    let body = read_body(&req, payload, state.max_body_bytes).await?;
    let entries = parse_feedback(&body)?;
    state
        .store
        .record(&service.id, &entries)
        .await
        .map_err(|e| ApiError::Internal(format!("storing feedback: {e}")))?;
    tracing::info!(entries = entries.len(), "feedback stored");
    Ok(HttpResponse::Ok().json(json!({ "stored": entries.len() })))
}
