//! The tracing subscriber, built once by `main` (or by the test helpers).
//!
//! A leaf module. Logs never contain patient identifiers, resource bodies or tokens:
//! handlers record only the service id, hook and hookInstance, and tokens are
//! `secrecy::SecretString`s whose `Debug` is redacted.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use crate::config::LogFormat;

/// The default filter when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info";

/// A subscriber in `format`, filtered by `RUST_LOG` or `default_filter`, writing to `sink`.
pub fn subscriber<W>(
    format: LogFormat,
    default_filter: &str,
    sink: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(sink),
            ),
        ),
        LogFormat::Pretty => {
            Box::new(registry.with(tracing_subscriber::fmt::layer().with_writer(sink)))
        }
    }
}

/// A start-up failure as one JSON line shaped like the subscriber's (`timestamp`, `level`,
/// `fields.message`, `target`), for errors that happen before the subscriber exists (an
/// invalid configuration) when `CRS_CDS_LOG_FORMAT=json` asks for JSON-only output.
pub fn json_error_line(message: &str) -> String {
    serde_json::json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": "ERROR",
        "fields": { "message": message },
        "target": "crs_cds",
    })
    .to_string()
}

/// Whether the environment asks for JSON logs (`CRS_CDS_LOG_FORMAT=json`), read before
/// the configuration is loaded.
pub fn json_requested(env_value: Option<&str>) -> bool {
    env_value.is_some_and(|v| v.trim().eq_ignore_ascii_case("json"))
}

/// Installs `subscriber` as the global default; fails when one is already set.
pub fn init(
    subscriber: Box<dyn Subscriber + Send + Sync>,
) -> Result<(), tracing::subscriber::SetGlobalDefaultError> {
    tracing::subscriber::set_global_default(subscriber)
}
