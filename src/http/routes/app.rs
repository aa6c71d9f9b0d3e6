//! The SMART app (issue 13): `GET /app/launch` (SMART App Launch 2.0 EHR launch with
//! `iss` and `launch`, or a standalone launch without `launch`), `GET /app/callback` (the
//! code exchange, then the patient's data since the infusion through the patient-view
//! gather path, the adapter and the course) and the page's static files.
//!
//! Nothing is stored server-side: the OAuth `state`, the PKCE verifier, `iss` and the token
//! endpoint travel in one AEAD-encrypted (`cookie` crate private jar), HttpOnly,
//! SameSite=Lax cookie that lives 10 minutes, so any replica with the same
//! `CRS_CDS_APP_COOKIE_KEY` can finish the flow. The access token lives for one request.
//!
//! `iss` must be on `app.allowed_issuers` before any request goes out (no open redirect,
//! no server-side request to a URL a link chose). Outbound requests use the FHIR client's
//! `reqwest` client: no redirects, a timeout, a byte cap.
//!
//! Logs name fixed outcomes only: never the code, state, token, `iss` query or patient.

use std::time::Duration;

use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, EndpointNotSet, EndpointSet, ExtraTokenFields,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{AppLinks, Settings};
use crate::domain::Timestamp;
use crate::http::error::ApiError;
use crate::http::fhir_client::ServerBase;
use crate::http::startup::AppState;
use crate::outbound::read_capped;
use crate::protocol::cards::{Link, app_links};

/// The launch cookie's name.
pub const COOKIE_NAME: &str = "crs_cds_launch";
/// The launch cookie's path: only the app's routes receive it.
pub const COOKIE_PATH: &str = "/app";
/// How long a launch may take, from `/app/launch` to `/app/callback`.
pub const LAUNCH_MAX_AGE_SECS: i64 = 600;
/// The largest `.well-known/smart-configuration` or token answer read.
const SMALL_JSON_MAX_BYTES: usize = 64 * 1024;
/// The longest `launch` value passed on.
const MAX_LAUNCH_LEN: usize = 1024;
/// The course on the page looks back this far at most (as the card's course: 30 days).
pub const APP_WINDOW_HOURS: f64 = 30.0 * 24.0;

/// The scopes after the launch scope (`launch` or `launch/patient`), exactly as issue 13
/// lists them: read access to what the patient-view service reads, and the user's identity.
pub const DATA_SCOPES: [&str; 7] = [
    "patient/Observation.rs",
    "patient/MedicationAdministration.rs",
    "patient/MedicationRequest.rs",
    "patient/Procedure.rs",
    "patient/Patient.r",
    "openid",
    "fhirUser",
];

/// The app's settings, resolved at start-up.
pub struct AppRuntime {
    /// The service's public base URL (`server.public_base_url`, or the listening address
    /// in demo mode); `None`: no links and no app.
    pub public_base: Option<String>,
    /// `app.client_id`.
    pub client_id: String,
    /// `app.allowed_issuers` (plus the demo FHIR base in demo mode), without trailing `/`.
    pub allowed_issuers: Vec<String>,
    key: Option<Key>,
    /// The CSP of every `/app` response.
    pub csp: String,
    /// The links the grading card carries.
    pub links: Vec<Link>,
    secure_cookie: bool,
}

/// Whether `base` is plain http on a loopback host (the only place a cookie may lack
/// `Secure`: browsers treat loopback as a secure context, and the demo runs there).
fn is_loopback_http(base: &str) -> bool {
    let Some(rest) = base.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl AppRuntime {
    /// From the settings, with `port` the bound port (the demo's base uses it).
    pub fn new(settings: &Settings, port: u16) -> AppRuntime {
        let public_base = settings.server.public_base_url.clone().or_else(|| {
            settings
                .demo
                .then(|| format!("http://{}:{port}", settings.server.bind.ip()))
        });
        let mut allowed_issuers = settings.app.allowed_issuers.clone();
        if settings.demo
            && let Some(base) = &public_base
        {
            allowed_issuers.push(format!("{base}/demo/fhir"));
        }
        let key = match &settings.app.cookie_key {
            Some(text) => {
                use secrecy::ExposeSecret;
                crate::config::decode_cookie_key(text.expose_secret())
                    .filter(|b| b.len() >= crate::config::MIN_COOKIE_KEY_BYTES)
                    .map(|b| Key::derive_from(&b))
            }
            // A random key per process: launches do not survive a restart (demo only).
            None if settings.demo => Some(Key::generate()),
            None => None,
        };
        let (smart, absolute) = match settings.cards.app_links {
            AppLinks::Smart => (true, false),
            AppLinks::Absolute => (false, true),
            AppLinks::Both => (true, true),
            AppLinks::None => (false, false),
        };
        let links = public_base
            .as_deref()
            .map(|b| app_links(b, smart, absolute))
            .unwrap_or_default();
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors {}",
            settings.app.frame_ancestors
        );
        let secure_cookie = !public_base.as_deref().is_some_and(is_loopback_http);
        AppRuntime {
            public_base,
            client_id: settings.app.client_id.clone(),
            allowed_issuers,
            key,
            csp,
            links,
            secure_cookie,
        }
    }

    /// Whether the app can run: a key and a public base URL.
    pub fn ready(&self) -> bool {
        self.key.is_some() && self.public_base.is_some()
    }

    /// The allowed issuer equal to `iss` (compared without a trailing `/`).
    fn allowed(&self, iss: &str) -> Option<&str> {
        let iss = iss.trim_end_matches('/');
        self.allowed_issuers
            .iter()
            .find(|a| a.as_str() == iss)
            .map(String::as_str)
    }
}

/// The security headers of every `/app` answer (wrapped around the `/app` scope).
pub fn security_headers(csp: &str) -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::CONTENT_SECURITY_POLICY, csp.to_string()))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
}

/// The `/app` routes (mounted under `web::scope("/app")` with [`security_headers`]).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/launch", web::get().to(launch))
        .route("/callback", web::get().to(callback))
        .route("/static/app.css", web::get().to(css))
        .route("/static/app.js", web::get().to(js));
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(crate::render::APP_CSS)
}

async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(crate::render::APP_JS)
}

pub use crate::render::escape_html as escape;

/// Why a launch or callback stopped, each with its status and words for the person at
/// the screen (a clinician or the integrator setting the app up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    NotConfigured,
    BadQuery,
    IssuerNotAllowed,
    Discovery,
    NoLaunchCookie,
    StateMismatch,
    Expired,
    Denied,
    TokenRefused,
    NoPatient,
    FhirData,
    TooLarge,
    Busy,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::NotConfigured | Refusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::BadQuery
            | Refusal::IssuerNotAllowed
            | Refusal::NoLaunchCookie
            | Refusal::StateMismatch
            | Refusal::Expired => StatusCode::BAD_REQUEST,
            Refusal::Denied => StatusCode::FORBIDDEN,
            Refusal::Discovery | Refusal::TokenRefused | Refusal::NoPatient | Refusal::FhirData => {
                StatusCode::BAD_GATEWAY
            }
            Refusal::TooLarge => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// A fixed label for the log (never request data).
    fn label(self) -> &'static str {
        match self {
            Refusal::NotConfigured => "not-configured",
            Refusal::BadQuery => "bad-query",
            Refusal::IssuerNotAllowed => "issuer-not-allowed",
            Refusal::Discovery => "discovery-failed",
            Refusal::NoLaunchCookie => "no-launch-cookie",
            Refusal::StateMismatch => "state-mismatch",
            Refusal::Expired => "launch-expired",
            Refusal::Denied => "authorization-denied",
            Refusal::TokenRefused => "token-refused",
            Refusal::NoPatient => "no-patient",
            Refusal::FhirData => "fhir-data-unavailable",
            Refusal::TooLarge => "record-over-parsed-entry-limit",
            Refusal::Busy => "busy",
        }
    }

    fn words(self) -> (&'static str, &'static str) {
        match self {
            Refusal::NotConfigured => (
                "The CRS/ICANS course app is not set up",
                "This service has no app cookie key or public address configured (CRS_CDS_APP_COOKIE_KEY, server.public_base_url). Ask the team that runs crs-cds; the grading cards are not affected.",
            ),
            Refusal::BadQuery => (
                "The launch request is incomplete",
                "The app must be opened from the EHR (it passes iss and launch), or the service must allow exactly one EHR for a standalone launch. Open it again from the patient's CRS/ICANS card.",
            ),
            Refusal::IssuerNotAllowed => (
                "This EHR is not known to the app",
                "The FHIR server that launched the app is not on the app's list of allowed servers (app.allowed_issuers). No data was requested. Ask the team that runs crs-cds to add it.",
            ),
            Refusal::Discovery => (
                "The EHR's sign-in endpoints could not be read",
                "The EHR's .well-known/smart-configuration could not be read or does not support PKCE S256. Try again; if it persists, contact the EHR integration team.",
            ),
            Refusal::NoLaunchCookie => (
                "The launch could not be finished",
                "The browser did not bring back the launch started a moment ago (it may have been started in another browser, or cookies are blocked). Open the app again from the patient's card.",
            ),
            Refusal::StateMismatch => (
                "The sign-in answer does not match this launch",
                "The answer from the EHR's sign-in belongs to another launch and was not used. Open the app again from the patient's card.",
            ),
            Refusal::Expired => (
                "The launch took too long",
                "More than 10 minutes passed between opening the app and signing in. Open the app again from the patient's card.",
            ),
            Refusal::Denied => (
                "The EHR did not grant access",
                "The EHR's sign-in refused or cancelled access to the patient's data. No data was read.",
            ),
            Refusal::TokenRefused => (
                "The EHR refused the sign-in",
                "The EHR's token endpoint did not accept the sign-in, or its answer could not be used. No data was read. Open the app again from the patient's card.",
            ),
            Refusal::NoPatient => (
                "The EHR did not say which patient",
                "The sign-in finished without a patient in context, so no course is shown. Open the app from the patient's chart.",
            ),
            Refusal::FhirData => (
                "The patient's data could not be read",
                "The EHR's FHIR server did not deliver the data in time or in full. No course is shown, because an incomplete record could look reassuring. Try again in a moment.",
            ),
            Refusal::TooLarge => (
                "The patient's record is too large to draw here",
                "The record holds more entries to check than this service reads in one call (server.max_parsed_entries), so no course is drawn: a course from part of the record could look reassuring. Review the record directly, or ask the team that runs crs-cds to raise the limit.",
            ),
            Refusal::Busy => (
                "The service is busy",
                "Every grading slot is taken. Try again in a moment.",
            ),
        }
    }
}

/// A small HTML page.
pub fn html_page(status: StatusCode, title: &str, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title><link rel=\"stylesheet\" href=\"/app/static/app.css\"></head><body><main><h1>{t}</h1><p>{x}</p></main></body></html>\n",
            t = escape(title),
            x = escape(text)
        ))
}

fn refuse(r: Refusal) -> HttpResponse {
    tracing::info!(outcome = r.label(), "SMART app request refused");
    let (title, text) = r.words();
    html_page(r.status(), title, text)
}

/// A cookie that deletes the launch cookie.
fn removal_cookie() -> Cookie<'static> {
    let mut c = Cookie::build(COOKIE_NAME, "").path(COOKIE_PATH).finish();
    c.make_removal();
    c
}

/// A refusal that also deletes the launch cookie.
fn refuse_clearing(r: Refusal) -> HttpResponse {
    let mut res = refuse(r);
    // Only fails for an invalid header value, which a fixed cookie never is.
    let _ = res.add_cookie(&removal_cookie());
    res
}

/// What the launch cookie carries between `/app/launch` and `/app/callback`.
#[derive(Serialize, Deserialize)]
pub struct LaunchCookie {
    /// The OAuth `state`.
    pub state: String,
    /// The PKCE verifier.
    pub verifier: String,
    /// The FHIR server (an allowed issuer).
    pub iss: String,
    /// The token endpoint from its SMART configuration.
    pub token_endpoint: String,
    /// When the launch started (Unix seconds).
    pub issued_at: i64,
}

#[derive(Deserialize)]
struct LaunchQuery {
    iss: Option<String>,
    launch: Option<String>,
}

#[derive(Deserialize)]
struct SmartConfiguration {
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

/// An endpoint from the issuer's SMART configuration: absolute, no userinfo or fragment,
/// https (http only when the issuer itself is plain http, as in the demo).
fn usable_endpoint(url: &str, iss: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let scheme_ok = u.scheme() == "https" || (u.scheme() == "http" && iss.starts_with("http://"));
    scheme_ok
        && u.host_str().is_some()
        && u.username().is_empty()
        && u.password().is_none()
        && u.fragment().is_none()
}

async fn discover(state: &AppState, iss: &str) -> Option<SmartConfiguration> {
    let url = format!("{iss}/.well-known/smart-configuration");
    let response = state
        .fhir
        .http()
        .get(&url)
        .header(header::ACCEPT.as_str(), "application/json")
        .timeout(state.fhir.deadline())
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body = read_capped(response, SMALL_JSON_MAX_BYTES).await.ok()?;
    let config: SmartConfiguration = serde_json::from_slice(&body).ok()?;
    let s256 = config
        .code_challenge_methods_supported
        .as_ref()
        .is_none_or(|m| m.iter().any(|x| x == "S256"));
    (s256
        && usable_endpoint(&config.authorization_endpoint, iss)
        && usable_endpoint(&config.token_endpoint, iss))
    .then_some(config)
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `GET /app/launch?iss&launch`.
async fn launch(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let app = &state.app;
    let (Some(key), Some(base)) = (app.key.as_ref(), app.public_base.as_deref()) else {
        return refuse(Refusal::NotConfigured);
    };
    let Ok(query) = web::Query::<LaunchQuery>::from_query(req.query_string()) else {
        return refuse(Refusal::BadQuery);
    };
    // No `iss` (the card's `absolute` link, a bookmark): a standalone launch against the
    // one allowed issuer, when there is exactly one; never a server the request names.
    let only_issuer = match app.allowed_issuers.as_slice() {
        [one] => Some(one.as_str()),
        _ => None,
    };
    let Some(iss_text) = query.iss.as_deref().or(only_issuer) else {
        return refuse(Refusal::BadQuery);
    };
    // The allow-list first: nothing goes out for an issuer that is not on it.
    let Some(iss) = app.allowed(iss_text).map(str::to_string) else {
        return refuse(Refusal::IssuerNotAllowed);
    };
    if ServerBase::parse(&iss).is_err() {
        return refuse(Refusal::IssuerNotAllowed);
    }
    let launch = query.launch.as_deref().filter(|l| !l.is_empty());
    if launch.is_some_and(|l| l.len() > MAX_LAUNCH_LEN || l.chars().any(char::is_control)) {
        return refuse(Refusal::BadQuery);
    }
    let Some(config) = discover(&state, &iss).await else {
        return refuse(Refusal::Discovery);
    };
    let (Ok(auth_url), Ok(token_url), Ok(redirect)) = (
        AuthUrl::new(config.authorization_endpoint.clone()),
        TokenUrl::new(config.token_endpoint.clone()),
        RedirectUrl::new(format!("{base}/app/callback")),
    ) else {
        return refuse(Refusal::Discovery);
    };
    let client = oauth2::basic::BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_auth_uri(auth_url)
        .set_token_uri(token_url)
        .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let launch_scope = if launch.is_some() {
        "launch"
    } else {
        // Standalone launch: ask the authorization server to pick the patient.
        "launch/patient"
    };
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new(launch_scope.to_string()))
        .add_scopes(DATA_SCOPES.iter().map(|s| Scope::new(s.to_string())))
        .set_pkce_challenge(challenge)
        .add_extra_param("aud", iss.clone());
    if let Some(l) = launch {
        request = request.add_extra_param("launch", l.to_string());
    }
    let (url, csrf) = request.url();
    let cookie = LaunchCookie {
        state: csrf.secret().clone(),
        verifier: verifier.secret().clone(),
        iss,
        token_endpoint: config.token_endpoint,
        issued_at: now_secs(),
    };
    let Ok(value) = serde_json::to_string(&cookie) else {
        return refuse(Refusal::NotConfigured);
    };
    let mut jar = CookieJar::new();
    jar.private_mut(key).add(
        Cookie::build(COOKIE_NAME, value)
            .path(COOKIE_PATH)
            .http_only(true)
            .secure(app.secure_cookie)
            .same_site(SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::seconds(
                LAUNCH_MAX_AGE_SECS,
            ))
            .finish(),
    );
    let mut res = HttpResponse::Found();
    res.insert_header((header::LOCATION, url.as_str()));
    for c in jar.delta() {
        res.cookie(c.clone());
    }
    tracing::info!(
        outcome = "redirected",
        ehr_launch = launch.is_some(),
        "SMART app launch"
    );
    res.finish()
}

/// The SMART token response's context fields (SMART App Launch 2.0 "Launch context").
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SmartFields {
    /// The patient in context.
    #[serde(default)]
    pub patient: Option<String>,
    /// The `appContext` of the card link, passed back by the EHR.
    #[serde(default, rename = "appContext")]
    pub app_context: Option<String>,
}

impl ExtraTokenFields for SmartFields {}

type SmartTokenResponse = StandardTokenResponse<SmartFields, BasicTokenType>;

type SmartClient = oauth2::Client<
    BasicErrorResponse,
    SmartTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Why the token request itself failed (never with the request or answer in it).
#[derive(Debug, thiserror::Error)]
enum TokenHttpError {
    /// Not reachable, timed out, or not readable.
    #[error("the token endpoint could not be reached")]
    Transport,
    /// Over the byte cap.
    #[error("the token endpoint's answer is too large")]
    TooLarge,
}

/// Sends one oauth2 request with the FHIR client's reqwest client (no redirects).
async fn send(
    http: reqwest::Client,
    timeout: Duration,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, TokenHttpError> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|_| TokenHttpError::Transport)?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE.as_str())
        .cloned();
    let body = read_capped(response, SMALL_JSON_MAX_BYTES)
        .await
        .map_err(|_| TokenHttpError::TooLarge)?;
    let mut out = oauth2::http::Response::builder().status(status);
    if let Some(ct) = content_type {
        out = out.header(oauth2::http::header::CONTENT_TYPE, ct);
    }
    out.body(body).map_err(|_| TokenHttpError::Transport)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Compares two secrets in time independent of where they first differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The launch cookie of `req`, decrypted and checked (`None`: absent, forged or altered).
fn launch_cookie(req: &HttpRequest, key: &Key) -> Option<LaunchCookie> {
    let raw = req.cookie(COOKIE_NAME)?;
    let mut jar = CookieJar::new();
    jar.add_original(raw.into_owned());
    let plain = jar.private(key).get(COOKIE_NAME)?;
    serde_json::from_str(plain.value()).ok()
}

/// `GET /app/callback?code&state`.
async fn callback(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let app = &state.app;
    let (Some(key), Some(base)) = (app.key.as_ref(), app.public_base.as_deref()) else {
        return refuse(Refusal::NotConfigured);
    };
    let Ok(query) = web::Query::<CallbackQuery>::from_query(req.query_string()) else {
        return refuse_clearing(Refusal::BadQuery);
    };
    let Some(launch) = launch_cookie(&req, key) else {
        return refuse_clearing(Refusal::NoLaunchCookie);
    };
    let age = now_secs() - launch.issued_at;
    if !(-60..=LAUNCH_MAX_AGE_SECS).contains(&age) {
        return refuse_clearing(Refusal::Expired);
    }
    let Some(returned_state) = query.state.as_deref() else {
        return refuse_clearing(Refusal::StateMismatch);
    };
    if !same_secret(returned_state, &launch.state) {
        return refuse_clearing(Refusal::StateMismatch);
    }
    if query.error.is_some() {
        return refuse_clearing(Refusal::Denied);
    }
    let Some(code) = query.code.clone().filter(|c| !c.is_empty()) else {
        return refuse_clearing(Refusal::BadQuery);
    };
    // The issuer is checked again: a key rotation or a config change may have removed it.
    if app.allowed(&launch.iss).is_none() {
        return refuse_clearing(Refusal::IssuerNotAllowed);
    }
    let (Ok(token_url), Ok(redirect)) = (
        TokenUrl::new(launch.token_endpoint.clone()),
        RedirectUrl::new(format!("{base}/app/callback")),
    ) else {
        return refuse_clearing(Refusal::TokenRefused);
    };
    let client: SmartClient = oauth2::Client::new(ClientId::new(app.client_id.clone()))
        .set_token_uri(token_url)
        .set_redirect_uri(redirect);
    let http = state.fhir.http().clone();
    let timeout = state.fhir.deadline();
    let send_one = move |r: oauth2::HttpRequest| send(http.clone(), timeout, r);
    let token = match client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(launch.verifier.clone()))
        .request_async(&send_one)
        .await
    {
        Ok(t) => t,
        // The error may hold the answer's body (a token): only a fixed label is logged.
        Err(_) => return refuse_clearing(Refusal::TokenRefused),
    };
    let Some(patient) = token
        .extra_fields()
        .patient
        .clone()
        .filter(|p| crate::protocol::request::is_fhir_id(p))
    else {
        return refuse_clearing(Refusal::NoPatient);
    };
    let access = SecretString::from(token.access_token().secret().clone());
    let data =
        match super::service::gather_patient_view(&state, &launch.iss, Some(&access), &patient)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "SMART app: the patient's data could not be read");
                return refuse_clearing(Refusal::FhirData);
            }
        };
    drop(access);
    let now = Timestamp(chrono::Utc::now().timestamp_millis());
    let (documents, issues) = (data.documents, data.issues);
    let page = super::service::on_cpu_pool(&state, data.budget.as_ref(), move |s| {
        course_page_for(&s, &patient, &documents, issues, now)
    })
    .await;
    let page = match page {
        Ok(Ok(page)) => page,
        Ok(Err(refusal)) => return refuse_clearing(refusal),
        // The FHIR deadline passed while the course was computed.
        Err(ApiError::PreconditionFailed(_)) => return refuse_clearing(Refusal::FhirData),
        Err(_) => return refuse_clearing(Refusal::Busy),
    };
    tracing::info!(outcome = "page", "SMART app course shown");
    let mut res = HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page);
    let _ = res.add_cookie(&removal_cookie());
    res
}

/// "Family, Given · born 1970-01-01" from a Patient resource, or "".
pub fn patient_label(patient: &serde_json::Value) -> String {
    if patient["resourceType"] != "Patient" {
        return String::new();
    }
    let name = &patient["name"][0];
    let text = name["text"].as_str().map(str::to_string).or_else(|| {
        let family = name["family"].as_str().unwrap_or_default();
        let given: Vec<&str> = name["given"]
            .as_array()
            .map(|g| g.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        let parts = [family.to_string(), given.join(" ")];
        let joined: Vec<&str> = parts
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        (!joined.is_empty()).then(|| joined.join(", "))
    });
    let born = patient["birthDate"].as_str().map(|b| format!("born {b}"));
    [text, born]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The adapter, the course and the page (CPU pool): the patient's data since the infusion,
/// at most 30 days back, as the card's course.
fn course_page_for(
    state: &AppState,
    patient_id: &str,
    documents: &[(String, String)],
    mut issues: Vec<String>,
    now: Timestamp,
) -> Result<String, Refusal> {
    let (mapped, adapter_issues) = super::service::map_gathered(
        state,
        patient_id,
        documents,
        None,
        &[],
        now,
        APP_WINDOW_HOURS,
    );
    issues.extend(adapter_issues);
    // Over `server.max_parsed_entries` nothing is drawn: never a course from part of the
    // record (issue 10).
    if mapped.over_parse_limit.is_some() {
        return Err(Refusal::TooLarge);
    }
    let course = crate::protocol::course::for_card(
        crate::protocol::discovery::Hook::PatientView,
        &mapped.facts,
        now,
        &state.policy,
    );
    let label = documents
        .iter()
        .filter(|(origin, _)| origin == "patient")
        .find_map(|(_, json)| serde_json::from_str::<serde_json::Value>(json).ok())
        .filter(|p| p["id"] == patient_id)
        .map(|p| patient_label(&p))
        .unwrap_or_default();
    Ok(crate::render::course_page(&crate::render::PageInput {
        course: course.as_ref(),
        patient_label: &label,
        data_issues: &issues,
        now,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_bases_may_use_a_cookie_without_secure() {
        assert!(is_loopback_http("http://127.0.0.1:8080"));
        assert!(is_loopback_http("http://localhost:8080/x"));
        assert!(is_loopback_http("http://[::1]:8080"));
        assert!(!is_loopback_http("https://127.0.0.1:8080"));
        assert!(!is_loopback_http("http://127.0.0.1.evil.example"));
        assert!(!is_loopback_http("http://cds.example.org"));
    }

    #[test]
    fn endpoints_must_be_https_unless_the_issuer_is_plain_http() {
        let iss = "https://ehr.example.org/fhir";
        assert!(usable_endpoint("https://auth.example.org/token", iss));
        assert!(!usable_endpoint("http://auth.example.org/token", iss));
        assert!(!usable_endpoint("https://u:p@auth.example.org/token", iss));
        assert!(!usable_endpoint("/token", iss));
        assert!(usable_endpoint(
            "http://127.0.0.1:1/demo/auth/token",
            "http://127.0.0.1:1/demo/fhir"
        ));
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn a_patient_label_has_the_name_and_birth_date() {
        let p = serde_json::json!({"resourceType": "Patient", "name": [{"family": "Doe", "given": ["Jo", "A"]}], "birthDate": "1970-02-03"});
        assert_eq!(patient_label(&p), "Doe, Jo A · born 1970-02-03");
        let q = serde_json::json!({"resourceType": "Observation"});
        assert_eq!(patient_label(&q), "");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
