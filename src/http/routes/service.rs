//! `POST /cds-services/{id}`: parse → gather documents (prefetch, then fhirServer) →
//! adapter → engine → cards.

use std::borrow::Cow;

use actix_web::{HttpRequest, HttpResponse, web};
use tracing::field::Empty;

use crate::adapter::{self, Document};
use crate::domain::{self, Timestamp};
use crate::http::error::ApiError;
use crate::http::fhir_client::{FhirError, Query};
use crate::http::routes::read_body;
use crate::http::startup::AppState;
use crate::protocol::cards::{CardInput, CdsResponse, cards};
use crate::protocol::discovery::{self, Hook, ServiceDefinition, fill_template};
use crate::protocol::request::{CdsRequest, Prefetched, ValidRequest};

/// The header that pins the evaluation instant (only with `grading.allow_time_override`).
pub const EVALUATION_TIME_HEADER: &str = "X-CRS-CDS-Evaluation-Time";

fn evaluation_time(req: &HttpRequest, state: &AppState) -> Result<Timestamp, ApiError> {
    if state.allow_time_override
        && let Some(v) = req.headers().get(EVALUATION_TIME_HEADER)
    {
        let text = v.to_str().map_err(|_| ApiError::BadEvaluationTime)?;
        let t = chrono::DateTime::parse_from_rfc3339(text.trim())
            .map_err(|_| ApiError::BadEvaluationTime)?;
        return Ok(Timestamp(t.timestamp_millis()));
    }
    Ok(Timestamp(chrono::Utc::now().timestamp_millis()))
}

/// A hookInstance is a UUID by the spec; anything else is not echoed into logs.
fn loggable_instance(s: &str) -> &str {
    if s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        s
    } else {
        "[not a uuid]"
    }
}

/// What [`gather`] found.
struct Gathered<'r> {
    /// (origin, JSON) documents for the adapter.
    documents: Vec<(String, Cow<'r, str>)>,
    /// Template keys the client did not prefetch and that could not be fetched because
    /// the request names no `fhirServer`; reported on the cards as missing data.
    unfetched: Vec<String>,
}

/// Prefetched documents plus whatever had to be fetched from `fhirServer`.
///
/// Every prefetch value is used, under the service's template keys or any other key a
/// client chose. A template key that is missing (or an OperationOutcome) is fetched
/// from `fhirServer`; without one, the call goes on with what was prefetched and the
/// gap is reported, unless nothing at all was prefetched (412: the data the grading
/// needs can't be had).
async fn gather<'r>(
    request: &'r ValidRequest,
    service: &ServiceDefinition,
    state: &AppState,
) -> Result<Gathered<'r>, ApiError> {
    let mut documents = Vec::new();
    let mut queries = Vec::new();
    for (key, template) in &service.prefetch {
        match request.prefetched(key) {
            Prefetched::Data(json) => documents.push((key.clone(), Cow::Borrowed(json))),
            // CDS Hooks 2.0.1: `null` means the client has no data for this key.
            Prefetched::Null => {}
            Prefetched::Missing => {
                let relative_url =
                    fill_template(template, &request.patient_id).ok_or_else(|| {
                        ApiError::Internal(format!("prefetch template {key} has an unknown token"))
                    })?;
                queries.push(Query {
                    key: key.clone(),
                    relative_url,
                });
            }
        }
    }
    for key in request.raw.prefetch.iter().flat_map(|p| p.keys()) {
        if !service.prefetch.contains_key(key)
            && let Prefetched::Data(json) = request.prefetched(key)
        {
            documents.push((key.clone(), Cow::Borrowed(json)));
        }
    }
    if queries.is_empty() {
        return Ok(Gathered {
            documents,
            unfetched: Vec::new(),
        });
    }
    let Some(server) = request.raw.fhir_server.as_deref() else {
        let keys: Vec<String> = queries.into_iter().map(|q| q.key).collect();
        if documents.is_empty() {
            return Err(FhirError::NoServer(keys.join(", ")).into());
        }
        return Ok(Gathered {
            documents,
            unfetched: keys,
        });
    };
    let token = request
        .raw
        .fhir_authorization
        .as_ref()
        .map(|a| &a.access_token);
    let fetched = state
        .fhir
        .fetch_all(server, token, queries, &state.metrics)
        .await?;
    for f in fetched {
        for page in f.pages {
            documents.push((f.key.clone(), Cow::Owned(page)));
        }
    }
    Ok(Gathered {
        documents,
        unfetched: Vec::new(),
    })
}

/// Answers one CDS Hooks call.
#[tracing::instrument(
    name = "cds_service",
    skip_all,
    fields(service = Empty, hook = Empty, hook_instance = Empty, cards = Empty)
)]
pub async fn call_service(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    root: tracing_actix_web::RootSpan,
) -> Result<HttpResponse, ApiError> {
    let id = super::service_id(&req);
    let service = discovery::service(&id).ok_or(ApiError::UnknownService(id))?;
    let span = tracing::Span::current();
    span.record("service", service.id.as_str());
    root.record("service", service.id.as_str());
    let body = read_body(&req, payload, state.max_body_bytes).await?;
    let request = CdsRequest::parse(&body)?;
    if let Some(h) = request.hook.as_deref().and_then(Hook::from_name) {
        span.record("hook", h.name());
        root.record("hook", h.name());
    }
    if let Some(i) = request.hook_instance.as_deref() {
        span.record("hook_instance", loggable_instance(i));
        root.record("hook_instance", loggable_instance(i));
    }
    let request = request.validate(service.hook())?;
    let now = evaluation_time(&req, &state)?;

    let gathered = gather(&request, service, &state).await?;
    let documents: Vec<Document<'_>> = gathered
        .documents
        .iter()
        .map(|(origin, json)| Document {
            origin: origin.as_str(),
            json: json.as_ref(),
        })
        .collect();
    let draft = request.draft_orders().map(|json| Document {
        origin: "draftOrders",
        json,
    });
    let mapped = adapter::map_documents_for_patient(
        Some(&request.patient_id),
        &documents,
        draft,
        request.selections(),
        now,
        &state.terminology,
        state.policy.window_hours,
    );

    let response = if !mapped.has_infusion() {
        CdsResponse::default()
    } else {
        let assessment = domain::assess(&mapped.facts, &mapped.orders, now, &state.policy);
        let issues: Vec<String> = gathered
            .unfetched
            .iter()
            .map(|key| format!("prefetch {key}: not provided and no fhirServer to fetch it from"))
            .chain(
                mapped
                    .issues
                    .iter()
                    .map(|i| format!("{}: {}", i.location, i.message)),
            )
            .collect();
        let draft_orders: Option<serde_json::Value> = request
            .draft_orders()
            .and_then(|j| serde_json::from_str(j).ok());
        let input = CardInput {
            hook: request.hook,
            patient_id: &request.patient_id,
            assessment: &assessment,
            orders: &mapped.orders,
            data_issues: &issues,
            draft_orders: draft_orders.as_ref(),
        };
        CdsResponse {
            cards: cards(&input),
        }
    };
    for c in &response.cards {
        state.metrics.card(c.indicator.name());
    }
    span.record("cards", response.cards.len());
    tracing::info!(cards = response.cards.len(), "answered");
    Ok(HttpResponse::Ok().json(response))
}
