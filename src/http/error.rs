//! The one error type of the HTTP layer and its single status mapping.
//!
//! `Display` never contains request data (it is what gets logged); [`ApiError::detail`]
//! is what the client sees and may echo its own input back.

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};

use super::fhir_client::FhirError;
use crate::protocol::request::RequestError;

/// Everything a request can fail with.
#[derive(thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, wrong types or missing fields (400).
    #[error("bad request ({})", kind_of(.0))]
    BadRequest(#[from] RequestError),
    /// The header pinning the evaluation time is malformed (400).
    #[error("bad request (evaluation time header)")]
    BadEvaluationTime,
    /// No such CDS Service (404).
    #[error("unknown service")]
    UnknownService(String),
    /// No such route (404).
    #[error("not found")]
    NotFound,
    /// The body is over the configured limit (413).
    #[error("request body over {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The data the grading needs can't be had from prefetch or the FHIR server (412).
    #[error("precondition failed: {0}")]
    PreconditionFailed(#[from] FhirError),
    /// A dependency (the feedback store) is not available (503).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The body broke off or was malformed on the wire (400; the client's fault).
    #[error("the request body could not be read")]
    BodyRead,
    /// The body did not arrive within `server.body_read_timeout_ms` (408).
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// The CPU pool and its queue are full (503 with Retry-After).
    #[error("busy: every grading slot is taken")]
    Busy,
    /// More draft orders than `server.max_draft_orders` (422).
    #[error("{count} draft orders, over server.max_draft_orders ({limit})")]
    TooManyDraftOrders {
        /// Orders sent.
        count: usize,
        /// The cap.
        limit: usize,
    },
    /// Anything else (500, opaque body).
    #[error("internal error: {0}")]
    Internal(String),
}

// Debug is what tracing-actix-web records on the request span: keep it free of request
// data, exactly like Display.
impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn kind_of(e: &RequestError) -> String {
    match e {
        RequestError::Malformed(_) => "malformed JSON or wrong types".into(),
        RequestError::Invalid { field, .. } => format!("invalid {field}"),
        RequestError::Missing(field) => format!("missing {field}"),
    }
}

impl ApiError {
    /// The short machine-readable error name.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(RequestError::Malformed(_)) => "malformed-request",
            ApiError::BadRequest(RequestError::Missing(_)) => "missing-field",
            ApiError::BadRequest(RequestError::Invalid { .. }) | ApiError::BadEvaluationTime => {
                "invalid-field"
            }
            ApiError::UnknownService(_) => "unknown-service",
            ApiError::NotFound => "not-found",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::PreconditionFailed(_) => "precondition-failed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::BodyRead => "unreadable-body",
            ApiError::BodyTimeout => "body-timeout",
            ApiError::Busy => "busy",
            ApiError::TooManyDraftOrders { .. } => "too-many-draft-orders",
            ApiError::Internal(_) => "internal-error",
        }
    }

    /// The detail shown to the client.
    pub fn detail(&self) -> String {
        match self {
            ApiError::BadRequest(e) => e.to_string(),
            ApiError::BadEvaluationTime => {
                "X-CRS-CDS-Evaluation-Time must be an RFC 3339 date-time".into()
            }
            ApiError::UnknownService(id) => {
                format!("no CDS Service with id {id:?}; see GET /cds-services")
            }
            ApiError::Internal(_) => "the service failed; the error was logged".into(),
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BadEvaluationTime => StatusCode::BAD_REQUEST,
            ApiError::UnknownService(_) | ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::Unavailable(_) | ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BodyRead => StatusCode::BAD_REQUEST,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyDraftOrders { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        // Log once, where the error becomes a response. Display holds no request data.
        // A body broken off by the client is not the service's fault: info, not ERROR.
        if matches!(self, ApiError::BodyRead | ApiError::BodyTimeout) {
            tracing::info!(status = status.as_u16(), error = %self, "request refused");
        } else if status.is_server_error()
            && !matches!(self, ApiError::Busy | ApiError::Unavailable(_))
        {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::warn!(status = status.as_u16(), error = %self, "request refused");
        }
        let detail = match self {
            // CDS Hooks 2.0.1: 412 when the service can't get the FHIR data it needs.
            ApiError::PreconditionFailed(e) => {
                format!("the data needed for grading could not be obtained: {e}")
            }
            _ => self.detail(),
        };
        let content_type = if matches!(self, ApiError::PreconditionFailed(_)) {
            "application/fhir+json"
        } else {
            "application/json"
        };
        let mut response = HttpResponse::build(status);
        response.content_type(content_type);
        if matches!(status, StatusCode::SERVICE_UNAVAILABLE) {
            response.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
        }
        // An error may leave the request body unread (413, 404, 408, ...): close the
        // connection rather than read an endless upload to find the next request.
        response.force_close();
        response.body(error_body(status, self.issue_code(), self.code(), &detail).to_string())
    }
}

impl ApiError {
    /// The FHIR `IssueType` of the OperationOutcome.
    pub fn issue_code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) | ApiError::BadEvaluationTime => "invalid",
            ApiError::UnknownService(_) | ApiError::NotFound => "not-found",
            ApiError::PayloadTooLarge { .. } => "too-costly",
            ApiError::PreconditionFailed(e) => e.issue_code(),
            ApiError::Unavailable(_) | ApiError::Busy => "transient",
            ApiError::BodyRead => "structure",
            ApiError::BodyTimeout => "timeout",
            ApiError::TooManyDraftOrders { .. } => "too-costly",
            ApiError::Internal(_) => "exception",
        }
    }
}

/// The code system of the service's own error codes (the `error` field).
pub const ERROR_CODE_SYSTEM: &str = "https://w3id.org/crs-cds/fhir/CodeSystem/error";

/// The one body of every 4xx/5xx answer: a FHIR OperationOutcome (the CDS Hooks 3.0
/// direction) that also carries the 2.0.1-era `error` (a short code) and `detail` fields,
/// so existing clients keep working. `detail` must hold no request data beyond what the
/// client itself sent.
pub fn error_body(status: StatusCode, issue_code: &str, code: &str, detail: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": if status.is_server_error() { "fatal" } else { "error" },
            "code": issue_code,
            "details": {
                "coding": [{ "system": ERROR_CODE_SYSTEM, "code": code }],
                "text": detail,
            },
            "diagnostics": detail,
        }],
        "error": code,
        "detail": detail,
    })
}

/// Gives an error answer that has no body (the JWT middleware's 401, actix's own 404/405
/// answers) the body of [`error_body`], keeping its status and headers.
pub fn fill_empty_error_body<B: MessageBody>(
    res: ServiceResponse<B>,
) -> ServiceResponse<EitherBody<B>> {
    let status = res.status();
    let empty = matches!(
        res.response().body().size(),
        BodySize::None | BodySize::Sized(0)
    );
    if !(status.is_client_error() || status.is_server_error()) || !empty {
        return res.map_into_left_body();
    }
    let (code, issue, detail) = match status {
        StatusCode::UNAUTHORIZED => (
            "unauthorized",
            "login",
            "a valid CDS client JWT is required (CDS Hooks 2.0.1 \"Trusting CDS Clients\")",
        ),
        StatusCode::FORBIDDEN => ("forbidden", "forbidden", "not allowed"),
        StatusCode::NOT_FOUND => ("not-found", "not-found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method-not-allowed", "not-supported", "method not allowed")
        }
        s if s.is_server_error() => ("internal-error", "exception", "the service failed"),
        _ => ("bad-request", "invalid", "the request was refused"),
    };
    let body = error_body(status, issue, code, detail).to_string();
    res.map_body(|head, _| {
        head.headers_mut().insert(
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::HeaderValue::from_static("application/json"),
        );
        EitherBody::right(BoxBody::new(body))
    })
}
