//! The demo SMART authorization server (`serve --demo` only, issue 13): just enough of
//! SMART App Launch 2.0 for the app's launch to run locally against `/demo/fhir`.
//!
//! - `GET /demo/fhir/.well-known/smart-configuration`: the endpoints and capabilities.
//! - `GET /demo/auth/authorize`: auto-approves for the demo patients. It checks the client
//!   id, that `redirect_uri` is this server's `/app/callback`, `aud` (the demo FHIR base),
//!   an S256 PKCE challenge and the `launch` id (made by the demo EHR); a standalone launch
//!   without `launch` gets a patient picker (a patient is never chosen silently).
//! - `POST /demo/auth/token`: exchanges a code once (a second use, an expired code, another
//!   `redirect_uri` or client, or a verifier that does not hash to the challenge are
//!   refused with `invalid_grant`) for a bearer token with `patient` and `appContext`.
//!
//! State is in memory (one process). The demo FHIR endpoint ignores the token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::patients::PATIENTS;
use crate::http::AppState;

/// Where the authorization endpoints are mounted.
pub const AUTH_PATH: &str = "/demo/auth";
/// How long a code may wait for its exchange.
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// How long a launch id made by the demo EHR stays usable.
pub const LAUNCH_LIFETIME: Duration = Duration::from_secs(600);
/// The lifetime of an access token, in seconds (the demo FHIR endpoint ignores it).
const TOKEN_SECONDS: u64 = 300;

/// A launch made by the demo EHR: which patient and which card link.
#[derive(Clone, Debug)]
struct Launch {
    patient: String,
    app_context: Option<String>,
    made: Instant,
}

/// An issued, not yet exchanged code.
#[derive(Clone, Debug)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
    patient: String,
    app_context: Option<String>,
    made: Instant,
}

/// The authorization server's memory (shared by every worker).
#[derive(Debug, Default)]
pub struct DemoAuth {
    launches: Mutex<HashMap<String, Launch>>,
    grants: Mutex<HashMap<String, Grant>>,
}

/// A fresh random value for a code, token or launch id (oauth2's 128-bit CSRF tokens).
fn random() -> String {
    oauth2::CsrfToken::new_random().secret().clone()
}

impl DemoAuth {
    /// Records a launch of the app for `patient` and returns its id.
    pub fn new_launch(&self, patient: &str, app_context: Option<&str>) -> String {
        let id = random();
        let mut launches = self.launches.lock().unwrap_or_else(|e| e.into_inner());
        launches.retain(|_, l| l.made.elapsed() < LAUNCH_LIFETIME);
        launches.insert(
            id.clone(),
            Launch {
                patient: patient.to_string(),
                app_context: app_context.map(str::to_string),
                made: Instant::now(),
            },
        );
        id
    }

    fn launch(&self, id: &str) -> Option<Launch> {
        let launches = self.launches.lock().unwrap_or_else(|e| e.into_inner());
        launches
            .get(id)
            .filter(|l| l.made.elapsed() < LAUNCH_LIFETIME)
            .cloned()
    }

    fn grant(&self, g: Grant) -> String {
        let code = random();
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants.retain(|_, g| g.made.elapsed() < CODE_LIFETIME);
        grants.insert(code.clone(), g);
        code
    }

    /// Takes the code out (single use, whatever the outcome of the exchange).
    fn take(&self, code: &str) -> Option<Grant> {
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants
            .remove(code)
            .filter(|g| g.made.elapsed() < CODE_LIFETIME)
    }
}

/// The `/demo/auth` routes.
pub fn scope() -> actix_web::Scope {
    web::scope(AUTH_PATH)
        .route("/authorize", web::get().to(authorize))
        .route("/token", web::post().to(token))
}

/// The service's base (demo mode always has one: the listening address).
fn base(state: &AppState) -> Option<&str> {
    state.app.public_base.as_deref()
}

fn text(status: StatusCode, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.to_string())
}

/// `GET /demo/fhir/.well-known/smart-configuration`.
pub async fn smart_configuration(state: web::Data<AppState>) -> HttpResponse {
    let Some(base) = base(&state) else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "no public base URL");
    };
    HttpResponse::Ok().json(json!({
        "issuer": format!("{base}{}", super::FHIR_PATH),
        "authorization_endpoint": format!("{base}{AUTH_PATH}/authorize"),
        "token_endpoint": format!("{base}{AUTH_PATH}/token"),
        "token_endpoint_auth_methods_supported": ["none"],
        "grant_types_supported": ["authorization_code"],
        "response_types_supported": ["code"],
        // The launch scopes and every scope the app asks for (one list: they can't drift).
        "scopes_supported": (["launch", "launch/patient"]
            .into_iter()
            .chain(crate::http::routes::app::DATA_SCOPES)
            .collect::<Vec<_>>()),
        "capabilities": [
            "launch-ehr", "launch-standalone", "context-ehr-patient",
            "context-standalone-patient", "client-public", "permission-v2",
        ],
        "code_challenge_methods_supported": ["S256"],
    }))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    aud: Option<String>,
    launch: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// The standalone patient picker's choice.
    patient: Option<String>,
}

/// An OAuth error sent back to the (checked) redirect URI.
fn redirect_error(redirect_uri: &str, error: &str, state: Option<&str>) -> HttpResponse {
    let mut url = format!("{redirect_uri}?error={error}");
    if let Some(s) = state {
        url.push_str(&format!("&state={}", super::encode(s)));
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// A PKCE S256 challenge: 43 base64url characters (a SHA-256 hash).
fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The standalone patient picker: the same authorize request with a `patient` chosen.
fn picker(query_string: &str) -> HttpResponse {
    let items: String = PATIENTS
        .iter()
        .filter(|p| p.car_t)
        .map(|p| {
            format!(
                "<li><a class=\"pick\" href=\"{AUTH_PATH}/authorize?{}&amp;patient={}\">{}</a>: {}</li>",
                crate::http::routes::app::escape(query_string),
                p.id,
                p.id,
                crate::http::routes::app::escape(p.summary)
            )
        })
        .collect();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Demo sign-in: choose a patient</title></head><body><h1>Demo sign-in: choose a synthetic patient</h1><ul>{items}</ul></body></html>\n"
        ))
}

async fn authorize(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    auth: web::Data<DemoAuth>,
) -> HttpResponse {
    let Some(base) = base(&state) else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "no public base URL");
    };
    let Ok(q) = web::Query::<AuthorizeQuery>::from_query(req.query_string()) else {
        return text(StatusCode::BAD_REQUEST, "malformed authorize request");
    };
    // Client and redirect URI first: until both are right, nothing is redirected.
    if q.client_id.as_deref() != Some(state.app.client_id.as_str()) {
        return text(StatusCode::BAD_REQUEST, "unknown client_id");
    }
    let callback = format!("{base}/app/callback");
    if q.redirect_uri.as_deref() != Some(callback.as_str()) {
        return text(
            StatusCode::BAD_REQUEST,
            "redirect_uri is not this server's /app/callback",
        );
    }
    let st = q.state.as_deref();
    if q.response_type.as_deref() != Some("code") {
        return redirect_error(&callback, "unsupported_response_type", st);
    }
    let fhir_base = format!("{base}{}", super::FHIR_PATH);
    if q.aud.as_deref().map(|a| a.trim_end_matches('/')) != Some(fhir_base.as_str()) {
        return redirect_error(&callback, "invalid_request", st);
    }
    let challenge = match (
        q.code_challenge.as_deref(),
        q.code_challenge_method.as_deref(),
    ) {
        (Some(c), Some("S256")) if is_s256_challenge(c) => c.to_string(),
        _ => return redirect_error(&callback, "invalid_request", st),
    };
    let scope = q.scope.clone().unwrap_or_default();
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let (patient, app_context) = match q.launch.as_deref() {
        Some(id) => {
            if !scopes.contains(&"launch") {
                return redirect_error(&callback, "invalid_scope", st);
            }
            match auth.launch(id) {
                Some(l) => (l.patient, l.app_context),
                None => return redirect_error(&callback, "invalid_request", st),
            }
        }
        None => {
            if !scopes.contains(&"launch/patient") {
                return redirect_error(&callback, "invalid_scope", st);
            }
            match q.patient.as_deref() {
                Some(p) if PATIENTS.iter().any(|d| d.id == p) => (p.to_string(), None),
                Some(_) => return redirect_error(&callback, "access_denied", st),
                None => return picker(req.query_string()),
            }
        }
    };
    let code = auth.grant(Grant {
        client_id: state.app.client_id.clone(),
        redirect_uri: callback.clone(),
        challenge,
        scope,
        patient,
        app_context,
        made: Instant::now(),
    });
    let mut url = format!("{callback}?code={}", super::encode(&code));
    if let Some(s) = st {
        url.push_str(&format!("&state={}", super::encode(s)));
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    code_verifier: Option<String>,
}

fn token_error(error: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "error": error }))
}

/// Whether `verifier` hashes to `challenge` (RFC 7636 S256).
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let computed = oauth2::PkceCodeChallenge::from_code_verifier_sha256(
        &oauth2::PkceCodeVerifier::new(verifier.to_string()),
    );
    (43..=128).contains(&verifier.len()) && computed.as_str() == challenge
}

async fn token(form: web::Form<TokenForm>, auth: web::Data<DemoAuth>) -> HttpResponse {
    if form.grant_type.as_deref() != Some("authorization_code") {
        return token_error("unsupported_grant_type");
    }
    let Some(grant) = form.code.as_deref().and_then(|c| auth.take(c)) else {
        return token_error("invalid_grant");
    };
    if form.client_id.as_deref() != Some(grant.client_id.as_str())
        || form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str())
    {
        return token_error("invalid_grant");
    }
    if !form
        .code_verifier
        .as_deref()
        .is_some_and(|v| verifier_matches(v, &grant.challenge))
    {
        return token_error("invalid_grant");
    }
    let mut body = json!({
        "access_token": random(),
        "token_type": "Bearer",
        "expires_in": TOKEN_SECONDS,
        "scope": grant.scope,
        "patient": grant.patient,
    });
    if let Some(c) = grant.app_context {
        body["appContext"] = json!(c);
    }
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_verifier_matches_its_challenge() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            challenge
        ));
        assert!(is_s256_challenge(challenge));
        assert!(!is_s256_challenge("plain-verifier"));
    }

    #[test]
    fn a_code_is_used_once() {
        let auth = DemoAuth::default();
        let code = auth.grant(Grant {
            client_id: "c".into(),
            redirect_uri: "r".into(),
            challenge: "x".into(),
            scope: String::new(),
            patient: "p".into(),
            app_context: None,
            made: Instant::now(),
        });
        assert!(auth.take(&code).is_some());
        assert!(auth.take(&code).is_none());
    }
}
