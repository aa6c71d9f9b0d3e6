//! Demo mode (`crs-cds serve --demo` only): a small read-only FHIR R4 endpoint at
//! `/demo/fhir` with synthetic CAR-T patients generated relative to now, so the CDS Hooks
//! Sandbox or `curl` can call the service without hand-built data.
//!
//! Nothing on the production path depends on this module: `http::startup` mounts
//! [`scope`] only when `Settings::demo` is set, which only the `--demo` flag does (no
//! file key, no environment variable). The data is synthetic and tagged `HTEST`.
//!
//! Supported: `GET /demo/fhir/metadata`, read `GET /demo/fhir/{type}/{id}`, search
//! `GET /demo/fhir/{type}?…` by `subject`/`patient`, `_id`, `category`, `code` and
//! `status` (comma lists), paged by `_count` (default 50, at most 200) with `next` links;
//! other parameters (`_sort`, dates) are ignored, as FHIR's lenient handling allows.

pub mod auth;
pub mod ehr;
pub mod patients;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

pub use patients::{DemoPatient, PATIENTS};

/// The path the demo FHIR endpoint is mounted at.
pub const FHIR_PATH: &str = "/demo/fhir";

const FHIR_JSON: &str = "application/fhir+json";
const DEFAULT_COUNT: usize = 50;
const MAX_COUNT: usize = 200;

/// The `/demo/fhir` routes.
pub fn scope() -> actix_web::Scope {
    web::scope(FHIR_PATH)
        .route("/metadata", web::get().to(metadata))
        .route(
            "/.well-known/smart-configuration",
            web::get().to(auth::smart_configuration),
        )
        .route("/{type}", web::get().to(search))
        .route("/{type}/{id}", web::get().to(read))
}

fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}{FHIR_PATH}", info.scheme(), info.host())
}

fn outcome(status: actix_web::http::StatusCode, code: &str, text: &str) -> HttpResponse {
    HttpResponse::build(status).content_type(FHIR_JSON).body(
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{ "severity": "error", "code": code, "diagnostics": text }],
        })
        .to_string(),
    )
}

fn fhir(body: &Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(FHIR_JSON)
        .body(body.to_string())
}

async fn metadata() -> HttpResponse {
    let types = [
        "Patient",
        "Observation",
        "MedicationAdministration",
        "MedicationRequest",
        "Procedure",
    ];
    fhir(&json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-01",
        "kind": "instance",
        "software": { "name": "crs-cds demo FHIR endpoint", "version": env!("CARGO_PKG_VERSION") },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "resource": types.iter().map(|t| json!({
                "type": t,
                "interaction": [{ "code": "read" }, { "code": "search-type" }],
                "searchParam": [
                    { "name": "patient", "type": "reference" },
                    { "name": "subject", "type": "reference" },
                    { "name": "category", "type": "token" },
                    { "name": "code", "type": "token" },
                    { "name": "status", "type": "token" },
                ],
            })).collect::<Vec<_>>(),
        }],
    }))
}

/// The instant the demo record is generated at: now, to the whole minute. Every query of
/// one hook call or app launch (vitals, labs, medications… fetched in parallel, and the
/// pages of one search) then reads the same record; generated at the exact instant, two
/// queries a few milliseconds apart placed the same event at two instants, and the course
/// drawn from them had points the patient's record does not have.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    let now = chrono::Utc::now();
    now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now)
}

async fn read(path: web::Path<(String, String)>) -> HttpResponse {
    let (kind, id) = path.into_inner();
    patients::resources(now())
        .into_iter()
        .find(|r| r["resourceType"] == kind.as_str() && r["id"] == id.as_str())
        .map(|r| fhir(&r))
        .unwrap_or_else(|| {
            outcome(
                actix_web::http::StatusCode::NOT_FOUND,
                "not-found",
                &format!("no {kind} with id {id:?} in the demo data"),
            )
        })
}

/// Whether a token search value (`system|code` or `code`) matches one of the codings of
/// a CodeableConcept (or a list of them).
fn token_matches(concepts: &Value, wanted: &str) -> bool {
    let list: Vec<&Value> = match concepts {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let (system, code) = match wanted.split_once('|') {
        Some((s, c)) => (Some(s), c),
        None => (None, wanted),
    };
    list.iter()
        .filter_map(|c| c["coding"].as_array())
        .flatten()
        .any(|coding| {
            coding["code"] == code && system.is_none_or(|s| s.is_empty() || coding["system"] == s)
        })
}

fn patient_of(resource: &Value) -> Option<&str> {
    if resource["resourceType"] == "Patient" {
        return resource["id"].as_str();
    }
    resource["subject"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Patient/"))
}

fn matches(resource: &Value, params: &[(String, String)]) -> bool {
    params.iter().all(|(name, value)| {
        let any = |f: &dyn Fn(&str) -> bool| value.split(',').any(|v| f(v.trim()));
        match name.as_str() {
            "subject" | "patient" => {
                any(&|v| patient_of(resource) == Some(v.strip_prefix("Patient/").unwrap_or(v)))
            }
            "_id" => any(&|v| resource["id"] == v),
            "status" => any(&|v| resource["status"] == v),
            "category" => any(&|v| token_matches(&resource["category"], v)),
            "code" => any(&|v| {
                token_matches(&resource["code"], v)
                    || token_matches(&resource["medicationCodeableConcept"], v)
            }),
            _ => true,
        }
    })
}

/// Percent-encodes a query component (RFC 3986 unreserved characters stay).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn page_url(base: &str, kind: &str, params: &[(String, String)], offset: usize) -> String {
    let mut q: Vec<String> = params
        .iter()
        .filter(|(k, _)| k != "_offset")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    q.push(format!("_offset={offset}"));
    format!("{base}/{kind}?{}", q.join("&"))
}

async fn search(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    let kind = path.into_inner();
    let params = query.into_inner();
    let number = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.parse::<usize>())
    };
    let count = match number("_count") {
        None => DEFAULT_COUNT,
        Some(Ok(n)) => n.clamp(1, MAX_COUNT),
        Some(Err(_)) => {
            return outcome(
                actix_web::http::StatusCode::BAD_REQUEST,
                "invalid",
                "_count must be a whole number",
            );
        }
    };
    let offset = match number("_offset") {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return outcome(
                actix_web::http::StatusCode::BAD_REQUEST,
                "invalid",
                "_offset must be a whole number",
            );
        }
    };
    let base = base_url(&req);
    let hits: Vec<Value> = patients::resources(now())
        .into_iter()
        .filter(|r| r["resourceType"] == kind.as_str() && matches(r, &params))
        .collect();
    let total = hits.len();
    let mut link =
        vec![json!({ "relation": "self", "url": page_url(&base, &kind, &params, offset) })];
    if offset + count < total {
        link.push(
            json!({ "relation": "next", "url": page_url(&base, &kind, &params, offset + count) }),
        );
    }
    let entry: Vec<Value> = hits
        .into_iter()
        .skip(offset)
        .take(count)
        .map(|r| {
            json!({
                "fullUrl": format!("{base}/{}/{}", kind, r["id"].as_str().unwrap_or_default()),
                "resource": r,
                "search": { "mode": "match" },
            })
        })
        .collect();
    fhir(&json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": link,
        "entry": entry,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_search_matches_system_and_code_or_code_alone() {
        let concept = json!({"coding": [{"system": "http://loinc.org", "code": "8310-5"}]});
        assert!(token_matches(&concept, "http://loinc.org|8310-5"));
        assert!(token_matches(&concept, "8310-5"));
        assert!(!token_matches(&concept, "http://snomed.info/sct|8310-5"));
        assert!(!token_matches(&concept, "8480-6"));
    }

    #[test]
    fn a_subject_search_finds_only_that_patients_resources() {
        let r = json!({"resourceType": "Observation", "subject": {"reference": "Patient/a"}});
        assert!(matches(&r, &[("subject".into(), "Patient/a".into())]));
        assert!(matches(&r, &[("patient".into(), "a".into())]));
        assert!(!matches(&r, &[("subject".into(), "Patient/b".into())]));
    }
}
