//! Settings: embedded defaults, then an optional TOML file, then `CRS_CDS_*` environment
//! overrides, validated once into [`Settings`].
//!
//! A leaf module: used by `cli` and `http` only. Nothing below `cli` reads the
//! environment; [`Settings::load`] takes the variables as an argument so tests can pass
//! their own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::AuthSettings;
use crate::domain::Policy;

/// A configuration problem, reported before the service starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for the settings.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid setting {key}: {message}")]
    Invalid {
        /// The setting (`server.bind` or `CRS_CDS_BIND`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for production log shipping.
    Json,
}

/// Validated settings, built once at start-up and passed down.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `[server]`.
    pub server: ServerSettings,
    /// `[fhir]`.
    pub fhir: FhirSettings,
    /// `[feedback]`.
    pub feedback: FeedbackSettings,
    /// `[terminology]`.
    pub terminology: TerminologySettings,
    /// `[grading]`.
    pub grading: GradingSettings,
    /// `[log]`.
    pub log: LogSettings,
    /// `[auth]`: CDS client authentication (CDS Hooks "Trusting CDS Clients").
    pub auth: AuthSettings,
    /// `[app]`: the SMART app (issue 13).
    pub app: AppSettings,
    /// `[cards]`: what the cards carry besides the grading (issue 13: app links).
    pub cards: CardSettings,
    /// Demo mode: also serve the synthetic FHIR endpoint `/demo/fhir`. Set only by
    /// `serve --demo`: no file key or environment variable can turn it on.
    pub demo: bool,
}

impl Settings {
    /// Whether requests must carry a verified JWT: `auth.required` with at least one
    /// trusted issuer. Without issuers the service only runs on loopback (validated).
    pub fn auth_enabled(&self) -> bool {
        self.auth.required && !self.auth.issuers.is_empty()
    }
}

/// `[server]`.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Address to listen on (port 0 picks a free port).
    pub bind: SocketAddr,
    /// The externally visible base URL, when behind a proxy.
    pub public_base_url: Option<String>,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Serve `GET /bench/ceiling` (load testing only).
    pub bench_endpoints: bool,
    /// Hardening limits (issue 10): body-read timeout, shutdown, CPU pool, caps.
    pub limits: LimitSettings,
}

/// `[server]` hardening keys: how long a body may take, how long shutdown waits, how much
/// CPU-heavy work runs at once, and the caps on one answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitSettings {
    /// `server.body_read_timeout_ms`: a request body must arrive within this (default
    /// 10 s); slower clients get 408 and the connection is closed. (Request heads keep
    /// actix's 5 s timeout.)
    pub body_read_timeout: Duration,
    /// `server.shutdown_timeout_secs`: graceful shutdown waits at most this (default 10 s).
    pub shutdown_timeout_secs: u64,
    /// `server.cpu_workers`: CDS calls graded at once on the blocking pool (default: the
    /// number of CPUs); `server.cpu_queue` more may wait; beyond that, 503 + Retry-After.
    pub cpu_workers: usize,
    /// `server.cpu_queue`: calls waiting for a CPU slot before 503 (default 16 × cpu_workers).
    pub cpu_queue: usize,
    /// `server.max_draft_orders`: most draft orders per call (default 100; beyond, 422).
    pub max_draft_orders: usize,
    /// `server.max_cards`: most cards per answer (default 25; beyond, one card says how
    /// many were not shown).
    pub max_cards: usize,
    /// `server.max_parsed_entries`: most entries typed-parsed per call (default 5,000;
    /// beyond, nothing is graded and one card says what was not checked).
    pub max_parsed_entries: usize,
}

/// `[fhir]`.
#[derive(Clone, Debug)]
pub struct FhirSettings {
    /// One deadline for all FHIR fetches of a request.
    pub deadline: Duration,
    /// Most Bundle pages followed per prefetch key.
    pub max_pages: usize,
    /// `fhir.max_page_bytes`: most bytes of one FHIR answer (default 8 MiB; over: 412).
    pub max_page_bytes: usize,
    /// `fhir.max_call_bytes`: most bytes of all FHIR answers of one call (default 32 MiB).
    pub max_call_bytes: usize,
}

/// `[feedback]`.
#[derive(Clone, Debug)]
pub struct FeedbackSettings {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
}

/// `[terminology]`.
#[derive(Clone, Debug, Default)]
pub struct TerminologySettings {
    /// A site ConceptMap (FHIR R4 JSON).
    pub concept_map: Option<PathBuf>,
}

/// `[grading]`.
#[derive(Clone, Debug)]
pub struct GradingSettings {
    /// The engine policy.
    pub policy: Policy,
    /// Honour the `X-CRS-CDS-Evaluation-Time` header (replays, tests; never production).
    pub allow_time_override: bool,
}

/// `[log]`.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
}

/// `[app]`: the SMART app served at `/app` (issue 13).
#[derive(Clone, Debug)]
pub struct AppSettings {
    /// `app.client_id`: the OAuth client id registered with the EHR (default `crs-cds`).
    pub client_id: String,
    /// `app.allowed_issuers`: the FHIR servers (`iss`) a launch may name, without a
    /// trailing `/`; any other `iss` is refused before any request goes out.
    pub allowed_issuers: Vec<String>,
    /// `CRS_CDS_APP_COOKIE_KEY` (environment only, never a file): base64 of at least 32
    /// random bytes; encrypts the launch cookie. Shared by all replicas. Unset: the app
    /// routes answer 503 (in demo mode a random key per process is used instead).
    pub cookie_key: Option<secrecy::SecretString>,
    /// `app.frame_ancestors`: the CSP `frame-ancestors` sources (default `'self'`).
    pub frame_ancestors: String,
}

/// `cards.app_links`: which links the grading card carries to the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppLinks {
    /// A `smart` link (EHR launch of `/app/launch`, with an opaque `appContext`).
    Smart,
    /// An `absolute` link (a standalone launch of the app, for EHRs that do not launch
    /// SMART apps).
    Absolute,
    /// Both.
    Both,
    /// No link.
    None,
}

/// `[cards]`.
#[derive(Clone, Debug)]
pub struct CardSettings {
    /// `cards.app_links` (default `smart`).
    pub app_links: AppLinks,
}

/// The default feedback database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://crs-cds-feedback.db?mode=rwc";
/// The default bind address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// The default body limit: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The default `server.max_parsed_entries` (issue 10). The largest realistic call is an
/// ICU week (the adapter reads 7 days back for the course): temperature, systolic
/// pressure, oxygen device and flow charted every 15 minutes (4 × 4 × 168 = 2,688), ICE
/// and consciousness 4-hourly (84), six labs 6-hourly (168) and a few hundred doses,
/// about 3,300 entries to parse; 5,000 leaves half as much again. The body limit alone
/// does not bound it: 4 MiB holds about 8,000 minimal Observations and the FHIR server
/// may add 32 MiB per call (`fhir.max_call_bytes`).
pub const DEFAULT_MAX_PARSED_ENTRIES: u64 = 5_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    fhir: RawFhir,
    #[serde(default)]
    feedback: RawFeedback,
    #[serde(default)]
    terminology: RawTerminology,
    #[serde(default)]
    grading: RawGrading,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    auth: AuthSettings,
    #[serde(default)]
    app: RawApp,
    #[serde(default)]
    cards: RawCards,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    client_id: Option<String>,
    allowed_issuers: Option<Vec<String>>,
    frame_ancestors: Option<String>,
    /// Never read from a file (a secret): only `CRS_CDS_APP_COOKIE_KEY` sets it.
    #[serde(skip)]
    cookie_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCards {
    app_links: Option<AppLinks>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    bind: Option<String>,
    public_base_url: Option<String>,
    max_body_bytes: Option<u64>,
    bench_endpoints: Option<bool>,
    body_read_timeout_ms: Option<u64>,
    shutdown_timeout_secs: Option<u64>,
    cpu_workers: Option<u64>,
    cpu_queue: Option<u64>,
    max_draft_orders: Option<u64>,
    max_cards: Option<u64>,
    max_parsed_entries: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFhir {
    deadline_ms: Option<u64>,
    max_pages: Option<u64>,
    max_page_bytes: Option<u64>,
    max_call_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeedback {
    database_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerminology {
    concept_map: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrading {
    window_hours: Option<f64>,
    fever_celsius: Option<f64>,
    adult_sbp_threshold: Option<f64>,
    tocilizumab_rounding_tolerance_mg: Option<f64>,
    warn_tocilizumab_with_icans: Option<bool>,
    gm_csf_window_days: Option<i64>,
    weight_fresh_days: Option<i64>,
    allow_time_override: Option<bool>,
    // RULES.md §6 open points and §7 S11 (issue 8).
    afebrile_treated_grade: Option<u8>,
    vasopressin_alone_grade: Option<u8>,
    angiotensin_ii_is_vasopressor: Option<bool>,
    inotropes_are_vasopressors: Option<bool>,
    capd_below_age: Option<f64>,
    capd_subthreshold_grade: Option<u8>,
    pressor_current_hours: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
}

/// The text of the configuration file at `path`, if one is given.
fn read_config_file(path: Option<&Path>) -> Result<Option<String>, ConfigError> {
    path.map(|p| {
        std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
            path: p.to_path_buf(),
            source,
        })
    })
    .transpose()
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

fn parse_env<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse::<T>()
        .map_err(|e| invalid(key, format!("{value:?}: {e}")))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(invalid(key, format!("{other:?} is not a boolean"))),
    }
}

/// Every `CRS_CDS_*` variable the service reads, for the "did you mean" hint of an unknown
/// one (whether a name is known is decided by [`RawSettings::apply_env`] itself).
const KNOWN_ENV: &[&str] = &[
    "CRS_CDS_CONFIG",
    "CRS_CDS_BIND",
    "CRS_CDS_PUBLIC_BASE_URL",
    "CRS_CDS_MAX_BODY_BYTES",
    "CRS_CDS_BENCH_ENDPOINTS",
    "CRS_CDS_FHIR_DEADLINE_MS",
    "CRS_CDS_FHIR_MAX_PAGES",
    "CRS_CDS_FHIR_MAX_PAGE_BYTES",
    "CRS_CDS_FHIR_MAX_CALL_BYTES",
    "CRS_CDS_BODY_READ_TIMEOUT_MS",
    "CRS_CDS_SHUTDOWN_TIMEOUT_SECS",
    "CRS_CDS_CPU_WORKERS",
    "CRS_CDS_CPU_QUEUE",
    "CRS_CDS_MAX_DRAFT_ORDERS",
    "CRS_CDS_MAX_CARDS",
    "CRS_CDS_MAX_PARSED_ENTRIES",
    "CRS_CDS_FEEDBACK_DATABASE_URL",
    "CRS_CDS_CONCEPT_MAP",
    "CRS_CDS_GRADING_WINDOW_HOURS",
    "CRS_CDS_GRADING_TOCILIZUMAB_ROUNDING_TOLERANCE_MG",
    "CRS_CDS_GRADING_ALLOW_TIME_OVERRIDE",
    "CRS_CDS_AUTH_REQUIRED",
    "CRS_CDS_LOG_FORMAT",
    "CRS_CDS_APP_CLIENT_ID",
    "CRS_CDS_APP_ALLOWED_ISSUERS",
    "CRS_CDS_APP_COOKIE_KEY",
    "CRS_CDS_APP_FRAME_ANCESTORS",
    "CRS_CDS_CARDS_APP_LINKS",
];

/// The `CRS_CDS_*` variables `grade` applies: grading and terminology only.
fn is_grading_env(key: &str) -> bool {
    key.starts_with("CRS_CDS_GRADING_") || key == "CRS_CDS_CONCEPT_MAP"
}

/// Levenshtein distance, for the nearest known variable name.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

fn unknown_env(key: &str) -> ConfigError {
    let nearest = KNOWN_ENV
        .iter()
        .min_by_key(|k| edit_distance(key, k))
        .map(|k| format!("; did you mean {k}?"))
        .unwrap_or_default();
    invalid(
        key,
        format!("unknown CRS_CDS_ variable{nearest} (see README.md \"Configuration\")"),
    )
}

/// Resolves a relative path in the config file against the file's folder.
fn relative_to(file: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        return path;
    }
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
        _ => path,
    }
}

impl RawSettings {
    /// Applies one `CRS_CDS_*` variable; `Ok(false)` when the name is not one the service
    /// reads (refused by the caller, so a typo never starts on a default).
    fn apply_env(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        match key {
            // Read by clap (`--config`), and by the test suite: known, nothing to apply.
            "CRS_CDS_CONFIG" | "CRS_CDS_TEST_POSTGRES_URL" => {}
            // Read by the browser tests (tests/browser.rs): known, nothing to apply.
            "CRS_CDS_TEST_BROWSER" => {}
            "CRS_CDS_BIND" => self.server.bind = Some(value.to_string()),
            "CRS_CDS_PUBLIC_BASE_URL" => self.server.public_base_url = Some(value.to_string()),
            "CRS_CDS_MAX_BODY_BYTES" => self.server.max_body_bytes = Some(parse_env(key, value)?),
            "CRS_CDS_BENCH_ENDPOINTS" => {
                self.server.bench_endpoints = Some(parse_bool(key, value)?)
            }
            "CRS_CDS_FHIR_DEADLINE_MS" => self.fhir.deadline_ms = Some(parse_env(key, value)?),
            "CRS_CDS_FHIR_MAX_PAGES" => self.fhir.max_pages = Some(parse_env(key, value)?),
            "CRS_CDS_FHIR_MAX_PAGE_BYTES" => {
                self.fhir.max_page_bytes = Some(parse_env(key, value)?)
            }
            "CRS_CDS_FHIR_MAX_CALL_BYTES" => {
                self.fhir.max_call_bytes = Some(parse_env(key, value)?)
            }
            "CRS_CDS_BODY_READ_TIMEOUT_MS" => {
                self.server.body_read_timeout_ms = Some(parse_env(key, value)?)
            }
            "CRS_CDS_SHUTDOWN_TIMEOUT_SECS" => {
                self.server.shutdown_timeout_secs = Some(parse_env(key, value)?)
            }
            "CRS_CDS_CPU_WORKERS" => self.server.cpu_workers = Some(parse_env(key, value)?),
            "CRS_CDS_CPU_QUEUE" => self.server.cpu_queue = Some(parse_env(key, value)?),
            "CRS_CDS_MAX_DRAFT_ORDERS" => {
                self.server.max_draft_orders = Some(parse_env(key, value)?)
            }
            "CRS_CDS_MAX_CARDS" => self.server.max_cards = Some(parse_env(key, value)?),
            "CRS_CDS_MAX_PARSED_ENTRIES" => {
                self.server.max_parsed_entries = Some(parse_env(key, value)?)
            }
            "CRS_CDS_FEEDBACK_DATABASE_URL" => self.feedback.database_url = Some(value.to_string()),
            "CRS_CDS_CONCEPT_MAP" => self.terminology.concept_map = Some(PathBuf::from(value)),
            "CRS_CDS_GRADING_WINDOW_HOURS" => {
                self.grading.window_hours = Some(parse_env(key, value)?)
            }
            "CRS_CDS_GRADING_TOCILIZUMAB_ROUNDING_TOLERANCE_MG" => {
                self.grading.tocilizumab_rounding_tolerance_mg = Some(parse_env(key, value)?)
            }
            "CRS_CDS_GRADING_ALLOW_TIME_OVERRIDE" => {
                self.grading.allow_time_override = Some(parse_bool(key, value)?)
            }
            "CRS_CDS_AUTH_REQUIRED" => self.auth.required = parse_bool(key, value)?,
            "CRS_CDS_APP_CLIENT_ID" => self.app.client_id = Some(value.to_string()),
            "CRS_CDS_APP_ALLOWED_ISSUERS" => {
                self.app.allowed_issuers = Some(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                )
            }
            "CRS_CDS_APP_COOKIE_KEY" => self.app.cookie_key = Some(value.to_string()),
            "CRS_CDS_APP_FRAME_ANCESTORS" => self.app.frame_ancestors = Some(value.to_string()),
            "CRS_CDS_CARDS_APP_LINKS" => {
                self.cards.app_links = Some(match value.trim().to_ascii_lowercase().as_str() {
                    "smart" => AppLinks::Smart,
                    "absolute" => AppLinks::Absolute,
                    "both" => AppLinks::Both,
                    "none" => AppLinks::None,
                    other => {
                        return Err(invalid(
                            key,
                            format!("{other:?}: expected smart, absolute, both or none"),
                        ));
                    }
                })
            }
            "CRS_CDS_LOG_FORMAT" => {
                self.log.format = Some(match value.trim().to_ascii_lowercase().as_str() {
                    "json" => LogFormat::Json,
                    "pretty" => LogFormat::Pretty,
                    other => {
                        return Err(invalid(key, format!("{other:?}: expected pretty or json")));
                    }
                })
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn validate(self) -> Result<Settings, ConfigError> {
        let limits = validate_limits(&self.server)?;
        let bind_text = self.server.bind.unwrap_or_else(|| DEFAULT_BIND.to_string());
        let bind: SocketAddr = bind_text
            .parse()
            .map_err(|e| invalid("server.bind", format!("{bind_text:?}: {e}")))?;
        let max_body = self
            .server
            .max_body_bytes
            .unwrap_or(DEFAULT_MAX_BODY_BYTES as u64);
        if !(1024..=1024 * 1024 * 1024).contains(&max_body) {
            return Err(invalid(
                "server.max_body_bytes",
                "must be between 1 KiB and 1 GiB",
            ));
        }
        let public_base_url = self
            .server
            .public_base_url
            .map(|u| u.trim_end_matches('/').to_string());
        if let Some(u) = &public_base_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(invalid(
                "server.public_base_url",
                "must start with http:// or https://",
            ));
        }
        let deadline_ms = self.fhir.deadline_ms.unwrap_or(2000);
        if !(1..=60_000).contains(&deadline_ms) {
            return Err(invalid("fhir.deadline_ms", "must be between 1 and 60000"));
        }
        let max_pages = self.fhir.max_pages.unwrap_or(10);
        if !(1..=1000).contains(&max_pages) {
            return Err(invalid("fhir.max_pages", "must be between 1 and 1000"));
        }
        let max_page_bytes = self.fhir.max_page_bytes.unwrap_or(8 * 1024 * 1024);
        if !(1024..=1024 * 1024 * 1024).contains(&max_page_bytes) {
            return Err(invalid(
                "fhir.max_page_bytes",
                "must be between 1 KiB and 1 GiB",
            ));
        }
        let max_call_bytes = self.fhir.max_call_bytes.unwrap_or(32 * 1024 * 1024);
        if !(max_page_bytes..=4 * 1024 * 1024 * 1024).contains(&max_call_bytes) {
            return Err(invalid(
                "fhir.max_call_bytes",
                "must be at least fhir.max_page_bytes and at most 4 GiB",
            ));
        }
        let database_url = self
            .feedback
            .database_url
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        if !(database_url.starts_with("sqlite:")
            || crate::http::feedback_store::is_postgres_url(&database_url))
        {
            return Err(invalid(
                "feedback.database_url",
                "must be a sqlite: or postgres:// URL",
            ));
        }

        let mut policy = Policy::default();
        let g = self.grading;
        if let Some(v) = g.window_hours {
            if !(v.is_finite() && v > 0.0 && v <= crate::domain::MAX_WINDOW_HOURS) {
                return Err(invalid("grading.window_hours", "must be in (0, 168]"));
            }
            policy.window_hours = v;
        }
        if let Some(v) = g.fever_celsius {
            if !(37.0..=40.0).contains(&v) {
                return Err(invalid("grading.fever_celsius", "must be in 37-40"));
            }
            policy.fever_celsius = v;
        }
        if let Some(v) = g.adult_sbp_threshold {
            if !(60.0..=120.0).contains(&v) {
                return Err(invalid("grading.adult_sbp_threshold", "must be in 60-120"));
            }
            policy.adult_sbp_threshold = v;
        }
        if let Some(v) = g.tocilizumab_rounding_tolerance_mg {
            if !(0.0..=100.0).contains(&v) {
                return Err(invalid(
                    "grading.tocilizumab_rounding_tolerance_mg",
                    "must be in 0-100",
                ));
            }
            policy.tocilizumab_rounding_tolerance_mg = v;
        }
        if let Some(v) = g.warn_tocilizumab_with_icans {
            policy.warn_tocilizumab_with_icans = v;
        }
        if let Some(v) = g.gm_csf_window_days {
            if !(0..=3650).contains(&v) {
                return Err(invalid("grading.gm_csf_window_days", "must be in 0-3650"));
            }
            policy.gm_csf_window_days = v;
        }
        if let Some(v) = g.weight_fresh_days {
            if !(0..=3650).contains(&v) {
                return Err(invalid("grading.weight_fresh_days", "must be in 0-3650"));
            }
            policy.weight_fresh_days = v;
        }
        // §6-U1, U2, U5 grades are ASTCT grades 0-4.
        for (key, value, slot) in [
            (
                "grading.afebrile_treated_grade",
                g.afebrile_treated_grade,
                &mut policy.afebrile_treated_grade,
            ),
            (
                "grading.vasopressin_alone_grade",
                g.vasopressin_alone_grade,
                &mut policy.vasopressin_alone_grade,
            ),
            (
                "grading.capd_subthreshold_grade",
                g.capd_subthreshold_grade,
                &mut policy.capd_subthreshold_grade,
            ),
        ] {
            if let Some(v) = value {
                if v > 4 {
                    return Err(invalid(key, "must be a grade 0-4"));
                }
                *slot = v;
            }
        }
        if let Some(v) = g.angiotensin_ii_is_vasopressor {
            policy.angiotensin_ii_is_vasopressor = v;
        }
        if let Some(v) = g.inotropes_are_vasopressors {
            policy.inotropes_are_vasopressors = v;
        }
        if let Some(v) = g.capd_below_age {
            if !(v.is_finite() && (0.0..=18.0).contains(&v)) {
                return Err(invalid("grading.capd_below_age", "must be in 0-18 years"));
            }
            policy.capd_below_age = v;
        }
        if let Some(v) = g.pressor_current_hours {
            if !(v.is_finite() && (0.0..=24.0).contains(&v)) {
                return Err(invalid("grading.pressor_current_hours", "must be in 0-24"));
            }
            policy.pressor_current_hours = v;
        }

        // Auth (issue 5): with no trusted issuer (or `required = false`) the service
        // runs unauthenticated, which is allowed on loopback only.
        let auth = self.auth;
        let auth_on = auth.required && !auth.issuers.is_empty();
        if !auth_on && !bind.ip().is_loopback() {
            return Err(invalid(
                "auth.issuers",
                format!(
                    "refusing to serve {bind} without authentication: configure [[auth.issuers]] (with required = true), or bind a loopback address"
                ),
            ));
        }
        if auth_on && public_base_url.is_none() {
            return Err(invalid(
                "server.public_base_url",
                "required when auth is on: a JWT's aud is checked against it",
            ));
        }
        let app = validate_app(self.app)?;
        Ok(Settings {
            demo: false,
            app,
            cards: CardSettings {
                app_links: self.cards.app_links.unwrap_or(AppLinks::Smart),
            },
            auth,
            server: ServerSettings {
                bind,
                public_base_url,
                max_body_bytes: max_body as usize,
                bench_endpoints: self.server.bench_endpoints.unwrap_or(false),
                limits,
            },
            fhir: FhirSettings {
                deadline: Duration::from_millis(deadline_ms),
                max_pages: max_pages as usize,
                max_page_bytes: max_page_bytes as usize,
                max_call_bytes: max_call_bytes as usize,
            },
            feedback: FeedbackSettings { database_url },
            terminology: TerminologySettings {
                concept_map: self.terminology.concept_map,
            },
            grading: GradingSettings {
                policy,
                allow_time_override: g.allow_time_override.unwrap_or(false),
            },
            log: LogSettings {
                format: self.log.format.unwrap_or(LogFormat::Pretty),
            },
        })
    }
}

/// The decoded bytes of a cookie key (standard or URL-safe base64, padded or not).
pub fn decode_cookie_key(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let t = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(t).ok())
}

/// The shortest cookie key, in bytes (the `cookie` crate derives its keys from it).
pub const MIN_COOKIE_KEY_BYTES: usize = 32;

fn validate_app(raw: RawApp) -> Result<AppSettings, ConfigError> {
    let client_id = raw.client_id.unwrap_or_else(|| "crs-cds".to_string());
    if client_id.trim().is_empty() || client_id.chars().any(char::is_control) {
        return Err(invalid(
            "app.client_id",
            "must be a non-empty printable string",
        ));
    }
    let mut allowed_issuers = Vec::new();
    for iss in raw.allowed_issuers.unwrap_or_default() {
        let iss = iss.trim().trim_end_matches('/').to_string();
        if !(iss.starts_with("https://") || iss.starts_with("http://"))
            || iss.contains(['?', '#', '@'])
            || iss.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                "app.allowed_issuers",
                format!(
                    "{iss:?}: must be an http(s) FHIR base URL without userinfo, query or fragment"
                ),
            ));
        }
        allowed_issuers.push(iss);
    }
    let frame_ancestors = raw.frame_ancestors.unwrap_or_else(|| "'self'".to_string());
    // The value goes into a CSP header: one directive's sources, nothing else.
    if frame_ancestors.trim().is_empty()
        || frame_ancestors.contains([';', ','])
        || frame_ancestors
            .chars()
            .any(|c| c.is_control() || !c.is_ascii())
    {
        return Err(invalid(
            "app.frame_ancestors",
            "must be CSP frame-ancestors sources (no ';', ',' or control characters)",
        ));
    }
    let cookie_key = match raw.cookie_key {
        None => None,
        Some(text) => match decode_cookie_key(&text) {
            Some(bytes) if bytes.len() >= MIN_COOKIE_KEY_BYTES => {
                Some(secrecy::SecretString::from(text.trim().to_string()))
            }
            _ => {
                return Err(invalid(
                    "CRS_CDS_APP_COOKIE_KEY",
                    format!(
                        "must be base64 of at least {MIN_COOKIE_KEY_BYTES} random bytes (e.g. `openssl rand -base64 48`)"
                    ),
                ));
            }
        },
    };
    Ok(AppSettings {
        client_id,
        allowed_issuers,
        cookie_key,
        frame_ancestors: frame_ancestors.trim().to_string(),
    })
}

fn validate_limits(server: &RawServer) -> Result<LimitSettings, ConfigError> {
    fn in_range(
        key: &str,
        v: Option<u64>,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let v = v.unwrap_or(default);
        if range.contains(&v) {
            Ok(v)
        } else {
            Err(invalid(
                key,
                format!("must be between {} and {}", range.start(), range.end()),
            ))
        }
    }
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let cpu_workers = in_range("server.cpu_workers", server.cpu_workers, cpus, 1..=256)?;
    Ok(LimitSettings {
        body_read_timeout: Duration::from_millis(in_range(
            "server.body_read_timeout_ms",
            server.body_read_timeout_ms,
            10_000,
            100..=300_000,
        )?),
        shutdown_timeout_secs: in_range(
            "server.shutdown_timeout_secs",
            server.shutdown_timeout_secs,
            10,
            0..=300,
        )?,
        cpu_workers: cpu_workers as usize,
        cpu_queue: in_range(
            "server.cpu_queue",
            server.cpu_queue,
            16 * cpu_workers,
            0..=10_000,
        )? as usize,
        max_draft_orders: in_range(
            "server.max_draft_orders",
            server.max_draft_orders,
            100,
            1..=100_000,
        )? as usize,
        max_cards: in_range("server.max_cards", server.max_cards, 25, 2..=10_000)? as usize,
        max_parsed_entries: in_range(
            "server.max_parsed_entries",
            server.max_parsed_entries,
            DEFAULT_MAX_PARSED_ENTRIES,
            1..=1_000_000,
        )? as usize,
    })
}

impl Settings {
    /// Defaults, then the TOML text `file` (if any), then the `CRS_CDS_*` variables in `env`.
    /// An unknown `CRS_CDS_*` variable is refused, naming the nearest known one. Relative
    /// paths in the file (`terminology.concept_map`, `auth.issuers[].jwks_file`) are
    /// resolved against the file's folder.
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        Settings::raw_from_sources(file, env, |_| true)?.validate()
    }

    /// As [`Settings::from_sources`] for `grade`: only the `[grading]` and `[terminology]`
    /// settings of the file and environment are applied (the file is still checked for
    /// unknown keys, and unknown variables are still refused); everything else keeps its
    /// default, so a serve-only setting such as `CRS_CDS_BIND=0.0.0.0:8080` never stops it.
    pub fn grading_from_sources(
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let raw = Settings::raw_from_sources(file, env, is_grading_env)?;
        RawSettings {
            grading: raw.grading,
            terminology: raw.terminology,
            ..RawSettings::default()
        }
        .validate()
    }

    fn raw_from_sources(
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
        apply: fn(&str) -> bool,
    ) -> Result<RawSettings, ConfigError> {
        let mut raw = match file {
            Some((path, text)) => {
                let mut raw =
                    toml::from_str::<RawSettings>(text).map_err(|e| ConfigError::Parse {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    })?;
                raw.terminology.concept_map =
                    raw.terminology.concept_map.map(|p| relative_to(path, p));
                for issuer in &mut raw.auth.issuers {
                    issuer.jwks_file = issuer.jwks_file.take().map(|p| relative_to(path, p));
                }
                raw
            }
            None => RawSettings::default(),
        };
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CRS_CDS_"))
            .collect();
        // By name only, and stable: of two values for one name the later wins (`--bind`
        // is appended after the environment's CRS_CDS_BIND).
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in vars {
            let known = if apply(&k) {
                raw.apply_env(&k, &v)?
            } else {
                // Not applied: only whether the name is known matters, not its value.
                !matches!(RawSettings::default().apply_env(&k, &v), Ok(false))
            };
            if !known {
                return Err(unknown_env(&k));
            }
        }
        Ok(raw)
    }

    /// Reads the file at `path` (if any) and applies `env` on top.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let text = read_config_file(path)?;
        Settings::from_sources(path.zip(text.as_deref()), env)
    }

    /// As [`Settings::load`] for `grade` (see [`Settings::grading_from_sources`]).
    pub fn load_grading(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let text = read_config_file(path)?;
        Settings::grading_from_sources(path.zip(text.as_deref()), env)
    }

    /// Embedded defaults only (tests start from these).
    pub fn defaults() -> Settings {
        RawSettings::default()
            .validate()
            .expect("the embedded defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_listen_on_loopback_8080() {
        let s = Settings::defaults();
        assert_eq!(s.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.server.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(s.fhir.deadline, Duration::from_millis(2000));
        assert_eq!(s.fhir.max_pages, 10);
        assert_eq!(s.fhir.max_page_bytes, 8 * 1024 * 1024);
        assert_eq!(s.fhir.max_call_bytes, 32 * 1024 * 1024);
        assert_eq!(s.server.limits.body_read_timeout, Duration::from_secs(10));
        assert_eq!(s.server.limits.shutdown_timeout_secs, 10);
        assert_eq!(s.server.limits.max_draft_orders, 100);
        assert_eq!(s.server.limits.max_cards, 25);
        assert_eq!(s.server.limits.max_parsed_entries, 5_000);
        assert_eq!(s.auth.max_token_lifetime_secs, 3600);
        assert_eq!(s.feedback.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.log.format, LogFormat::Pretty);
        assert!(!s.grading.allow_time_override);
    }

    #[test]
    fn env_overrides_the_file() {
        let file = "[server]\nbind = \"127.0.0.1:9000\"\n[fhir]\ndeadline_ms = 500\n[grading]\nwindow_hours = 12.0\n";
        let s = Settings::from_sources(
            Some((Path::new("x.toml"), file)),
            env(&[
                ("CRS_CDS_FHIR_DEADLINE_MS", "300"),
                ("CRS_CDS_LOG_FORMAT", "json"),
                ("OTHER", "x"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.server.bind.port(), 9000);
        assert_eq!(s.fhir.deadline, Duration::from_millis(300));
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.grading.policy.window_hours, 12.0);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(
            Settings::from_sources(Some((Path::new("x"), "[server]\nport = 1\n")), env(&[]))
                .is_err()
        );
        assert!(Settings::from_sources(None, env(&[("CRS_CDS_BIND", "nowhere")])).is_err());
        assert!(Settings::from_sources(None, env(&[("CRS_CDS_FHIR_DEADLINE_MS", "-1")])).is_err());
        assert!(
            Settings::from_sources(None, env(&[("CRS_CDS_FEEDBACK_DATABASE_URL", "mysql://x")]))
                .is_err()
        );
    }

    fn grading(toml: &str) -> Result<Policy, String> {
        let file = format!("[grading]\n{toml}\n");
        Settings::from_sources(Some((Path::new("x.toml"), &file)), env(&[]))
            .map(|s| s.grading.policy)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn afebrile_treated_grade_u1_is_settable_as_a_grade_0_to_4() {
        assert_eq!(
            grading("afebrile_treated_grade = 1").map(|p| p.afebrile_treated_grade),
            Ok(1)
        );
        assert!(grading("afebrile_treated_grade = 5").is_err());
    }

    #[test]
    fn vasopressin_alone_grade_u2_is_settable_as_a_grade_0_to_4() {
        assert_eq!(
            grading("vasopressin_alone_grade = 4").map(|p| p.vasopressin_alone_grade),
            Ok(4)
        );
        assert!(grading("vasopressin_alone_grade = 9").is_err());
    }

    #[test]
    fn angiotensin_ii_and_inotropes_u3_are_settable() {
        let p = grading("angiotensin_ii_is_vasopressor = false\ninotropes_are_vasopressors = true")
            .expect("valid");
        assert!(!p.angiotensin_ii_is_vasopressor);
        assert!(p.inotropes_are_vasopressors);
    }

    #[test]
    fn capd_age_and_subthreshold_grade_u5_are_settable_and_validated() {
        let p = grading("capd_below_age = 10.0\ncapd_subthreshold_grade = 2").expect("valid");
        assert_eq!((p.capd_below_age, p.capd_subthreshold_grade), (10.0, 2));
        assert!(grading("capd_below_age = 40.0").is_err());
        assert!(grading("capd_subthreshold_grade = 7").is_err());
    }

    #[test]
    fn pressor_current_hours_s11_defaults_to_2_and_is_validated() {
        assert_eq!(grading("").map(|p| p.pressor_current_hours), Ok(2.0));
        assert_eq!(
            grading("pressor_current_hours = 1.5").map(|p| p.pressor_current_hours),
            Ok(1.5)
        );
        assert!(grading("pressor_current_hours = -1.0").is_err());
        assert!(grading("pressor_current_hours = 48.0").is_err());
    }

    #[test]
    fn the_example_config_carries_the_policy_defaults() {
        let text = include_str!("../deploy/config/base.toml");
        let s = Settings::from_sources(Some((Path::new("base.toml"), text)), env(&[]))
            .expect("base.toml is valid");
        assert_eq!(s.grading.policy, Policy::default());
    }

    #[test]
    fn an_unknown_crs_cds_variable_is_refused_with_the_nearest_known_name() {
        let e = Settings::from_sources(None, env(&[("CRS_CDS_BIDN", "0.0.0.0:1")]))
            .expect_err("a typo is refused")
            .to_string();
        assert!(e.contains("CRS_CDS_BIDN"), "{e}");
        assert!(e.contains("did you mean CRS_CDS_BIND?"), "{e}");
        // Other prefixes are not ours.
        assert!(Settings::from_sources(None, env(&[("CRS_CDSX", "1"), ("PATH", "/")])).is_ok());
    }

    #[test]
    fn every_variable_the_readme_documents_is_a_known_name() {
        // The README mentions the typo `CRS_CDS_BIDN` as an example of what is refused.
        let readme = include_str!("../README.md");
        let documented: Vec<&str> = readme
            .split('`')
            .filter(|w| {
                w.starts_with("CRS_CDS_") && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
            .filter(|w| *w != "CRS_CDS_" && !w.ends_with('_'))
            .collect();
        assert!(documented.len() > 10, "{documented:?}");
        for name in documented {
            assert!(
                KNOWN_ENV.contains(&name)
                    || [
                        "CRS_CDS_TEST_POSTGRES_URL",
                        "CRS_CDS_TEST_BROWSER",
                        "CRS_CDS_BIDN"
                    ]
                    .contains(&name),
                "{name} is documented but not a known variable"
            );
        }
    }

    #[test]
    fn every_known_variable_name_is_read() {
        for k in KNOWN_ENV {
            let mut raw = RawSettings::default();
            let value = match *k {
                "CRS_CDS_BIND" => "127.0.0.1:1",
                "CRS_CDS_LOG_FORMAT" => "json",
                "CRS_CDS_CARDS_APP_LINKS" => "both",
                "CRS_CDS_PUBLIC_BASE_URL"
                | "CRS_CDS_FEEDBACK_DATABASE_URL"
                | "CRS_CDS_CONFIG"
                | "CRS_CDS_CONCEPT_MAP" => "x",
                k if k.ends_with("_REQUIRED")
                    || k.ends_with("_ENDPOINTS")
                    || k.ends_with("_OVERRIDE") =>
                {
                    "true"
                }
                _ => "1",
            };
            assert_eq!(raw.apply_env(k, value).ok(), Some(true), "{k}");
        }
    }

    #[test]
    fn grading_settings_ignore_serve_only_variables_but_apply_grading_ones() {
        let vars = env(&[
            ("CRS_CDS_BIND", "0.0.0.0:8080"),
            ("CRS_CDS_GRADING_WINDOW_HOURS", "12"),
        ]);
        assert!(Settings::from_sources(None, vars.clone()).is_err());
        let s = Settings::grading_from_sources(None, vars).expect("grade ignores the bind");
        assert_eq!(s.grading.policy.window_hours, 12.0);
        let text = include_str!("../deploy/config/production.toml");
        Settings::grading_from_sources(Some((Path::new("production.toml"), text)), env(&[]))
            .expect("grade runs with the production file");
        assert!(
            Settings::grading_from_sources(None, env(&[("CRS_CDS_GRADING_WINDOW_HOURZ", "1")]))
                .is_err()
        );
    }

    #[test]
    fn a_relative_concept_map_is_read_from_the_config_files_folder() {
        let file = "[terminology]\nconcept_map = \"maps/site.json\"\n";
        let s = Settings::from_sources(
            Some((Path::new("/etc/crs-cds/crs-cds.toml"), file)),
            env(&[]),
        )
        .expect("valid");
        assert_eq!(
            s.terminology.concept_map.as_deref(),
            Some(Path::new("/etc/crs-cds/maps/site.json"))
        );
        let s = Settings::from_sources(
            Some((
                Path::new("/etc/crs-cds/crs-cds.toml"),
                "[terminology]\nconcept_map = \"/abs.json\"\n",
            )),
            env(&[]),
        )
        .expect("valid");
        assert_eq!(
            s.terminology.concept_map.as_deref(),
            Some(Path::new("/abs.json"))
        );
    }

    #[test]
    fn hardening_limits_come_from_the_environment_and_are_range_checked() {
        let s = Settings::from_sources(
            None,
            env(&[
                ("CRS_CDS_FHIR_MAX_PAGE_BYTES", "1048576"),
                ("CRS_CDS_FHIR_MAX_CALL_BYTES", "2097152"),
                ("CRS_CDS_BODY_READ_TIMEOUT_MS", "5000"),
                ("CRS_CDS_SHUTDOWN_TIMEOUT_SECS", "5"),
                ("CRS_CDS_CPU_WORKERS", "3"),
                ("CRS_CDS_MAX_DRAFT_ORDERS", "7"),
                ("CRS_CDS_MAX_CARDS", "9"),
                ("CRS_CDS_MAX_PARSED_ENTRIES", "11"),
            ]),
        )
        .expect("valid");
        assert_eq!(s.fhir.max_page_bytes, 1024 * 1024);
        assert_eq!(s.fhir.max_call_bytes, 2 * 1024 * 1024);
        assert_eq!(s.server.limits.body_read_timeout, Duration::from_secs(5));
        assert_eq!(s.server.limits.shutdown_timeout_secs, 5);
        assert_eq!(s.server.limits.cpu_workers, 3);
        assert_eq!(s.server.limits.cpu_queue, 48);
        assert_eq!(s.server.limits.max_draft_orders, 7);
        assert_eq!(s.server.limits.max_cards, 9);
        assert_eq!(s.server.limits.max_parsed_entries, 11);
        // The call budget may not be smaller than one page.
        assert!(
            Settings::from_sources(
                None,
                env(&[
                    ("CRS_CDS_FHIR_MAX_PAGE_BYTES", "2097152"),
                    ("CRS_CDS_FHIR_MAX_CALL_BYTES", "1048576"),
                ]),
            )
            .is_err()
        );
        assert!(Settings::from_sources(None, env(&[("CRS_CDS_MAX_CARDS", "1")])).is_err());
        assert!(Settings::from_sources(None, env(&[("CRS_CDS_CPU_WORKERS", "0")])).is_err());
    }

    #[test]
    fn the_example_config_is_valid() {
        let text = include_str!("../deploy/config/base.toml");
        Settings::from_sources(Some((Path::new("base.toml"), text)), env(&[]))
            .expect("base.toml is valid");
    }

    #[test]
    fn base_toml_sets_every_key_to_its_default() {
        let text = include_str!("../deploy/config/base.toml");
        let s = Settings::from_sources(Some((Path::new("base.toml"), text)), env(&[]))
            .expect("base.toml is valid");
        assert_eq!(format!("{s:?}"), format!("{:?}", Settings::defaults()));
        let table: toml::Table = toml::from_str(text).expect("TOML");
        for (section, keys) in [
            ("server", &["bind", "max_body_bytes", "bench_endpoints"][..]),
            ("fhir", &["deadline_ms", "max_pages"][..]),
            ("feedback", &["database_url"][..]),
            (
                "grading",
                &[
                    "window_hours",
                    "fever_celsius",
                    "adult_sbp_threshold",
                    "tocilizumab_rounding_tolerance_mg",
                    "warn_tocilizumab_with_icans",
                    "gm_csf_window_days",
                    "weight_fresh_days",
                    "allow_time_override",
                ][..],
            ),
            (
                "auth",
                &[
                    "required",
                    "leeway_secs",
                    "jwks_refresh_min_interval_secs",
                    "replay_cache_capacity",
                ][..],
            ),
            ("log", &["format"][..]),
        ] {
            for key in keys {
                assert!(table[section].get(*key).is_some(), "{section}.{key}");
            }
        }
        // Keys without a default are present, commented out.
        for key in [
            "public_base_url",
            "concept_map",
            "[[auth.issuers]]",
            "jku_allow",
        ] {
            assert!(text.contains(&format!("# {key}")), "{key}");
        }
    }

    #[test]
    fn of_two_values_for_one_variable_the_later_wins_whatever_their_order() {
        for (first, last) in [
            ("0.0.0.0:9000", "127.0.0.1:8080"),
            ("127.0.0.2:9000", "127.0.0.1:8080"),
            ("127.0.0.1:8080", "127.0.0.2:9000"),
        ] {
            let s = Settings::from_sources(
                None,
                env(&[("CRS_CDS_BIND", first), ("CRS_CDS_BIND", last)]),
            );
            assert_eq!(
                s.map(|s| s.server.bind.to_string()).ok().as_deref(),
                Some(last)
            );
        }
    }

    #[test]
    fn the_demo_config_is_loopback_without_auth() {
        let text = include_str!("../deploy/config/demo.toml");
        let s = Settings::from_sources(Some((Path::new("demo.toml"), text)), env(&[]))
            .expect("demo.toml is valid");
        assert!(s.server.bind.ip().is_loopback());
        assert!(!s.auth_enabled());
        assert!(!s.grading.allow_time_override);
        assert!(!s.demo, "demo mode comes from --demo only");
    }

    #[test]
    fn the_production_config_is_valid_and_turns_auth_on() {
        let text = include_str!("../deploy/config/production.toml");
        let s = Settings::from_sources(Some((Path::new("production.toml"), text)), env(&[]))
            .expect("production.toml is valid");
        assert!(s.auth_enabled());
        assert_eq!(s.log.format, LogFormat::Json);
        assert!(!s.server.bind.ip().is_loopback());
    }

    #[test]
    fn the_app_cookie_key_is_read_from_the_environment_only_and_must_be_32_bytes() {
        use secrecy::ExposeSecret;
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // 32 bytes
        let s = Settings::from_sources(None, env(&[("CRS_CDS_APP_COOKIE_KEY", key)]))
            .expect("a 32-byte key");
        assert_eq!(
            s.app
                .cookie_key
                .as_ref()
                .map(|k| k.expose_secret().to_string()),
            Some(key.to_string())
        );
        // 31 bytes: refused, and the message does not echo the key.
        let short = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==";
        let e = Settings::from_sources(None, env(&[("CRS_CDS_APP_COOKIE_KEY", short)]))
            .expect_err("31 bytes");
        assert!(!e.to_string().contains(short), "{e}");
        let in_file = Settings::from_sources(
            Some((
                Path::new("x.toml"),
                &format!("[app]\ncookie_key = \"{key}\"\n"),
            )),
            env(&[]),
        );
        assert!(in_file.is_err(), "never from a file");
        assert!(Settings::defaults().app.cookie_key.is_none());
    }

    #[test]
    fn app_settings_refuse_values_that_would_break_the_csp_or_the_issuer_check() {
        let bad_ancestors = Settings::from_sources(
            None,
            env(&[("CRS_CDS_APP_FRAME_ANCESTORS", "'self'; script-src *")]),
        );
        assert!(bad_ancestors.is_err());
        for iss in [
            "ehr.example.org",
            "https://u@ehr.example.org",
            "https://e.org/fhir?x=1",
        ] {
            let r = Settings::from_sources(None, env(&[("CRS_CDS_APP_ALLOWED_ISSUERS", iss)]));
            assert!(r.is_err(), "{iss}");
        }
        let s = Settings::from_sources(
            None,
            env(&[(
                "CRS_CDS_APP_ALLOWED_ISSUERS",
                "https://a.example.org/fhir/, https://b.example.org",
            )]),
        )
        .expect("two issuers");
        assert_eq!(
            s.app.allowed_issuers,
            ["https://a.example.org/fhir", "https://b.example.org"]
        );
        assert_eq!(s.cards.app_links, AppLinks::Smart, "the default");
        let none = Settings::from_sources(None, env(&[("CRS_CDS_CARDS_APP_LINKS", "none")]))
            .expect("none");
        assert_eq!(none.cards.app_links, AppLinks::None);
        assert!(Settings::from_sources(None, env(&[("CRS_CDS_CARDS_APP_LINKS", "all")])).is_err());
    }
}
