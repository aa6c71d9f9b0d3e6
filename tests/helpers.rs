//! `spawn_app`: the service on 127.0.0.1:0 with a temporary SQLite file, plus a client
//! with typed helpers. Logs go to an in-memory buffer (and to stderr with TEST_LOG=1)
//! so the no-PHI test can read them.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::dev::ServerHandle;
use crs_cds::config::{LogFormat, Settings};
use crs_cds::http::{AppState, Application};
use serde_json::{Value, json};

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct BufferWriter {
    buf: Arc<Mutex<Vec<u8>>>,
    echo: bool,
}

impl Write for BufferWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.buf.lock() {
            b.extend_from_slice(data);
        }
        if self.echo {
            std::io::stderr().write_all(data)?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs_buffer() -> Arc<Mutex<Vec<u8>>> {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = BufferWriter {
            buf: buf.clone(),
            echo: std::env::var("TEST_LOG").is_ok(),
        };
        let sub = crs_cds::telemetry::subscriber(LogFormat::Json, "debug", move || writer.clone());
        crs_cds::telemetry::init(sub).expect("the test subscriber is installed once");
        buf
    })
    .clone()
}

/// Everything logged so far by every test in this binary.
pub fn captured_logs() -> String {
    let buf = logs_buffer();
    let b = buf.lock().expect("the log buffer lock is never poisoned");
    String::from_utf8_lossy(&b).into_owned()
}

/// A running test application.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The HTTP client.
    pub client: reqwest::Client,
    /// The app state (feedback store).
    pub state: Arc<AppState>,
    handle: ServerHandle,
    _dir: Option<tempfile::TempDir>,
}

/// Settings for a test: port 0, a SQLite file at `db`.
pub fn test_settings(db: &Path) -> Settings {
    let mut s = Settings::defaults();
    s.server.bind = "127.0.0.1:0".parse().expect("a valid address");
    s.feedback.database_url = format!("sqlite://{}?mode=rwc", db.display());
    s
}

/// The app with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The app with settings adjusted by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("feedback.db");
    let mut app = spawn_app_on(&db, adjust).await;
    app._dir = Some(dir);
    app
}

/// The app on an existing database file (restart tests).
pub async fn spawn_app_on(db: &Path, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    logs_buffer();
    let mut settings = test_settings(db);
    adjust(&mut settings);
    let app = Application::build(&settings).await.expect("the app builds");
    let port = app.port();
    let (server, state) = app.into_parts();
    let handle = server.handle();
    tokio::spawn(server);
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        state,
        handle,
        _dir: None,
    }
}

impl TestApp {
    /// POSTs a JSON request to a CDS Service.
    pub async fn call(&self, service: &str, body: &Value) -> reqwest::Response {
        self.call_raw(service, body.to_string()).await
    }

    /// POSTs a JSON request to a CDS Service graded at `at` (RFC 3339), through the
    /// evaluation-time header (the app must allow it: `grading.allow_time_override`).
    pub async fn call_at(&self, service: &str, body: &Value, at: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/cds-services/{service}", self.address))
            .header(crs_cds::http::routes::service::EVALUATION_TIME_HEADER, at)
            .json(body)
            .send()
            .await
            .expect("sent")
    }

    /// POSTs raw bytes to a CDS Service.
    pub async fn call_raw(
        &self,
        service: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(format!("{}/cds-services/{service}", self.address))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the request is sent")
    }

    /// POSTs feedback.
    pub async fn feedback(&self, service: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/cds-services/{service}/feedback", self.address))
            .json(body)
            .send()
            .await
            .expect("the request is sent")
    }

    /// GETs a path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the request is sent")
    }

    /// Stops the server and closes the database.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.state.store.close().await;
    }
}

/// A patient-view request with `prefetch` (omitted when `None`).
pub fn patient_view(patient_id: &str, prefetch: Option<Value>) -> Value {
    let mut r = json!({
        "hook": "patient-view",
        "hookInstance": uuid::Uuid::new_v4().to_string(),
        "context": { "userId": "Practitioner/u1", "patientId": patient_id },
    });
    if let Some(p) = prefetch {
        r["prefetch"] = p;
    }
    r
}

/// An empty searchset Bundle.
pub fn empty_bundle() -> Value {
    json!({ "resourceType": "Bundle", "type": "searchset", "total": 0, "entry": [] })
}

/// Full prefetch for a patient with no CAR-T on record.
pub fn non_cart_prefetch(patient_id: &str) -> Value {
    json!({
        "patient": { "resourceType": "Patient", "id": patient_id, "birthDate": "1970-01-01" },
        "vitals": empty_bundle(),
        "neuro": empty_bundle(),
        "labs": empty_bundle(),
        "medicationAdministrations": empty_bundle(),
        "medicationRequests": empty_bundle(),
        "procedures": empty_bundle(),
    })
}

/// Every prefetch key set to `null`.
pub fn null_prefetch() -> Value {
    json!({
        "patient": null, "vitals": null, "neuro": null, "labs": null,
        "medicationAdministrations": null, "medicationRequests": null, "procedures": null,
    })
}
