//! Fetches what prefetch did not bring from the CDS Client's `fhirServer`
//! (CDS Hooks 2.0.1 "FHIR Resource Access"): all keys in parallel under one deadline,
//! following Bundle `next` links up to a page limit, with the client's bearer token.
//!
//! Logs name prefetch keys and outcomes only: never URLs (they hold the patient id),
//! bodies or the token.

use std::time::Duration;

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
}

impl FhirError {
    /// The OperationOutcome issue code.
    pub fn issue_code(&self) -> &'static str {
        match self {
            FhirError::NoServer(_) => "not-found",
            FhirError::Deadline(_) => "timeout",
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
}

/// The FHIR client, built once at start-up.
#[derive(Clone, Debug)]
pub struct FhirClient {
    http: reqwest::Client,
    deadline: Duration,
    max_pages: usize,
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

impl FhirClient {
    /// A client with this deadline for all fetches of one request and this page limit.
    pub fn new(deadline: Duration, max_pages: usize) -> Result<FhirClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(deadline)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("crs-cds/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(FhirClient {
            http,
            deadline,
            max_pages,
        })
    }

    /// The deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Runs every query against `base` in parallel; all or nothing, within the deadline.
    pub async fn fetch_all(
        &self,
        base: &str,
        token: Option<&SecretString>,
        queries: Vec<Query>,
        metrics: &Metrics,
    ) -> Result<Vec<Fetched>, FhirError> {
        let base = base.trim_end_matches('/');
        let all = try_join_all(
            queries
                .into_iter()
                .map(|q| self.fetch_one(base, token, q, metrics)),
        );
        match tokio::time::timeout(self.deadline, all).await {
            Ok(result) => result,
            Err(_) => {
                metrics.fhir_fetch("timeout");
                tracing::warn!(
                    deadline_ms = self.deadline.as_millis() as u64,
                    "FHIR fetch deadline passed"
                );
                Err(FhirError::Deadline(self.deadline.as_millis()))
            }
        }
    }

    async fn fetch_one(
        &self,
        base: &str,
        token: Option<&SecretString>,
        query: Query,
        metrics: &Metrics,
    ) -> Result<Fetched, FhirError> {
        let key = query.key;
        let mut url = format!("{base}/{}", query.relative_url.trim_start_matches('/'));
        let mut pages = Vec::new();
        loop {
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
            let body = response.text().await.map_err(|_| {
                metrics.fhir_fetch("transport-error");
                FhirError::Transport { key: key.clone() }
            })?;
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
            let next = head
                .link
                .into_iter()
                .find(|l| l.relation.as_deref() == Some("next"))
                .and_then(|l| l.url);
            match next {
                Some(next) if pages.len() < self.max_pages => {
                    // The bearer token goes only to the client's own FHIR server.
                    if !next.starts_with(base) {
                        metrics.fhir_fetch("unusable");
                        return Err(FhirError::Unusable {
                            key,
                            reason: "next link outside fhirServer",
                        });
                    }
                    url = next;
                }
                Some(_) => {
                    tracing::warn!(key = %key, max_pages = self.max_pages, "page limit reached; later pages not read");
                    break;
                }
                None => break,
            }
        }
        tracing::debug!(key = %key, pages = pages.len(), "fetched from fhirServer");
        Ok(Fetched { key, pages })
    }
}
