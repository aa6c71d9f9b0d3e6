//! The command line: `serve`, `grade`, `replay`, `discovery`.
//!
//! Glue over the library (anyhow allowed here). `main` maps the result to an exit code:
//! 0 success, 1 failure or replay mismatch, 2 unusable input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use crate::adapter::{self, Document, Terminology};
use crate::config::Settings;
use crate::domain::{self, Assessment, Timestamp};
use crate::http::Application;
use crate::protocol::cards;
use crate::protocol::discovery::{discovery_document, service_for_hook};
use crate::protocol::extension::{EXTENSION_KEY, dose_check_json, extension, format_time};

/// crs-cds: CDS Hooks service grading CRS and ICANS after CAR-T (ASTCT 2019).
#[derive(Debug, Parser)]
#[command(name = "crs-cds", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Input the command cannot use (missing file or directory, bad `--at`, bad URL, JSON
/// of the wrong shape): `main` exits 2 for it, 1 for every other failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub String);

fn unusable(message: impl Into<String>) -> anyhow::Error {
    Unusable(message.into()).into()
}

/// The exit code for a failed command: 2 for [`Unusable`] input, else 1.
pub fn exit_code_for(e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<Unusable>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

const SERVE_EXAMPLES: &str = "Examples:
  crs-cds serve --demo                  # demo FHIR data at /demo/fhir, open http://127.0.0.1:8080/
  crs-cds serve --config deploy/config/base.toml --bind 127.0.0.1:9000
  CRS_CDS_LOG_FORMAT=json crs-cds serve";
const GRADE_EXAMPLES: &str = "Examples:
  crs-cds grade fixtures/requests/crs-2-hypotension-no-pressor.json --at 2026-11-23T12:00:00Z
  crs-cds grade bundle.json --json --config deploy/config/base.toml

Exit codes: 0 graded, 1 failure, 2 unusable input (missing file, not JSON, not an object, bad --at).";
const REPLAY_EXAMPLES: &str = "Examples:
  CRS_CDS_GRADING_ALLOW_TIME_OVERRIDE=true crs-cds serve &
  crs-cds replay fixtures --server http://127.0.0.1:8080
  crs-cds replay fixtures --server https://cds.example.org --bearer \"$TOKEN\"

Exit codes: 0 all passed, 1 a mismatch, an unreachable server or a server ignoring the
evaluation time, 2 unusable input (missing directory, bad URL).";
const DISCOVERY_EXAMPLES: &str = "Example:
  crs-cds discovery > discovery.json";
const HEALTHCHECK_EXAMPLES: &str = "Example:
  crs-cds healthcheck --url http://127.0.0.1:8080/healthz";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the CDS Hooks service (default 127.0.0.1:8080).
    #[command(after_help = SERVE_EXAMPLES)]
    Serve {
        /// TOML configuration file; CRS_CDS_* variables override it.
        #[arg(long, env = "CRS_CDS_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on (overrides config and CRS_CDS_BIND).
        #[arg(long)]
        bind: Option<String>,
        /// Also serve synthetic CAR-T patients at /demo/fhir (read-only FHIR R4), for the
        /// CDS Hooks Sandbox or curl. Never in production.
        #[arg(long)]
        demo: bool,
    },
    /// Grade a FHIR Bundle or a CDS Hooks request file and print the assessment.
    #[command(after_help = GRADE_EXAMPLES)]
    Grade {
        /// The file.
        file: PathBuf,
        /// Print JSON (the card extension plus recommendations) instead of a table.
        #[arg(long)]
        json: bool,
        /// Evaluation instant (RFC 3339); default now.
        #[arg(long)]
        at: Option<String>,
        /// TOML configuration file (grading policy, concept map).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Reconstruct the CRS/ICANS course since the CAR-T infusion (episodes, treatments)
    /// from a FHIR Bundle or a CDS Hooks request file.
    Course {
        /// The file.
        file: PathBuf,
        /// Print JSON (episodes, treatment, registry summary and the full series).
        #[arg(long)]
        json: bool,
        /// Also write the course chart as SVG to this file.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// End of the course (RFC 3339); default the latest time in the record.
        #[arg(long)]
        at: Option<String>,
        /// Print the registry FHIR Bundle (one Condition and one worst-grade
        /// Observation per episode) instead.
        #[arg(long)]
        fhir: bool,
        /// TOML configuration file (grading policy, concept map).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Post every DIR/requests/*.json to a running server and compare with DIR/expected/.
    #[command(after_help = REPLAY_EXAMPLES)]
    Replay {
        /// The fixture directory.
        dir: PathBuf,
        /// The server's base URL.
        #[arg(long)]
        server: String,
        /// A bearer token sent as `Authorization: Bearer TOKEN` (a server with auth on).
        #[arg(long, value_name = "TOKEN")]
        bearer: Option<String>,
    },
    /// Print the discovery document.
    #[command(after_help = DISCOVERY_EXAMPLES)]
    Discovery,
    /// Probe a running service's health endpoint (for container HEALTHCHECKs): exit 0
    /// when it answers 2xx within 3 s, else 1.
    #[command(after_help = HEALTHCHECK_EXAMPLES)]
    Healthcheck {
        /// The URL to probe.
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
}

/// `healthcheck --url URL`.
pub async fn healthcheck(url: &str) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .context("building the HTTP client")?;
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("probing {url}"))?;
    if response.status().is_success() {
        Ok(ExitCode::SUCCESS)
    } else {
        anyhow::bail!("{url} answered {}", response.status())
    }
}

/// The settings for `serve`/`grade`: file, then environment, then `--bind`.
pub fn settings(config: Option<&Path>, bind: Option<&str>) -> anyhow::Result<Settings> {
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    if let Some(b) = bind {
        env.push(("CRS_CDS_BIND".into(), b.to_string()));
    }
    Settings::load(config, env).context("loading the configuration")
}

/// Runs the service until it stops.
pub async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    // The "authentication is off" warning is logged by `Application::build` through
    // tracing, so in JSON mode it is a JSON line like every other (issue 11).
    if settings.demo && !settings.server.bind.ip().is_loopback() {
        // Synthetic patients must never be reachable from another machine, even with
        // authentication on.
        anyhow::bail!(
            "refusing to serve demo data on {}: --demo listens on a loopback address only",
            settings.server.bind
        );
    }
    if settings.demo {
        tracing::warn!(
            path = crate::demo::FHIR_PATH,
            "DEMO MODE: serving synthetic FHIR patients; never in production"
        );
    }
    let app = Application::build(&settings)
        .await
        .context("starting the service")?;
    tracing::info!(
        bind = %settings.server.bind.ip(),
        port = app.port(),
        fhir_deadline_ms = settings.fhir.deadline.as_millis() as u64,
        demo = settings.demo,
        "crs-cds listening"
    );
    app.run_until_stopped()
        .await
        .context("running the service")?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the discovery JSON.
pub fn discovery() -> anyhow::Result<ExitCode> {
    println!(
        "{}",
        serde_json::to_string_pretty(&discovery_document()).context("serializing discovery")?
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_at(at: Option<&str>) -> anyhow::Result<Timestamp> {
    match at {
        Some(t) => {
            let d = chrono::DateTime::parse_from_rfc3339(t).map_err(|e| {
                unusable(format!(
                    "--at {t:?} is not an RFC 3339 date-time ({e}); e.g. 2026-11-23T12:00:00Z"
                ))
            })?;
            Ok(Timestamp(d.timestamp_millis()))
        }
        None => Ok(Timestamp(chrono::Utc::now().timestamp_millis())),
    }
}

/// The assessment as JSON: the card extension plus recommendations and dose checks.
pub fn assessment_json(a: &Assessment) -> Value {
    let mut v = extension(a, None);
    v["day"] = json!(a.day);
    v["evaluatedAt"] = json!(format_time(a.at));
    v["recommendations"] = a
        .recommendations
        .iter()
        .map(|r| json!({ "text": r.text, "source": r.source }))
        .collect();
    v["summary"] = json!(cards::grading_summary(a));
    v["notes"] = a.report.notes.iter().map(|n| json!(n.0)).collect();
    v["weight"] = a.weight.as_ref().map_or(
        Value::Null,
        |w| json!({ "kg": w.value.value(), "time": format_time(w.at), "reference": w.source.0 }),
    );
    v["doseChecks"] = a
        .dose_checks
        .iter()
        .map(|c| {
            let mut j = dose_check_json(c);
            j["reference"] = json!(c.source.0);
            j["summary"] = json!(cards::dose_summary(c));
            j["indicator"] = json!(cards::dose_indicator(c).name());
            j["notes"] = json!(c.notes);
            j
        })
        .collect();
    json!({ EXTENSION_KEY: v })
}

fn grade_text(g: Option<u8>) -> String {
    g.map_or_else(|| "not assessable".into(), |g| g.to_string())
}

/// The assessment as a readable table.
pub fn assessment_table(a: &Assessment) -> String {
    let mut s = String::new();
    let row = |s: &mut String, k: &str, v: String| s.push_str(&format!("{k:<26} {v}\n"));
    s.push_str(&format!("{}\n\n", cards::grading_summary(a)));
    row(&mut s, "Evaluated at", format_time(a.at));
    if let Some(i) = &a.infusion {
        row(
            &mut s,
            "CAR-T infusion",
            format!(
                "{} {} (day {})",
                i.product.map(|p| p.key()).unwrap_or("unknown product"),
                format_time(i.at),
                a.day.unwrap_or_default()
            ),
        );
    }
    row(
        &mut s,
        "CRS grade",
        format!(
            "{}{}",
            grade_text(a.crs.grade),
            if a.crs.lower_bound {
                " (lower bound)"
            } else {
                ""
            }
        ),
    );
    row(&mut s, "  hypotension", grade_text(a.crs.hypotension.grade));
    row(&mut s, "  hypoxia", grade_text(a.crs.hypoxia.grade));
    row(&mut s, "ICANS grade", grade_text(a.icans.grade));
    row(
        &mut s,
        "  encephalopathy",
        grade_text(a.icans.encephalopathy),
    );
    row(&mut s, "  consciousness", grade_text(a.icans.consciousness));
    row(&mut s, "  seizure", a.icans.seizure.to_string());
    row(&mut s, "  motor", a.icans.motor.to_string());
    row(
        &mut s,
        "  cerebral edema",
        a.icans.cerebral_edema.to_string(),
    );
    row(
        &mut s,
        "Flags",
        a.flags
            .iter()
            .map(|f| f.key())
            .collect::<Vec<_>>()
            .join(", "),
    );
    if let Some(w) = &a.weight {
        row(
            &mut s,
            "Dosing weight",
            format!(
                "{} kg ({}, {})",
                cards::text::one_decimal(w.value.value()),
                cards::text::when(w.at, a.at),
                w.source.0
            ),
        );
    }
    row(
        &mut s,
        "HScore",
        format!("{} (information only)", a.hscore.points),
    );
    s.push_str("\nEvidence\n");
    for e in &a.report.evidence {
        s.push_str(&format!(
            "  {:<22} {:<34} {}\n",
            format_time(e.at),
            e.source.0,
            cards::text::clinician_units(&e.finding)
        ));
    }
    if !a.report.missing.is_empty() || !a.report.notes.is_empty() {
        s.push_str("\nMissing / notes\n");
        for m in &a.report.missing {
            s.push_str(&format!("  - {m}\n"));
        }
        for n in &a.report.notes {
            s.push_str(&format!("  - {}\n", n.0));
        }
    }
    if !a.dose_checks.is_empty() {
        s.push_str("\nDose checks\n");
        for c in &a.dose_checks {
            s.push_str(&format!(
                "  [{}] {} ({})\n",
                cards::dose_indicator(c).name(),
                cards::dose_summary(c),
                c.source.0
            ));
            for n in &c.notes {
                s.push_str(&format!("      note: {n}\n"));
            }
        }
    }
    if !a.recommendations.is_empty() {
        s.push_str("\nRecommendations\n");
        for r in &a.recommendations {
            s.push_str(&format!("  - {} ({})\n", r.text, r.source));
        }
    }
    s
}

/// A `grade`/`course` input file, read and checked once: the grading settings, the
/// terminology (with the site ConceptMap), and the file as JSON. Unusable input (a missing
/// file, not JSON, JSON that is not an object, a bad configuration) exits 2.
struct InputFile {
    settings: Settings,
    terminology: Terminology,
    value: Value,
    text: String,
}

impl InputFile {
    fn read(file: &Path, config: Option<&Path>) -> anyhow::Result<InputFile> {
        let settings = Settings::load_grading(config, std::env::vars())
            .map_err(|e| unusable(format!("loading the configuration: {e}")))?;
        let text = std::fs::read_to_string(file)
            .map_err(|e| unusable(format!("reading {}: {e}", file.display())))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            unusable(format!(
                "{} is not valid JSON at line {}, column {}: {:?}",
                file.display(),
                e.line(),
                e.column(),
                e.classify()
            ))
        })?;
        if !value.is_object() {
            return Err(unusable(format!(
                "{} is JSON but not an object: expected a FHIR resource (a Bundle) or a CDS Hooks request",
                file.display()
            )));
        }
        let mut terminology = Terminology::embedded();
        if let Some(path) = &settings.terminology.concept_map {
            let cm = std::fs::read_to_string(path).map_err(|e| {
                unusable(format!("reading the concept map {}: {e}", path.display()))
            })?;
            terminology = terminology
                .with_concept_map(&cm)
                .map_err(|e| unusable(format!("concept map {}: {}", e.location, e.message)))?;
        }
        Ok(InputFile {
            settings,
            terminology,
            value,
            text,
        })
    }

    /// The documents: a hook request's non-null prefetch values, or the file itself.
    fn documents(&self, file: &Path) -> Vec<(String, String)> {
        let mut texts = Vec::new();
        if self.value.get("hook").is_some() {
            if let Some(p) = self.value.get("prefetch").and_then(Value::as_object) {
                for (k, v) in p {
                    if !v.is_null() {
                        texts.push((k.clone(), v.to_string()));
                    }
                }
            }
        } else {
            texts.push((file.display().to_string(), self.text.clone()));
        }
        texts
    }
}

/// `grade FILE`: exit 2 when the input is unusable (missing file, not JSON, not a JSON
/// object, bad `--at`, unreadable configuration). Reads only the grading and terminology
/// settings, so serve-only settings (`CRS_CDS_BIND`, `[auth]`) never stop it.
pub fn grade(
    file: &Path,
    as_json: bool,
    at: Option<&str>,
    config: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let input = InputFile::read(file, config)?;
    let now = parse_at(at)?;
    let InputFile {
        settings,
        terminology,
        value,
        ..
    } = &input;
    let texts = input.documents(file);
    // A CDS Hooks request also brings draft orders and selections.
    let draft = value.pointer("/context/draftOrders").map(Value::to_string);
    let selections: Vec<String> = value
        .pointer("/context/selections")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let documents: Vec<Document<'_>> = texts
        .iter()
        .map(|(o, j)| Document { origin: o, json: j })
        .collect();
    let draft_doc = draft.as_deref().map(|j| Document {
        origin: "draftOrders",
        json: j,
    });
    let mapped = adapter::map_documents_for_patient(
        value.pointer("/context/patientId").and_then(Value::as_str),
        &documents,
        draft_doc,
        &selections,
        now,
        terminology,
        settings.grading.policy.window_hours,
    );
    for i in &mapped.issues {
        eprintln!("input issue: {}: {}", i.location, i.message);
    }
    if !mapped.has_infusion() {
        if as_json {
            println!("{}", json!({ "cards": [] }));
        } else {
            println!(
                "No CAR-T infusion on record: nothing to grade (the service answers no cards)."
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let a = domain::assess(&mapped.facts, &mapped.orders, now, &settings.grading.policy);
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&assessment_json(&a)).context("serializing")?
        );
    } else {
        print!("{}", assessment_table(&a));
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether every key of `expected` equals the same key of `actual` (top level; values
/// compared whole).
pub fn subset_matches(expected: &Value, actual: &Value) -> bool {
    match expected.as_object() {
        Some(map) => map.iter().all(|(k, v)| actual.get(k) == Some(v)),
        None => expected == actual,
    }
}

/// The card whose extension replay compares: the one carrying `doseCheck` when the
/// expectation has one, else the first.
pub fn pick_extension(response: &Value, want_dose_check: bool) -> Value {
    let cards = response["cards"].as_array().cloned().unwrap_or_default();
    let ext = |c: &Value| c["extension"][EXTENSION_KEY].clone();
    if want_dose_check {
        cards
            .iter()
            .map(ext)
            .find(|e| e.get("doseCheck").is_some())
            .unwrap_or(Value::Null)
    } else {
        cards.first().map(ext).unwrap_or(Value::Null)
    }
}

/// Why a replay stops before its last case.
#[derive(Debug)]
enum CaseError {
    /// The server could not be reached: every later case would fail the same way.
    Unreachable(String),
    /// This case failed (unreadable files, a non-JSON answer).
    Case(anyhow::Error),
}

impl From<anyhow::Error> for CaseError {
    fn from(e: anyhow::Error) -> Self {
        CaseError::Case(e)
    }
}

/// The server URL, checked before anything is sent: exit 2 when it is not http(s).
fn replay_base(server: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(server)
        .map_err(|e| unusable(format!("--server {server:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(unusable(format!(
            "--server {server:?} must be an http:// or https:// URL with a host"
        )));
    }
    Ok(server.trim_end_matches('/').to_string())
}

fn post(
    client: &reqwest::Client,
    base: &str,
    service: &str,
    bearer: Option<&str>,
    body: String,
) -> reqwest::RequestBuilder {
    let mut post = client
        .post(format!("{base}/cds-services/{service}"))
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(t) = bearer {
        post = post.bearer_auth(t);
    }
    post
}

async fn send(request: reqwest::RequestBuilder, base: &str) -> Result<(u16, String), CaseError> {
    let response = request.send().await.map_err(|e| {
        let why = if e.is_connect() {
            "connection refused or no route"
        } else if e.is_timeout() {
            "timed out"
        } else {
            "the request failed"
        };
        CaseError::Unreachable(format!(
            "cannot reach {base} ({why}); is the service running?"
        ))
    })?;
    let status = response.status().as_u16();
    // An authenticating server ends the run (every later case would be refused too).
    if status == 401 || status == 403 {
        return Err(CaseError::Unreachable(format!(
            "{base} refused the replay with HTTP {status}: pass --bearer TOKEN for a server with auth on"
        )));
    }
    let text = response
        .text()
        .await
        .map_err(|_| CaseError::Unreachable(format!("{base} closed the connection")))?;
    Ok((status, text))
}

/// A patient-view request whose CRS grade tells whether the server graded it at `at`:
/// a CAR-T infusion 48 h and a temperature of 40.5 °C 1 h before `at` (above every
/// configurable fever threshold, with SBP 130 and room air) is an assessable CRS grade at
/// `at`, and not assessable a day or more later (the only temperature is then outside the
/// default 24 h grading window; a server with a longer `grading.window_hours` is detected
/// only once `at` is further away than its window).
pub fn time_override_probe(at: chrono::DateTime<chrono::FixedOffset>) -> Value {
    let t = |h: i64| {
        (at - chrono::Duration::hours(h)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let iec = "https://w3id.org/crs-cds/fhir/CodeSystem/iec-toxicity";
    let obs = |id: &str, code: Value, value: (&str, Value)| {
        let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": code, "subject": {"reference": "Patient/replay-probe"},
            "effectiveDateTime": t(1)});
        o[value.0] = value.1;
        json!({"resource": o})
    };
    let loinc = |c: &str| json!({"coding": [{"system": "http://loinc.org", "code": c}]});
    let q = |v: f64, u: &str| json!({"value": v, "unit": u, "system": "http://unitsofmeasure.org", "code": u});
    let bundle = |entries: Vec<Value>| json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    json!({
        "hook": "patient-view",
        "hookInstance": "00000000-0000-4000-8000-000000000001",
        "context": {"userId": "Practitioner/replay", "patientId": "replay-probe"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "replay-probe", "birthDate": "1970-01-01"},
            "vitals": bundle(vec![
                obs("probe-temp", loinc("8310-5"), ("valueQuantity", q(40.5, "Cel"))),
                obs("probe-sbp", loinc("8480-6"), ("valueQuantity", q(130.0, "mm[Hg]"))),
                obs("probe-o2", json!({"coding": [{"system": iec, "code": "oxygen-delivery"}]}),
                    ("valueCodeableConcept", json!({"coding": [{"system": iec, "code": "room-air"}]}))),
            ]),
            "neuro": bundle(vec![obs("probe-ice", json!({"coding": [{"system": iec, "code": "ice-score"}]}),
                ("valueInteger", json!(10)))]),
            "labs": bundle(vec![]),
            "medicationAdministrations": bundle(vec![]),
            "medicationRequests": bundle(vec![]),
            "procedures": bundle(vec![json!({"resource": {"resourceType": "Procedure", "id": "probe-car-t",
                "status": "completed", "subject": {"reference": "Patient/replay-probe"},
                "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "38228"}]},
                "performedDateTime": t(48)}})]),
        }
    })
}

/// Whether the server honours the evaluation-time header at `at` (see
/// [`time_override_probe`]). `Err` when it cannot be asked.
async fn honours_time_override(
    client: &reqwest::Client,
    base: &str,
    bearer: Option<&str>,
    at: &str,
) -> Result<bool, CaseError> {
    let instant = chrono::DateTime::parse_from_rfc3339(at).map_err(|e| {
        CaseError::Case(anyhow::anyhow!(
            "the expectation's at {at:?} is not RFC 3339: {e}"
        ))
    })?;
    let service = service_for_hook("patient-view").context("no patient-view service")?;
    let request = post(
        client,
        base,
        &service.id,
        bearer,
        time_override_probe(instant).to_string(),
    )
    .header(crate::http::routes::service::EVALUATION_TIME_HEADER, at);
    let (status, text) = send(request, base).await?;
    if !(200..300).contains(&status) {
        return Err(CaseError::Unreachable(format!(
            "{base} answered HTTP {status} to the evaluation-time probe: {text}"
        )));
    }
    let response: Value = serde_json::from_str(&text).context("the probe's answer is not JSON")?;
    Ok(pick_extension(&response, false)["crsGrade"].is_u64())
}

/// `replay DIR --server URL [--bearer TOKEN]`: exit 1 on any mismatch, on an unreachable
/// server (after one message, at the first case that cannot be sent) and when the server
/// ignores the evaluation time the fixtures are pinned to (stale fixtures would otherwise
/// grade as of now and read as clinical mismatches, or pass by accident); exit 2 for a
/// bad URL or a missing directory.
pub async fn replay(dir: &Path, server: &str, bearer: Option<&str>) -> anyhow::Result<ExitCode> {
    let base = replay_base(server)?;
    for sub in ["requests", "expected"] {
        if !dir.join(sub).is_dir() {
            return Err(unusable(format!(
                "{} is not a fixture directory: {}/{sub} is missing",
                dir.display(),
                dir.display()
            )));
        }
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("requests"))
        .map_err(|e| unusable(format!("listing {}/requests: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(unusable(format!(
            "{}/requests holds no *.json request",
            dir.display()
        )));
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut probed: Vec<String> = Vec::new();
    for path in &files {
        let case = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        bar.set_message(case.clone());
        let outcome = replay_case(&client, &base, bearer, dir, path, &case, &mut probed).await;
        match outcome {
            Ok(None) => passed += 1,
            Ok(Some(diff)) => {
                failed += 1;
                bar.suspend(|| eprintln!("MISMATCH {case}\n{diff}"));
            }
            Err(CaseError::Case(e)) => {
                failed += 1;
                bar.suspend(|| eprintln!("ERROR {case}: {e:#}"));
            }
            Err(CaseError::Unreachable(message)) => {
                bar.finish_and_clear();
                eprintln!("error: {message}");
                println!(
                    "stopped at {case}: {passed} passed, {failed} failed, {} not run",
                    files.len() - passed - failed
                );
                return Ok(ExitCode::FAILURE);
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn replay_case(
    client: &reqwest::Client,
    base: &str,
    bearer: Option<&str>,
    dir: &Path,
    path: &Path,
    case: &str,
    probed: &mut Vec<String>,
) -> Result<Option<String>, CaseError> {
    let body =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let request: Value =
        serde_json::from_str(&body).with_context(|| format!("{} is not JSON", path.display()))?;
    let hook = request["hook"]
        .as_str()
        .context("the request has no hook")?;
    let service = service_for_hook(hook).with_context(|| format!("no service answers {hook:?}"))?;
    let expected_path = dir.join("expected").join(format!("{case}.json"));
    let expected_text = std::fs::read_to_string(&expected_path)
        .with_context(|| format!("reading {}", expected_path.display()))?;
    let mut expected: Value = serde_json::from_str(&expected_text)
        .with_context(|| format!("{} is not JSON", expected_path.display()))?;
    // Keys that steer the replay rather than describe the extension: `at` (evaluation
    // time, sent as a header), `why` (the rationale, for people), `hasInfusion: false`
    // (a patient without CAR-T: no cards at all).
    let at = expected.as_object_mut().and_then(|m| m.remove("at"));
    let _why = expected.as_object_mut().and_then(|m| m.remove("why"));
    let has_infusion = expected
        .as_object_mut()
        .and_then(|m| m.remove("hasInfusion"));
    let mut post = post(client, base, &service.id, bearer, body);
    if let Some(at) = at.as_ref().and_then(Value::as_str) {
        // Once per instant: does the server grade at the time the case is pinned to?
        if !probed.iter().any(|p| p == at) {
            if !honours_time_override(client, base, bearer, at).await? {
                return Err(CaseError::Unreachable(format!(
                    "{base} ignores the {} header: the fixtures are pinned to {at} and would be \
                     graded as of now. Start the server with grading.allow_time_override = true \
                     (CRS_CDS_GRADING_ALLOW_TIME_OVERRIDE=true; replays and tests only, never \
                     production)",
                    crate::http::routes::service::EVALUATION_TIME_HEADER
                )));
            }
            probed.push(at.to_string());
        }
        post = post.header(crate::http::routes::service::EVALUATION_TIME_HEADER, at);
    }
    let (status, text) = send(post, base).await?;
    if !(200..300).contains(&status) {
        return Ok(Some(format!("HTTP {status}: {text}")));
    }
    let actual_response: Value = serde_json::from_str(&text).context("the response is not JSON")?;
    if has_infusion == Some(Value::Bool(false)) {
        let cards = actual_response["cards"].as_array().map_or(0, Vec::len);
        return Ok(
            (cards != 0).then(|| format!("expected no cards (no CAR-T infusion), got {cards}"))
        );
    }
    let actual = pick_extension(&actual_response, expected.get("doseCheck").is_some());
    if subset_matches(&expected, &actual) {
        return Ok(None);
    }
    // Show only the keys the expectation names.
    let shown: Value = match expected.as_object() {
        Some(m) => m
            .keys()
            .map(|k| (k.clone(), actual.get(k).cloned().unwrap_or(Value::Null)))
            .collect(),
        None => actual.clone(),
    };
    let e = serde_json::to_string_pretty(&expected).unwrap_or_default();
    let a = serde_json::to_string_pretty(&shown).unwrap_or_default();
    let diff = similar::TextDiff::from_lines(&e, &a)
        .unified_diff()
        .header("expected", "actual")
        .to_string();
    Ok(Some(diff))
}

/// The adapter reads observations up to 10 years back for a course (no window skip).
const COURSE_LOOKBACK_HOURS: f64 = 87_600.0;

/// The patient id of a hook request (`context.patientId`) or of a Bundle's Patient.
fn patient_id_of(value: &Value) -> String {
    if let Some(id) = value.pointer("/context/patientId").and_then(Value::as_str) {
        return id.to_string();
    }
    let in_bundle = |b: &Value| {
        b["entry"].as_array().and_then(|es| {
            es.iter()
                .map(|e| &e["resource"])
                .find(|r| r["resourceType"] == "Patient")
                .and_then(|r| r["id"].as_str().map(String::from))
        })
    };
    in_bundle(value)
        .or_else(|| {
            value
                .pointer("/prefetch/patient/id")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The latest instant of any fact in the record (the default end of a course).
fn latest_fact(f: &domain::PatientFacts) -> Option<Timestamp> {
    let mut latest = f.infusion.as_ref().map(|i| i.at);
    let mut see = |t: Timestamp| latest = latest.max(Some(t));
    f.each_observation_time(&mut see);
    f.each_treatment_time(0, &mut see);
    latest
}

/// The course as a readable table: the card line, the episodes, the treatments.
pub fn course_table(c: &domain::Course) -> String {
    use crate::protocol::course::course_line;
    let mut s = String::new();
    let row = |s: &mut String, k: &str, v: String| s.push_str(&format!("{k:<26} {v}\n"));
    row(&mut s, "CAR-T infusion", format_time(c.infusion));
    row(
        &mut s,
        "Course",
        format!(
            "{} to {} (day {} to {})",
            format_time(c.start),
            format_time(c.until),
            c.day(c.start),
            c.day(c.until)
        ),
    );
    if let Some(day) = c.data_gap_day {
        row(
            &mut s,
            "Data",
            format!("from day {day}: earlier data not sent"),
        );
    }
    row(&mut s, "Summary", course_line(c).unwrap_or_default());
    s.push_str("\nEpisodes\n");
    s.push_str(&format!(
        "  {:<6} {:<22} {:<7} {:<22} {:<22}\n",
        "", "onset", "worst", "worst first at", "resolution"
    ));
    for sc in [&c.crs, &c.icans] {
        for e in &sc.episodes {
            s.push_str(&format!(
                "  {:<6} {:<22} {:<7} {:<22} {:<22}\n",
                e.syndrome.name(),
                format!(
                    "{}{} d{}",
                    format_time(e.onset),
                    if e.onset_censored { "?" } else { "" },
                    c.day(e.onset)
                ),
                format!("{}{}", if e.worst_lower_bound { ">=" } else { "" }, e.worst),
                format!("{} d{}", format_time(e.worst_at), c.day(e.worst_at)),
                e.resolution.map_or_else(
                    || "ongoing".to_string(),
                    |r| format!("{} d{}", format_time(r), c.day(r))
                ),
            ));
        }
        if sc.episodes.is_empty() {
            s.push_str(&format!("  {:<6} no episode\n", sc.syndrome.name()));
        }
        let grades = sc
            .hours_at_grade
            .iter()
            .enumerate()
            .map(|(g, h)| format!("{g}: {h:.0} h"))
            .collect::<Vec<_>>()
            .join(", ");
        s.push_str(&format!(
            "  {:<6} hours at grade {grades}; lower bound {:.0} h; not assessable {:.0} h\n",
            "",
            sc.hours_at_least.iter().sum::<f64>(),
            sc.not_assessable_hours()
        ));
        for n in &sc.not_assessable {
            s.push_str(&format!(
                "  {:<6} not assessable {} to {}\n",
                "",
                format_time(n.start),
                format_time(n.end)
            ));
        }
    }
    let t = &c.treatment;
    s.push_str("\nTreatment\n");
    row(
        &mut s,
        "  tocilizumab",
        format!(
            "{} doses (most in 24 h: {}) {}",
            t.tocilizumab.len(),
            t.tocilizumab_max_24h,
            t.tocilizumab
                .iter()
                .map(|d| format!(
                    "{} {}",
                    format_time(d.at),
                    d.mg.map_or("? mg".into(), |m| format!("{m:.0} mg"))
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    );
    row(
        &mut s,
        "  corticosteroids",
        format!(
            "{} doses on {} days, dexamethasone-equivalent {:.1} mg{}{}",
            t.steroids.doses.len(),
            t.steroids.days_on_steroids,
            t.steroids.dexamethasone_equivalent_mg,
            if t.steroids.doses_without_mg > 0 {
                format!(
                    " ({} doses without a stated mg)",
                    t.steroids.doses_without_mg
                )
            } else {
                String::new()
            },
            if t.steroids.prolonged_high_dose() {
                format!(
                    "; CAUTION {} days at dexamethasone 10 mg q6h-equivalent (SEED-002)",
                    t.steroids.high_dose_run_days
                )
            } else {
                String::new()
            }
        ),
    );
    row(&mut s, "  anakinra", format!("{} doses", t.anakinra.len()));
    row(
        &mut s,
        "  siltuximab",
        format!("{} doses", t.siltuximab.len()),
    );
    row(
        &mut s,
        "  vasopressors",
        format!("{:.1} h", t.vasopressor_hours),
    );
    for (k, h) in &t.oxygen_hours {
        row(&mut s, &format!("  O2 {k}"), format!("{h:.1} h"));
    }
    s
}

/// `course FILE`: exit 2 when the file is not JSON.
pub fn course(
    file: &Path,
    as_json: bool,
    svg: Option<&Path>,
    at: Option<&str>,
    fhir: bool,
    config: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    use crate::protocol::course::{course_json, registry_bundle};
    let input = InputFile::read(file, config)?;
    let policy = &input.settings.grading.policy;
    let terminology = &input.terminology;
    let value = &input.value;
    let texts = input.documents(file);
    let documents: Vec<Document<'_>> = texts
        .iter()
        .map(|(o, j)| Document { origin: o, json: j })
        .collect();
    let map = |now: Timestamp| {
        adapter::map_documents_within(
            &documents,
            None,
            &[],
            now,
            terminology,
            COURSE_LOOKBACK_HOURS,
        )
    };
    // The end of the course: --at, else the latest time in the record (mapped again at
    // that instant so that ages are computed then).
    let mut mapped = map(parse_at(at)?);
    let until = match at {
        Some(_) => parse_at(at)?,
        None => match latest_fact(&mapped.facts) {
            Some(t) => {
                mapped = map(t);
                t
            }
            None => parse_at(None)?,
        },
    };
    for i in &mapped.issues {
        eprintln!("input issue: {}: {}", i.location, i.message);
    }
    let Some(infusion) = mapped.facts.infusion.clone() else {
        println!("No CAR-T infusion on record: there is no course to reconstruct.");
        return Ok(ExitCode::SUCCESS);
    };
    if infusion.at > until {
        eprintln!(
            "error: the CAR-T infusion is after the end of the course ({})",
            format_time(until)
        );
        return Ok(ExitCode::from(2));
    }
    let c = domain::course(
        &mapped.facts,
        infusion.at,
        until,
        policy,
        &domain::CourseParams::default(),
    );
    let patient = patient_id_of(value);
    if let Some(out) = svg {
        std::fs::write(out, crate::render::course_svg(&c))
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if fhir {
        println!(
            "{}",
            serde_json::to_string_pretty(&registry_bundle(&c, &patient)).context("serializing")?
        );
    } else if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&course_json(&c, &patient, infusion.product))
                .context("serializing")?
        );
    } else {
        print!("{}", course_table(&c));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_comparison_ignores_keys_the_expectation_leaves_out() {
        let actual = json!({"crsGrade": 2, "icansGrade": 0, "flags": ["tocilizumab-indicated"], "evidence": []});
        assert!(subset_matches(&json!({"crsGrade": 2}), &actual));
        assert!(!subset_matches(&json!({"crsGrade": 3}), &actual));
        assert!(!subset_matches(&json!({"doseCheck": {}}), &actual));
    }

    fn probe_crs_grade(at: &str, now: &str) -> Option<u8> {
        let at = chrono::DateTime::parse_from_rfc3339(at).expect("RFC 3339");
        let now = Timestamp(
            chrono::DateTime::parse_from_rfc3339(now)
                .expect("RFC 3339")
                .timestamp_millis(),
        );
        let probe = time_override_probe(at);
        let texts: Vec<(String, String)> = probe["prefetch"]
            .as_object()
            .expect("prefetch")
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        let docs: Vec<Document<'_>> = texts
            .iter()
            .map(|(o, j)| Document { origin: o, json: j })
            .collect();
        let policy = crate::domain::Policy::default();
        let mapped = adapter::map_documents_within(
            &docs,
            None,
            &[],
            now,
            &Terminology::embedded(),
            policy.window_hours,
        );
        assert!(mapped.has_infusion());
        domain::assess(&mapped.facts, &mapped.orders, now, &policy)
            .crs
            .grade
    }

    #[test]
    fn the_time_override_probe_is_assessable_at_its_instant_and_not_a_day_later() {
        let at = "2026-11-23T12:00:00Z";
        assert!(probe_crs_grade(at, at).is_some());
        assert_eq!(probe_crs_grade(at, "2026-11-24T13:00:01Z"), None);
    }

    #[test]
    fn replay_picks_the_dose_check_card_when_expected() {
        let response = json!({"cards": [
            {"extension": {"org.crs-cds": {"crsGrade": 1}}},
            {"extension": {"org.crs-cds": {"crsGrade": 1, "doseCheck": {"drug": "tocilizumab"}}}}
        ]});
        assert_eq!(
            pick_extension(&response, true)["doseCheck"]["drug"],
            "tocilizumab"
        );
        assert!(pick_extension(&response, false).get("doseCheck").is_none());
        assert_eq!(pick_extension(&json!({"cards": []}), false), Value::Null);
    }
}
