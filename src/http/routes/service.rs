//! `POST /cds-services/{id}`: parse → gather documents (prefetch, then fhirServer) →
//! adapter → engine → cards.

use std::borrow::Cow;

use serde::Deserialize;

use actix_web::{HttpRequest, HttpResponse, web};
use tracing::field::Empty;

use crate::adapter::{self, Document};
use crate::domain::{self, Timestamp};
use crate::http::error::ApiError;
use crate::http::fhir_client::{CallBudget, Fetched, FhirError, Query, ServerBase, next_link};
use crate::http::routes::read_body;
use crate::http::startup::AppState;
use crate::protocol::cards::{Card, CardInput, CdsResponse, Indicator, cards};
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
    /// Data problems of the gathering itself (a key cut at the page limit, a prefetched
    /// Bundle whose later pages could not be read), reported on the cards.
    issues: Vec<String>,
    /// The call's FHIR budget, when anything was fetched: its deadline covers processing.
    budget: Option<CallBudget>,
}

/// The card text for a key whose later pages were not read.
fn truncated_issue(key: &str, max_pages: usize) -> String {
    format!(
        "prefetch {key}: only the first {max_pages} pages were read (fhir.max_pages); the grade may miss later data"
    )
}

/// Whether `json` may hold a Bundle `next` link: a byte search first (most documents have
/// none), the JSON read only when the word or an escape that could spell it is there.
fn may_have_next(json: &str) -> Option<String> {
    if json.contains("\"next\"") || json.contains("\\u") {
        next_link(json)
    } else {
        None
    }
}

/// The Medications to read afterwards: only searched for when a document names one.
fn unresolved_medications(documents: &[(String, Cow<'_, str>)]) -> Vec<String> {
    if !documents
        .iter()
        .any(|(_, j)| j.contains("Medication/") || j.contains('\\'))
    {
        return Vec::new();
    }
    let refs: Vec<Document<'_>> = documents
        .iter()
        .map(|(o, j)| Document { origin: o, json: j })
        .collect();
    adapter::unresolved_medication_ids(&refs)
}

/// Most ids in one `Medication?_id=` search.
const MEDICATION_IDS_PER_SEARCH: usize = 50;

/// Prefetched documents plus whatever had to be fetched from `fhirServer`.
///
/// Every prefetch value is used, under the service's template keys or any other key a
/// client chose. A template key that is missing (or an OperationOutcome) is fetched
/// from `fhirServer`; without one, the call goes on with what was prefetched and the
/// gap is reported, unless nothing at all was prefetched (412: the data the grading
/// needs can't be had). With a `fhirServer`, `next` links of prefetched Bundles are
/// followed and Medications referenced but not sent are read with `Medication?_id=`,
/// all under the one deadline, page limit and byte budget (issue 9).
async fn gather<'r>(
    request: &'r ValidRequest,
    service: &ServiceDefinition,
    state: &AppState,
) -> Result<Gathered<'r>, ApiError> {
    let mut documents = Vec::new();
    let mut queries = Vec::new();
    let mut issues = Vec::new();
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
    let Some(server_text) = request.raw.fhir_server.as_deref() else {
        let keys: Vec<String> = queries.into_iter().map(|q| q.key).collect();
        if !keys.is_empty() && documents.is_empty() {
            return Err(FhirError::NoServer(keys.join(", ")).into());
        }
        // Later pages of prefetched Bundles cannot be read without a server: say so.
        for (key, json) in &documents {
            if may_have_next(json).is_some() {
                issues.push(format!(
                    "prefetch {key}: the Bundle has later pages and there is no fhirServer to read them; the grade may miss later data"
                ));
            }
        }
        return Ok(Gathered {
            documents,
            unfetched: keys,
            issues,
            budget: None,
        });
    };
    let prefetched_next: Vec<(String, String)> = documents
        .iter()
        .filter_map(|(key, json)| may_have_next(json).map(|n| (key.clone(), n)))
        .collect();
    // Nothing to fetch, unless a referenced Medication is missing: the documents are then
    // final, and the Medications missing from them are the ones read below.
    let mut missing_medications = None;
    if queries.is_empty() && prefetched_next.is_empty() {
        let missing = unresolved_medications(&documents);
        if missing.is_empty() {
            return Ok(Gathered {
                documents,
                unfetched: Vec::new(),
                issues,
                budget: None,
            });
        }
        missing_medications = Some(missing);
    }
    let base = ServerBase::parse(server_text)?;
    let token = request
        .raw
        .fhir_authorization
        .as_ref()
        .map(|a| &a.access_token);
    // A prefetched Bundle whose next page is on another server: not followed (the token
    // goes to fhirServer only), graded on what was sent, and said so on the cards.
    let (prefetched_next, elsewhere): (Vec<_>, Vec<_>) = prefetched_next
        .into_iter()
        .partition(|(_, next)| base.admits(next));
    for (key, _) in elsewhere {
        issues.push(format!(
            "prefetch {key}: the Bundle's next page is not on fhirServer and was not read; the grade may miss later data"
        ));
    }
    let budget = state.fhir.budget();
    let fetched = state
        .fhir
        .fetch_all(&base, token, queries, &state.metrics, &budget)
        .await?;
    let followed = futures::future::try_join_all(prefetched_next.into_iter().map(|(key, next)| {
        state
            .fhir
            .follow_prefetched(&base, token, key, next, &state.metrics, &budget)
    }))
    .await?;
    let max_pages = state.fhir.limits().max_pages;
    absorb(
        &mut documents,
        &mut issues,
        fetched.into_iter().chain(followed),
        max_pages,
    );
    // Medications referenced but neither prefetched nor included: one follow-up read. The
    // adapter returns FHIR ids only (`[A-Za-z0-9\-\.]{1,64}`), safe in a search URL.
    let ids = missing_medications.unwrap_or_else(|| unresolved_medications(&documents));
    let medication_queries: Vec<Query> = ids
        .chunks(MEDICATION_IDS_PER_SEARCH)
        .map(|chunk| Query {
            key: "medications".to_string(),
            relative_url: format!("Medication?_id={}", chunk.join(",")),
        })
        .collect();
    if !medication_queries.is_empty() {
        let medications = state
            .fhir
            .fetch_all(&base, token, medication_queries, &state.metrics, &budget)
            .await?;
        absorb(&mut documents, &mut issues, medications, max_pages);
    }
    Ok(Gathered {
        documents,
        unfetched: Vec::new(),
        issues,
        budget: Some(budget),
    })
}

/// Adds fetched pages to the documents, and an issue for each key the page limit stopped.
fn absorb<'r>(
    documents: &mut Vec<(String, Cow<'r, str>)>,
    issues: &mut Vec<String>,
    fetched: impl IntoIterator<Item = Fetched>,
    max_pages: usize,
) {
    for f in fetched {
        if f.truncated {
            issues.push(truncated_issue(&f.key, max_pages));
        }
        for page in f.pages {
            documents.push((f.key.clone(), Cow::Owned(page)));
        }
    }
}

#[derive(Deserialize)]
struct EntryCount {
    #[serde(default)]
    entry: Vec<serde::de::IgnoredAny>,
}

/// How many draft orders `context.draftOrders` holds (a Bundle's entries).
fn draft_order_count(json: &str) -> usize {
    serde_json::from_str::<EntryCount>(json).map_or(0, |b| b.entry.len())
}

/// Everything the CPU-heavy part needs, owned, so it can run on the blocking pool.
struct Work {
    hook: Hook,
    patient_id: String,
    documents: Vec<(String, String)>,
    draft_orders: Option<String>,
    selections: Vec<String>,
    issues: Vec<String>,
    now: Timestamp,
    max_cards: usize,
}

/// The adapter over gathered `(origin, JSON)` documents with the service's terminology and
/// its cap on typed-parsed entries (`server.max_parsed_entries`), observations up to
/// `window_hours` back; and the adapter's issues in words.
pub fn map_gathered(
    state: &AppState,
    patient_id: &str,
    documents: &[(String, String)],
    draft_orders: Option<&str>,
    selections: &[String],
    now: Timestamp,
    window_hours: f64,
) -> (adapter::Mapped, Vec<String>) {
    let documents: Vec<Document<'_>> = documents
        .iter()
        .map(|(origin, json)| Document {
            origin: origin.as_str(),
            json: json.as_str(),
        })
        .collect();
    let draft = draft_orders.map(|json| Document {
        origin: "draftOrders",
        json,
    });
    let mapped = adapter::map_documents_capped(
        Some(patient_id),
        &documents,
        draft,
        selections,
        now,
        &state.terminology,
        window_hours,
        state.limits.max_parsed_entries,
    );
    let issues = mapped
        .issues
        .iter()
        .map(|i| format!("{}: {}", i.location, i.message))
        .collect();
    (mapped, issues)
}

/// The adapter, the engine and the cards: the CPU-heavy part of a call.
fn grade(work: Work, state: &AppState) -> CdsResponse {
    let (mapped, adapter_issues) = map_gathered(
        state,
        &work.patient_id,
        &work.documents,
        work.draft_orders.as_deref(),
        &work.selections,
        work.now,
        // Everything the prefetch sent up to 7 days back: the course (issue 12) needs it.
        state.policy.window_hours.max(domain::MAX_WINDOW_HOURS),
    );
    // Over `server.max_parsed_entries`: not graded on part of the record; one card says
    // so, on every hook (issue 10).
    if let Some(limit) = &mapped.over_parse_limit {
        return CdsResponse {
            cards: vec![crate::protocol::cards::not_graded_card(
                limit.entries,
                limit.limit,
                &limit.unchecked_orders,
            )],
        };
    }
    if !mapped.has_infusion() {
        return CdsResponse::default();
    }
    let course =
        crate::protocol::course::for_card(work.hook, &mapped.facts, work.now, &state.policy);
    let assessment = domain::assess(&mapped.facts, &mapped.orders, work.now, &state.policy);
    let issues: Vec<String> = work.issues.into_iter().chain(adapter_issues).collect();
    let draft_orders: Option<serde_json::Value> = work
        .draft_orders
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok());
    let input = CardInput {
        hook: work.hook,
        patient_id: &work.patient_id,
        assessment: &assessment,
        orders: &mapped.orders,
        data_issues: &issues,
        draft_orders: draft_orders.as_ref(),
        course: course.as_ref(),
    };
    let mut cards = cap_cards(cards(&input), work.max_cards);
    // The app link (issue 13) goes on the patient-view grading card only.
    crate::protocol::cards::attach_app_links(work.hook, &mut cards, &state.app.links);
    CdsResponse { cards }
}

/// What the SMART app and the demo EHR read for one patient: the patient-view service's
/// documents, fetched as a hook call without prefetch would fetch them (the same
/// templates, FHIR client, paging, Medication follow-up, deadline and caps).
pub struct PatientViewData {
    /// (prefetch key, JSON page) documents for the adapter.
    pub documents: Vec<(String, String)>,
    /// Data problems of the gathering (pages not read), in words.
    pub issues: Vec<String>,
    /// The FHIR budget: its deadline also covers the processing.
    pub budget: Option<CallBudget>,
}

/// The patient-view hook request for `patient_id` on `fhir_server` with `token`, without
/// prefetch: every template key is fetched.
fn patient_view_request(
    fhir_server: &str,
    token: Option<&secrecy::SecretString>,
    patient_id: &str,
) -> Result<ValidRequest, ApiError> {
    use secrecy::ExposeSecret;
    let mut body = serde_json::json!({
        "hook": Hook::PatientView.name(),
        "hookInstance": uuid::Uuid::new_v4().to_string(),
        "fhirServer": fhir_server,
        "context": { "patientId": patient_id },
    });
    if let Some(t) = token {
        body["fhirAuthorization"] = serde_json::json!({
            "access_token": t.expose_secret(),
            "token_type": "Bearer",
            "scope": "",
            "subject": "crs-cds",
        });
    }
    let bytes = serde_json::to_vec(&body)
        .map_err(|_| ApiError::Internal("serializing the patient-view request".into()))?;
    Ok(CdsRequest::parse(&bytes)?.validate(Hook::PatientView)?)
}

/// The patient-view service's documents for `patient_id` from `fhir_server` (see
/// [`PatientViewData`]).
pub async fn gather_patient_view(
    state: &AppState,
    fhir_server: &str,
    token: Option<&secrecy::SecretString>,
    patient_id: &str,
) -> Result<PatientViewData, ApiError> {
    let service = discovery::services()
        .iter()
        .find(|s| s.hook() == Hook::PatientView)
        .ok_or_else(|| ApiError::Internal("no patient-view service is defined".into()))?;
    let request = patient_view_request(fhir_server, token, patient_id)?;
    let gathered = gather(&request, service, state).await?;
    Ok(PatientViewData {
        documents: gathered
            .documents
            .into_iter()
            .map(|(o, j)| (o, j.into_owned()))
            .collect(),
        issues: gathered.issues,
        budget: gathered.budget,
    })
}

/// The patient-view cards for `patient_id` from `fhir_server` at `now`, as a hook call
/// without prefetch would answer them (the demo EHR shows them with their links).
pub async fn patient_view_cards(
    state: &web::Data<AppState>,
    fhir_server: &str,
    patient_id: &str,
    now: Timestamp,
) -> Result<CdsResponse, ApiError> {
    let data = gather_patient_view(state, fhir_server, None, patient_id).await?;
    let work = Work {
        hook: Hook::PatientView,
        patient_id: patient_id.to_string(),
        documents: data.documents,
        draft_orders: None,
        selections: Vec::new(),
        issues: data.issues,
        now,
        max_cards: state.limits.max_cards,
    };
    on_cpu_pool(state, data.budget.as_ref(), move |s| grade(work, &s)).await
}

/// Runs `f` on the CPU pool (503 when it is full) and, after FHIR reads, within their
/// deadline: the deadline covers processing what was fetched, not only fetching it (412
/// when it passes).
pub async fn on_cpu_pool<T, F>(
    state: &web::Data<AppState>,
    budget: Option<&CallBudget>,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(std::sync::Arc<AppState>) -> T + Send + 'static,
{
    let run = state.cpu.admit()?.run(state.clone().into_inner(), f);
    match budget {
        Some(b) => tokio::time::timeout_at(b.deadline_at(), run)
            .await
            .map_err(|_| ApiError::from(b.expired(&state.metrics)))?,
        None => run.await,
    }
}

/// At most `max` cards: beyond it the `max - 1` most urgent and one warning card saying
/// how many were not shown (`server.max_cards`), so nothing is dropped silently.
fn cap_cards(mut all: Vec<Card>, max: usize) -> Vec<Card> {
    if all.len() <= max {
        return all;
    }
    // The most urgent cards are the ones kept: critical, then warning, then info, each
    // in the order the cards were built.
    all.sort_by_key(|c| match c.indicator {
        Indicator::Critical => 0,
        Indicator::Warning => 1,
        Indicator::Info => 2,
    });
    let hidden = all.len() - (max - 1);
    all.truncate(max - 1);
    let source = all[0].source.clone();
    all.push(Card {
        uuid: uuid::Uuid::new_v4().to_string(),
        summary: format!("{hidden} more CAR-T toxicity cards were not shown"),
        detail: format!(
            "This answer is limited to {max} cards (server.max_cards). {hidden} further cards, with their checks, were left out: review the remaining orders and data directly."
        ),
        indicator: Indicator::Warning,
        source,
        suggestions: Vec::new(),
        selection_behavior: None,
        override_reasons: Vec::new(),
        links: Vec::new(),
        extension: serde_json::json!({ "org.crs-cds": { "cardsNotShown": hidden } }),
    });
    all
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
    let body = read_body(
        &req,
        payload,
        state.max_body_bytes,
        state.limits.body_read_timeout,
    )
    .await?;
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
    if let Some(d) = request.draft_orders() {
        let n = draft_order_count(d);
        let limit = state.limits.max_draft_orders;
        if n > limit {
            return Err(ApiError::TooManyDraftOrders { count: n, limit });
        }
    }

    let gathered = gather(&request, service, &state).await?;
    let issues: Vec<String> = gathered
        .unfetched
        .iter()
        .map(|key| format!("prefetch {key}: not provided and no fhirServer to fetch it from"))
        .chain(gathered.issues)
        .collect();
    let work = Work {
        hook: request.hook,
        patient_id: request.patient_id.clone(),
        documents: gathered
            .documents
            .into_iter()
            .map(|(o, j)| (o, j.into_owned()))
            .collect(),
        draft_orders: request.draft_orders().map(str::to_string),
        selections: request.selections().to_vec(),
        issues,
        now,
        max_cards: state.limits.max_cards,
    };
    drop(body);
    let response = on_cpu_pool(&state, gathered.budget.as_ref(), move |s| grade(work, &s)).await?;
    for c in &response.cards {
        state.metrics.card(c.indicator.name());
    }
    span.record("cards", response.cards.len());
    tracing::info!(cards = response.cards.len(), "answered");
    Ok(HttpResponse::Ok().json(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_next_link_spelt_with_an_escape_is_still_found() {
        let plain = r#"{"resourceType":"Bundle","link":[{"relation":"next","url":"u"}]}"#;
        let escaped = r#"{"resourceType":"Bundle","link":[{"relation":"n\u0065xt","url":"u"}]}"#;
        assert_eq!(may_have_next(plain).as_deref(), Some("u"));
        assert_eq!(may_have_next(escaped).as_deref(), Some("u"));
        assert_eq!(may_have_next(r#"{"resourceType":"Bundle"}"#), None);
    }

    #[test]
    fn a_medication_reference_with_an_escaped_slash_is_still_searched_for() {
        let docs = vec![(
            "a".to_string(),
            Cow::Borrowed(
                r#"{"resourceType":"MedicationRequest","id":"r1","status":"active","intent":"order","medicationReference":{"reference":"Medication\/m1"}}"#,
            ),
        )];
        assert_eq!(unresolved_medications(&docs), vec!["m1"]);
        let none = vec![(
            "a".to_string(),
            Cow::Borrowed(r#"{"resourceType":"Patient"}"#),
        )];
        assert!(unresolved_medications(&none).is_empty());
    }

    #[test]
    fn only_fhir_ids_go_into_the_medication_search() {
        let referencing = |id: &str| {
            (
                "a".to_string(),
                Cow::Owned(format!(
                    r#"{{"resourceType":"MedicationRequest","id":"r1","status":"active","intent":"order","medicationReference":{{"reference":"Medication/{id}"}}}}"#
                )),
            )
        };
        let long = "x".repeat(65);
        let docs: Vec<(String, Cow<'_, str>)> = ["norepi-4.mg", "a,b", "a&_format=xml", "", &long]
            .into_iter()
            .map(referencing)
            .collect();
        assert_eq!(unresolved_medications(&docs), vec!["norepi-4.mg"]);
    }
}
