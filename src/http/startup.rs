//! Builds the application from validated [`Settings`] and a bound listener, so tests can
//! bind port 0 and read the port back.
//!
//! Middleware order (outermost first): request span, CORS, metrics. An authentication
//! middleware (JWT, a later issue) slots in between CORS and the routes, so preflight
//! requests stay unauthenticated.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_cors::Cors;
use actix_web::dev::{Server, Service};
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use futures::FutureExt;
use tracing_actix_web::TracingLogger;

use super::cpu::CpuPool;
use super::feedback_store::{SharedJtiCache, StoreHandle, connect_and_migrate};
use super::fhir_client::{FetchLimits, FhirClient};
use super::metrics::Metrics;
use super::routes;
use super::span::CdsRootSpan;
use crate::adapter::Terminology;
use crate::auth::Verifier;
use crate::auth::middleware::{AuthGate, require_cds_client_jwt};
use crate::config::{LimitSettings, Settings};
use crate::domain::Policy;
use crate::protocol::discovery;

/// Shared state of every worker.
pub struct AppState {
    /// The code lists (plus the site ConceptMap).
    pub terminology: Terminology,
    /// The grading policy.
    pub policy: Policy,
    /// Honour the evaluation-time header.
    pub allow_time_override: bool,
    /// Body limit.
    pub max_body_bytes: usize,
    /// FHIR client.
    pub fhir: FhirClient,
    /// Feedback store (set once the database is up).
    pub store: StoreHandle,
    /// Metrics.
    pub metrics: Metrics,
    /// The bounded pool for grading.
    pub cpu: CpuPool,
    /// Body-read timeout, caps (issue 10).
    pub limits: LimitSettings,
    /// The SMART app and the card links (issue 13).
    pub app: routes::app::AppRuntime,
}

/// A built, bound, not yet running application.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Connects the feedback store (running its migrations), loads the terminology and
    /// binds `settings.server.bind`.
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(settings.server.bind)
            .with_context(|| format!("binding {}", settings.server.bind))?;
        Application::build_with_listener(settings, listener).await
    }

    /// As [`Application::build`], on an already bound listener.
    pub async fn build_with_listener(
        settings: &Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        let mut terminology = Terminology::embedded();
        if let Some(path) = &settings.terminology.concept_map {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the concept map {}", path.display()))?;
            terminology = terminology
                .with_concept_map(&text)
                .map_err(|e| anyhow::anyhow!("{}: {}", e.location, e.message))
                .with_context(|| format!("loading the concept map {}", path.display()))?;
        }
        // One attempt now; if the database is not there yet, keep serving hook calls and
        // retry with backoff in the background (feedback and /readyz answer 503 meanwhile).
        let store = StoreHandle::default();
        let url = settings.feedback.database_url.clone();
        match connect_and_migrate(&url).await {
            Ok(s) => store.set(s),
            Err(e) => {
                tracing::warn!(error = %e, "feedback database unavailable at start-up; retrying in the background");
                let retry = store.clone();
                tokio::spawn(async move { retry.connect_with_retry(url).await });
            }
        }
        let shared_replay = super::feedback_store::is_postgres_url(&settings.feedback.database_url);
        let limits = settings.server.limits.clone();
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let app_runtime = routes::app::AppRuntime::new(settings, port);
        let csp = app_runtime.csp.clone();
        let state = web::Data::new(AppState {
            app: app_runtime,
            terminology,
            policy: settings.grading.policy.clone(),
            allow_time_override: settings.grading.allow_time_override,
            max_body_bytes: settings.server.max_body_bytes,
            fhir: FhirClient::new(
                settings.fhir.deadline,
                FetchLimits {
                    max_pages: settings.fhir.max_pages,
                    max_page_bytes: settings.fhir.max_page_bytes,
                    max_call_bytes: settings.fhir.max_call_bytes,
                },
            )
            .context("building the FHIR client")?,
            store: store.clone(),
            metrics: Metrics::new().context("registering metrics")?,
            cpu: CpuPool::new(limits.cpu_workers, limits.cpu_queue),
            limits: limits.clone(),
        });
        let mut auth = settings.auth.clone();
        auth.required = settings.auth_enabled();
        if !auth.required {
            tracing::warn!(
                bind = %settings.server.bind,
                "AUTHENTICATION IS OFF: no trusted JWT issuer is configured; serving loopback only"
            );
        }
        // JWK Sets: no redirects (keys only from the configured URL itself).
        let jwks_client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the JWKS client")?;
        let mut verifier =
            Verifier::new(auth, jwks_client).context("configuring authentication")?;
        if shared_replay {
            // Several replicas on one PostgreSQL database share one jti cache.
            verifier = verifier.with_shared_replay_cache(Arc::new(SharedJtiCache(store)));
        }
        let verifier = Arc::new(verifier);
        let audience_base = settings
            .server
            .public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", settings.server.bind));
        let gate = web::Data::new(AuthGate::new(verifier, audience_base));
        let bench = settings.server.bench_endpoints;
        let demo = settings.demo;
        let demo_auth = demo.then(|| web::Data::new(crate::demo::auth::DemoAuth::default()));
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            let cors = Cors::default()
                .allow_any_origin()
                .allowed_methods(["GET", "POST", "OPTIONS"])
                .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
                .max_age(3600);
            let mut app = App::new()
                .app_data(app_state.clone())
                .app_data(gate.clone())
                // Error answers with an unread body close the connection (hold_payload.rs).
                .wrap_fn(|mut req, srv| {
                    let held = super::hold_payload::hold(&mut req);
                    srv.call(req).map(move |res| {
                        res.map(|r| {
                            r.map_body(move |_, body| super::hold_payload::Holding::new(body, held))
                                .map_into_boxed_body()
                        })
                    })
                })
                .app_data(web::Data::new(routes::landing::LandingMode { demo }))
                .wrap_fn(|req, srv| {
                    let metrics = req
                        .app_data::<web::Data<AppState>>()
                        .map(|s| s.metrics.clone());
                    // A fixed label from the path by string matching: actix's
                    // `match_pattern` would resolve the route (regexes) a second time.
                    let route = routes::route_label(req.path());
                    let method = req.method().clone();
                    let start = Instant::now();
                    srv.call(req).map(move |res| {
                        if let Ok(r) = &res {
                            let (status, elapsed) = (r.status().as_u16(), start.elapsed());
                            if let Some(m) = &metrics {
                                m.request(route, status, elapsed);
                            }
                            // The access log: one line per request, fixed route labels only
                            // (never the path, query or body: they can hold patient data).
                            tracing::info!(
                                method = %method,
                                route,
                                status,
                                latency_ms = elapsed.as_secs_f64() * 1000.0,
                                "request"
                            );
                        }
                        res.map(super::error::fill_empty_error_body)
                    })
                })
                .wrap(cors)
                .wrap(TracingLogger::<CdsRootSpan>::new())
                // Every CDS Hooks endpoint, discovery included, sits behind the JWT
                // check; CORS answers preflight before it, and the probes stay open.
                .service({
                    let mut scope = web::scope("/cds-services")
                        .wrap(from_fn(require_cds_client_jwt))
                        .route("", web::get().to(routes::health::discovery));
                    // Each known service as a static route (matched without a regex),
                    // then `{id}` for the rest (answered 404 by the handlers).
                    for service in discovery::services() {
                        scope = scope
                            .route(
                                &format!("/{}", service.id),
                                web::post().to(routes::service::call_service),
                            )
                            .route(
                                &format!("/{}/feedback", service.id),
                                web::post().to(routes::feedback::post_feedback),
                            );
                    }
                    scope
                        .route("/{id}", web::post().to(routes::service::call_service))
                        .route(
                            "/{id}/feedback",
                            web::post().to(routes::feedback::post_feedback),
                        )
                })
                .route("/", web::get().to(routes::landing::landing))
                .route("/openapi.json", web::get().to(routes::landing::openapi))
                .route("/healthz", web::get().to(routes::health::healthz))
                .route("/readyz", web::get().to(routes::health::readyz))
                .route("/metrics", web::get().to(routes::health::metrics))
                .service(
                    web::scope("/app")
                        .wrap(routes::app::security_headers(&csp))
                        .configure(routes::app::routes),
                );
            if bench {
                app = app
                    .route("/bench/ceiling", web::get().to(routes::health::ceiling))
                    .route(
                        "/bench/naive-fhirbolt",
                        web::post().to(routes::health::naive_fhirbolt),
                    );
            }
            if let Some(auth) = &demo_auth {
                app = app
                    .app_data(auth.clone())
                    .service(crate::demo::auth::scope())
                    .service(crate::demo::ehr::scope())
                    .service(crate::demo::scope());
            }
            app.default_service(web::to(routes::health::not_found))
        })
        // Well under Kubernetes' 30 s grace period. Request heads keep actix's own 5 s
        // timeout; bodies have read_body's `server.body_read_timeout_ms`.
        .shutdown_timeout(limits.shutdown_timeout_secs)
        .listen(listener)
        .context("listening")?
        .run();
        Ok(Application {
            port,
            server,
            state,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests read the feedback store through it).
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone().into_inner()
    }

    /// Runs until the server stops (Ctrl-C or a handle's stop).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Splits into the server future and a handle to stop it.
    pub fn into_parts(self) -> (Server, Arc<AppState>) {
        let state = self.state.clone().into_inner();
        (self.server, state)
    }
}
