//! Prometheus metrics: requests by route and status, latency, cards by indicator,
//! FHIR fetches by outcome, build info and (on Linux) the standard `process_*` metrics.
//! One registry per application (tests run several apps). Every family is present from
//! start: the known label values are created at zero, so dashboards and alerts see
//! `crs_cds_fhir_fetches_total{outcome="timeout"} 0` rather than nothing.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The outcomes `crs_cds_fhir_fetches_total` counts (see `fhir_client`).
pub const FHIR_FETCH_OUTCOMES: &[&str] =
    &["ok", "http-error", "transport-error", "unusable", "timeout"];
/// The card indicators.
pub const CARD_INDICATORS: &[&str] = &["info", "warning", "critical"];
/// The CDS Hooks routes whose request counters start at zero.
const ROUTES: &[&str] = &[
    "/cds-services",
    "/cds-services/{id}",
    "/cds-services/{id}/feedback",
];

/// The service's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    cards: IntCounterVec,
    fhir_fetches: IntCounterVec,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "crs_cds_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "crs_cds_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )?;
        let cards = IntCounterVec::new(
            Opts::new("crs_cds_cards_total", "Cards returned by indicator"),
            &["indicator"],
        )?;
        let fhir_fetches = IntCounterVec::new(
            Opts::new(
                "crs_cds_fhir_fetches_total",
                "FHIR server fetches by outcome",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(cards.clone()))?;
        registry.register(Box::new(fhir_fetches.clone()))?;
        let build = IntGaugeVec::new(
            Opts::new("crs_cds_build_info", "Build information (value 1)"),
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(build))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        for outcome in FHIR_FETCH_OUTCOMES {
            fhir_fetches.with_label_values(&[*outcome]);
        }
        for indicator in CARD_INDICATORS {
            cards.with_label_values(&[*indicator]);
        }
        for route in ROUTES {
            requests.with_label_values(&[*route, "200"]);
            latency.with_label_values(&[*route]);
        }
        Ok(Metrics {
            registry,
            requests,
            latency,
            cards,
            fhir_fetches,
        })
    }

    /// Records one answered request.
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// Records one card.
    pub fn card(&self, indicator: &str) {
        self.cards.with_label_values(&[indicator]).inc();
    }

    /// Records one FHIR fetch outcome.
    pub fn fhir_fetch(&self, outcome: &str) {
        self.fhir_fetches.with_label_values(&[outcome]).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}
