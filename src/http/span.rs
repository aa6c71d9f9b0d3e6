//! The request span: tracing-actix-web's root span plus the CDS Hooks fields, so every
//! line about a call (including the one logging its error) names the service, hook and
//! hookInstance. Never the patient, resource bodies or tokens.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

/// Builds the root span of each request.
pub struct CdsRootSpan;

impl RootSpanBuilder for CdsRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(
            request,
            service = Empty,
            hook = Empty,
            hook_instance = Empty
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
