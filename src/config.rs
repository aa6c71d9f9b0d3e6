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

/// The default feedback database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://crs-cds-feedback.db?mode=rwc";
/// The default bind address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// The default body limit: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
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

impl RawSettings {
    fn apply_env(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
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
            "CRS_CDS_LOG_FORMAT" => {
                self.log.format = Some(match value.trim().to_ascii_lowercase().as_str() {
                    "json" => LogFormat::Json,
                    "pretty" => LogFormat::Pretty,
                    other => {
                        return Err(invalid(key, format!("{other:?}: expected pretty or json")));
                    }
                })
            }
            _ => {}
        }
        Ok(())
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
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
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
        Ok(Settings {
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
    })
}

impl Settings {
    /// Defaults, then the TOML text `file` (if any), then the `CRS_CDS_*` variables in `env`.
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut raw = match file {
            Some((path, text)) => {
                toml::from_str::<RawSettings>(text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => RawSettings::default(),
        };
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CRS_CDS_"))
            .collect();
        vars.sort();
        for (k, v) in vars {
            raw.apply_env(&k, &v)?;
        }
        raw.validate()
    }

    /// Reads the file at `path` (if any) and applies `env` on top.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                Settings::from_sources(Some((p, &text)), env)
            }
            None => Settings::from_sources(None, env),
        }
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
    fn the_production_config_is_valid_and_turns_auth_on() {
        let text = include_str!("../deploy/config/production.toml");
        let s = Settings::from_sources(Some((Path::new("production.toml"), text)), env(&[]))
            .expect("production.toml is valid");
        assert!(s.auth_enabled());
        assert_eq!(s.log.format, LogFormat::Json);
        assert!(!s.server.bind.ip().is_loopback());
    }
}
