//! Fetches what prefetch did not bring from the CDS Client's `fhirServer`
//! (CDS Hooks 2.0.1 "FHIR Resource Access"): all keys in parallel under one deadline,
//! following Bundle `next` links up to a page limit, with the client's bearer token.
//!
//! The token goes only to the client's own server: every URL is compared with the
//! `fhirServer` as a parsed origin (scheme, host and port exactly, no userinfo) with a
//! path under its path at a segment boundary ([`ServerBase::admits`]). Redirects are never
//! followed. Bodies are read as streams with a byte cap per page and per call, so an
//! endless or huge answer costs at most the cap.
//!
//! Logs name prefetch keys and outcomes only: never URLs (they hold the patient id),
//! bodies or the token.

use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::try_join_all;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::metrics::Metrics;

/// Why required FHIR data could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// Prefetch lacks keys and the request names no `fhirServer`.
    #[error("prefetch lacks {0} and the request has no fhirServer")]
    NoServer(String),
    /// The server answered a non-success status.
    #[error("the FHIR server answered {status} for {key}")]
    Status {
        /// The prefetch key.
        key: String,
        /// The HTTP status.
        status: u16,
    },
    /// The server could not be reached or the answer could not be read.
    #[error("the FHIR server could not be reached for {key}")]
    Transport {
        /// The prefetch key.
        key: String,
    },
    /// The answer is not a FHIR resource, or an OperationOutcome.
    #[error("the FHIR server's answer for {key} is not usable ({reason})")]
    Unusable {
        /// The prefetch key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// The deadline passed.
    #[error("the FHIR server did not answer within {0} ms")]
    Deadline(u128),
    /// An answer went over a byte cap (`fhir.max_page_bytes` or `fhir.max_call_bytes`).
    #[error("the FHIR server's answer for {key} is over {setting} ({limit} bytes)")]
    TooLarge {
        /// The prefetch key.
        key: String,
        /// The setting that capped it.
        setting: &'static str,
        /// The cap in bytes.
        limit: usize,
    },
    /// The `fhirServer` is not an absolute http(s) URL without userinfo.
    #[error("the request's fhirServer is not a usable http(s) base URL")]
    BadServer,
}

impl FhirError {
    /// The OperationOutcome issue code.
    pub fn issue_code(&self) -> &'static str {
        match self {
            FhirError::NoServer(_) => "not-found",
            FhirError::Deadline(_) => "timeout",
            FhirError::TooLarge { .. } => "too-costly",
            FhirError::BadServer => "invalid",
            FhirError::Status { .. } | FhirError::Transport { .. } | FhirError::Unusable { .. } => {
                "exception"
            }
        }
    }
}

/// One search or read to run.
#[derive(Debug)]
pub struct Query {
    /// The prefetch key.
    pub key: String,
    /// The relative URL (`Observation?subject=Patient/1&…`).
    pub relative_url: String,
}

/// What was fetched for one key: one JSON text per page.
#[derive(Debug)]
pub struct Fetched {
    /// The prefetch key.
    pub key: String,
    /// Page bodies.
    pub pages: Vec<String>,
    /// The page limit stopped this key: later pages were not read.
    pub truncated: bool,
}

/// Byte and page caps for the FHIR reads of one CDS call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchLimits {
    /// Most Bundle pages per prefetch key (a prefetched Bundle counts as its first page).
    pub max_pages: usize,
    /// Most bytes of one answer (`fhir.max_page_bytes`).
    pub max_page_bytes: usize,
    /// Most bytes of all answers of one CDS call together (`fhir.max_call_bytes`).
    pub max_call_bytes: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            max_pages: 10,
            max_page_bytes: 8 * 1024 * 1024,
            max_call_bytes: 32 * 1024 * 1024,
        }
    }
}

/// The `fhirServer` of a request, parsed once: the only origin the bearer token goes to.
#[derive(Clone, Debug)]
pub struct ServerBase {
    url: reqwest::Url,
    /// The base path without a trailing `/` (empty for a host-only base).
    path: String,
}

impl ServerBase {
    /// An absolute `http`/`https` URL with a host and without userinfo, query or fragment.
    pub fn parse(text: &str) -> Result<ServerBase, FhirError> {
        let url = reqwest::Url::parse(text).map_err(|_| FhirError::BadServer)?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(FhirError::BadServer);
        }
        let path = url.path().trim_end_matches('/').to_string();
        Ok(ServerBase { url, path })
    }

    /// Whether `candidate` lies on this server: the same scheme, host and port exactly, no
    /// userinfo, and a path equal to the base path or below it at a `/` boundary
    /// (`/fhir` admits `/fhir/Observation`, never `/fhirx`).
    pub fn admits(&self, candidate: &str) -> bool {
        let Ok(url) = reqwest::Url::parse(candidate) else {
            return false;
        };
        url.scheme() == self.url.scheme()
            && url.host_str() == self.url.host_str()
            && url.port_or_known_default() == self.url.port_or_known_default()
            && url.username().is_empty()
            && url.password().is_none()
            && (self.path.is_empty()
                || url.path() == self.path
                || url
                    .path()
                    .strip_prefix(self.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }

    /// The absolute URL of a relative search (`Observation?…`).
    fn join(&self, relative: &str) -> String {
        let origin = self.url.origin().ascii_serialization();
        format!("{origin}{}/{}", self.path, relative.trim_start_matches('/'))
    }
}

/// The shared deadline and byte budget of one CDS call's FHIR reads.
#[derive(Debug)]
pub struct CallBudget {
    deadline_at: tokio::time::Instant,
    deadline: Duration,
    used_bytes: AtomicUsize,
}

impl CallBudget {
    /// The instant the call's FHIR work must be done by.
    pub fn deadline_at(&self) -> tokio::time::Instant {
        self.deadline_at
    }

    /// The deadline error, counted and logged.
    pub fn expired(&self, metrics: &Metrics) -> FhirError {
        metrics.fhir_fetch("timeout");
        tracing::warn!(
            deadline_ms = self.deadline.as_millis() as u64,
            "FHIR fetch deadline passed"
        );
        FhirError::Deadline(self.deadline.as_millis())
    }
}

/// The FHIR client, built once at start-up.
#[derive(Clone, Debug)]
pub struct FhirClient {
    http: reqwest::Client,
    deadline: Duration,
    limits: FetchLimits,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageHead {
    #[serde(default)]
    resource_type: Option<String>,
    #[serde(default)]
    link: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    relation: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

impl PageHead {
    fn next(self) -> Option<String> {
        self.link
            .into_iter()
            .find(|l| l.relation.as_deref() == Some("next"))
            .and_then(|l| l.url)
    }
}

/// The `next` link of a Bundle's JSON text, if it is a Bundle with one.
pub fn next_link(json: &str) -> Option<String> {
    let head: PageHead = serde_json::from_str(json).ok()?;
    if head.resource_type.as_deref() != Some("Bundle") {
        return None;
    }
    head.next()
}

impl FhirClient {
    /// A client with this deadline for all fetches of one request and these caps.
    /// Redirects are never followed (a redirect would carry the token elsewhere).
    pub fn new(deadline: Duration, limits: FetchLimits) -> Result<FhirClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(deadline)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("crs-cds/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(FhirClient {
            http,
            deadline,
            limits,
        })
    }

    /// The deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The underlying client (no redirects), for the SMART app's discovery and token
    /// requests, which are not FHIR reads.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The caps.
    pub fn limits(&self) -> FetchLimits {
        self.limits
    }

    /// A fresh budget for one CDS call: the deadline starts now.
    pub fn budget(&self) -> CallBudget {
        CallBudget {
            deadline_at: tokio::time::Instant::now() + self.deadline,
            deadline: self.deadline,
            used_bytes: AtomicUsize::new(0),
        }
    }

    /// Runs every query against `base` in parallel; all or nothing, within the call's
    /// deadline and byte budget.
    pub async fn fetch_all(
        &self,
        base: &ServerBase,
        token: Option<&SecretString>,
        queries: Vec<Query>,
        metrics: &Metrics,
        budget: &CallBudget,
    ) -> Result<Vec<Fetched>, FhirError> {
        let all = try_join_all(queries.into_iter().map(|q| {
            let url = base.join(&q.relative_url);
            self.fetch_pages(base, token, q.key, url, Vec::new(), metrics, budget)
        }));
        match tokio::time::timeout_at(budget.deadline_at, all).await {
            Ok(result) => result,
            Err(_) => Err(budget.expired(metrics)),
        }
    }

    /// Reads the pages after a prefetched Bundle page whose `next` link is `next`, under
    /// the call's deadline and budget; the prefetched page counts as the first page.
    pub async fn follow_prefetched(
        &self,
        base: &ServerBase,
        token: Option<&SecretString>,
        key: String,
        next: String,
        metrics: &Metrics,
        budget: &CallBudget,
    ) -> Result<Fetched, FhirError> {
        if self.limits.max_pages <= 1 {
            return Ok(Fetched {
                key,
                pages: Vec::new(),
                truncated: true,
            });
        }
        if !base.admits(&next) {
            metrics.fhir_fetch("unusable");
            return Err(FhirError::Unusable {
                key,
                reason: "next link outside fhirServer",
            });
        }
        let pages = vec![String::new()]; // placeholder for the prefetched page
        let fut = self.fetch_pages(base, token, key, next, pages, metrics, budget);
        let mut fetched = match tokio::time::timeout_at(budget.deadline_at, fut).await {
            Ok(result) => result?,
            Err(_) => return Err(budget.expired(metrics)),
        };
        fetched.pages.remove(0);
        Ok(fetched)
    }

    /// Reads one answer as a stream, stopping at the page cap or the call's byte budget.
    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        key: &str,
        metrics: &Metrics,
        budget: &CallBudget,
    ) -> Result<String, FhirError> {
        let page_cap = self.limits.max_page_bytes;
        let call_cap = self.limits.max_call_bytes;
        let too_large = |setting: &'static str, limit: usize| {
            metrics.fhir_fetch("too-large");
            FhirError::TooLarge {
                key: key.to_string(),
                setting,
                limit,
            }
        };
        if response
            .content_length()
            .is_some_and(|n| n > page_cap as u64)
        {
            return Err(too_large("fhir.max_page_bytes", page_cap));
        }
        let mut body = Vec::new();
        loop {
            let chunk = response.chunk().await.map_err(|_| {
                metrics.fhir_fetch("transport-error");
                FhirError::Transport {
                    key: key.to_string(),
                }
            })?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > page_cap {
                return Err(too_large("fhir.max_page_bytes", page_cap));
            }
            let before = budget.used_bytes.fetch_add(chunk.len(), Ordering::Relaxed);
            if before + chunk.len() > call_cap {
                return Err(too_large("fhir.max_call_bytes", call_cap));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| {
            metrics.fhir_fetch("unusable");
            FhirError::Unusable {
                key: key.to_string(),
                reason: "not UTF-8",
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_pages(
        &self,
        base: &ServerBase,
        token: Option<&SecretString>,
        key: String,
        mut url: String,
        mut pages: Vec<String>,
        metrics: &Metrics,
        budget: &CallBudget,
    ) -> Result<Fetched, FhirError> {
        let mut truncated = false;
        loop {
            // Every URL the token is sent to is checked, the first one included.
            if !base.admits(&url) {
                metrics.fhir_fetch("unusable");
                return Err(FhirError::Unusable {
                    key,
                    reason: "next link outside fhirServer",
                });
            }
            let mut request = self
                .http
                .get(&url)
                .header("Accept", "application/fhir+json");
            if let Some(t) = token {
                request = request.bearer_auth(t.expose_secret());
            }
            let response = request.send().await.map_err(|_| {
                metrics.fhir_fetch("transport-error");
                FhirError::Transport { key: key.clone() }
            })?;
            let status = response.status();
            if !status.is_success() {
                metrics.fhir_fetch("http-error");
                return Err(FhirError::Status {
                    key,
                    status: status.as_u16(),
                });
            }
            let body = self.read_capped(response, &key, metrics, budget).await?;
            let head: PageHead = serde_json::from_str(&body).map_err(|_| {
                metrics.fhir_fetch("unusable");
                FhirError::Unusable {
                    key: key.clone(),
                    reason: "not JSON",
                }
            })?;
            match head.resource_type.as_deref() {
                None => {
                    metrics.fhir_fetch("unusable");
                    return Err(FhirError::Unusable {
                        key,
                        reason: "no resourceType",
                    });
                }
                Some("OperationOutcome") => {
                    metrics.fhir_fetch("unusable");
                    return Err(FhirError::Unusable {
                        key,
                        reason: "OperationOutcome",
                    });
                }
                Some(_) => {}
            }
            metrics.fhir_fetch("ok");
            pages.push(body);
            match head.next() {
                Some(next) if pages.len() < self.limits.max_pages => url = next,
                Some(_) => {
                    tracing::warn!(key = %key, max_pages = self.limits.max_pages, "page limit reached; later pages not read");
                    truncated = true;
                    break;
                }
                None => break,
            }
        }
        tracing::debug!(key = %key, pages = pages.len(), "fetched from fhirServer");
        Ok(Fetched {
            key,
            pages,
            truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> ServerBase {
        ServerBase::parse(s).expect("a usable base")
    }

    #[test]
    fn another_port_on_the_same_host_is_another_origin() {
        let b = base("http://127.0.0.1:8001");
        assert!(b.admits("http://127.0.0.1:8001/Observation?page=2"));
        assert!(!b.admits("http://127.0.0.1:8002/Observation?page=2"));
        let slash = base("http://127.0.0.1:8001/");
        assert!(!slash.admits("http://127.0.0.1:8002/x"));
    }

    #[test]
    fn userinfo_that_makes_a_prefix_look_like_the_server_is_refused() {
        let b = base("http://127.0.0.1:8001");
        assert!(!b.admits("http://127.0.0.1:8001@127.0.0.1:8002/Observation"));
        assert!(!b.admits("http://user:pw@127.0.0.1:8001/Observation"));
        assert!(ServerBase::parse("http://user@127.0.0.1:8001").is_err());
    }

    #[test]
    fn a_host_that_merely_starts_with_the_servers_host_is_another_origin() {
        let b = base("https://ehr.example.org");
        assert!(!b.admits("https://ehr.example.org.evil.com/Observation"));
        assert!(!b.admits("http://ehr.example.org/Observation"));
        assert!(b.admits("https://ehr.example.org:443/Observation"));
        assert!(b.admits("https://EHR.example.org/Observation"));
    }

    #[test]
    fn the_path_prefix_ends_at_a_segment_boundary() {
        let b = base("https://ehr.example.org/fhir/");
        assert!(b.admits("https://ehr.example.org/fhir/Observation?x=1"));
        assert!(b.admits("https://ehr.example.org/fhir"));
        assert!(!b.admits("https://ehr.example.org/fhirx/Observation"));
        assert!(!b.admits("https://ehr.example.org/other/Observation"));
        assert!(!b.admits("https://ehr.example.org/fhir/../admin"));
    }

    #[test]
    fn only_http_and_https_bases_are_usable() {
        assert!(ServerBase::parse("ftp://ehr.example.org/").is_err());
        assert!(ServerBase::parse("not a url").is_err());
        assert!(ServerBase::parse("https://ehr.example.org/fhir?x=1").is_err());
    }

    #[test]
    fn relative_searches_join_under_the_base_path() {
        assert_eq!(
            base("https://ehr.example.org/fhir/").join("Observation?a=1"),
            "https://ehr.example.org/fhir/Observation?a=1"
        );
        assert_eq!(
            base("http://127.0.0.1:9").join("/Patient/1"),
            "http://127.0.0.1:9/Patient/1"
        );
    }

    #[test]
    fn next_links_are_read_from_bundles_only() {
        let b = r#"{"resourceType":"Bundle","link":[{"relation":"self","url":"a"},{"relation":"next","url":"b"}]}"#;
        assert_eq!(next_link(b).as_deref(), Some("b"));
        assert_eq!(
            next_link(r#"{"resourceType":"Patient","link":[{"relation":"next","url":"b"}]}"#),
            None
        );
    }
}
