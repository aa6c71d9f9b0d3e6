//! The request span: tracing-actix-web's root span fields (less `http.target`) plus the CDS Hooks fields, so every
//! line about a call (including the one logging its error) names the service, hook and
//! hookInstance. Never the patient, resource bodies or tokens.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

/// Builds the root span of each request.
pub struct CdsRootSpan;

impl RootSpanBuilder for CdsRootSpan {
    /// tracing-actix-web's fields without `http.target`: the path and query of a FHIR-style
    /// URL (`?subject=Patient/…`) can hold a patient id; `http.route` is the fixed pattern.
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.scheme = %request.connection_info().scheme(),
            http.user_agent = %request
                .headers()
                .get("User-Agent")
                .and_then(|h| h.to_str().ok())
                .unwrap_or(""),
            http.status_code = Empty,
            otel.name = %format!("{} {}", request.method(), route),
            otel.kind = "server",
            otel.status_code = Empty,
            request_id = %request_id,
            exception.message = Empty,
            exception.details = Empty,
            service = Empty,
            hook = Empty,
            hook_instance = Empty
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
