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

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the CDS Hooks service (default 127.0.0.1:8080).
    Serve {
        /// TOML configuration file; CRS_CDS_* variables override it.
        #[arg(long, env = "CRS_CDS_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on (overrides config and CRS_CDS_BIND).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Grade a FHIR Bundle or a CDS Hooks request file and print the assessment.
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
    /// Post every DIR/requests/*.json to a running server and compare with DIR/expected/.
    Replay {
        /// The fixture directory.
        dir: PathBuf,
        /// The server's base URL.
        #[arg(long)]
        server: String,
    },
    /// Print the discovery document.
    Discovery,
    /// Probe a running service's health endpoint (for container HEALTHCHECKs): exit 0
    /// when it answers 2xx within 3 s, else 1.
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
    if !settings.auth_enabled() {
        // Loud on purpose (issue 5): config validation allows this on loopback only.
        eprintln!(
            "WARNING: crs-cds is running WITHOUT authentication (no [[auth.issuers]] configured); \
             it accepts calls on {} only. Configure trusted issuers before exposing it.",
            settings.server.bind
        );
    }
    let app = Application::build(&settings)
        .await
        .context("starting the service")?;
    tracing::info!(
        bind = %settings.server.bind.ip(),
        port = app.port(),
        fhir_deadline_ms = settings.fhir.deadline.as_millis() as u64,
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
            let d = chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("--at {t:?} is not RFC 3339"))?;
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

/// `grade FILE`: exit 2 when the file is not JSON.
pub fn grade(
    file: &Path,
    as_json: bool,
    at: Option<&str>,
    config: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let settings = settings(config, None)?;
    let now = parse_at(at)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let value: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "error: {} is not valid JSON at line {}, column {}: {:?}",
                file.display(),
                e.line(),
                e.column(),
                e.classify()
            );
            return Ok(ExitCode::from(2));
        }
    };
    let mut terminology = Terminology::embedded();
    if let Some(path) = &settings.terminology.concept_map {
        let cm =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        terminology = terminology
            .with_concept_map(&cm)
            .map_err(|e| anyhow::anyhow!("concept map {}: {}", e.location, e.message))?;
    }
    // A CDS Hooks request: prefetch values and draft orders; otherwise one document.
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut draft: Option<String> = None;
    let mut selections: Vec<String> = Vec::new();
    if value.get("hook").is_some() {
        if let Some(p) = value.get("prefetch").and_then(Value::as_object) {
            for (k, v) in p {
                if !v.is_null() {
                    texts.push((k.clone(), v.to_string()));
                }
            }
        }
        draft = value.pointer("/context/draftOrders").map(Value::to_string);
        selections = value
            .pointer("/context/selections")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
    } else {
        texts.push((file.display().to_string(), text.clone()));
    }
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
        &terminology,
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

/// `replay DIR --server URL`: exit 1 on any mismatch.
pub async fn replay(dir: &Path, server: &str) -> anyhow::Result<ExitCode> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("requests"))
        .with_context(|| format!("listing {}/requests", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let client = reqwest::Client::new();
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut passed, mut failed) = (0usize, 0usize);
    for path in &files {
        let case = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        bar.set_message(case.clone());
        let outcome = replay_case(&client, server, dir, path, &case).await;
        match outcome {
            Ok(None) => passed += 1,
            Ok(Some(diff)) => {
                failed += 1;
                bar.suspend(|| eprintln!("MISMATCH {case}\n{diff}"));
            }
            Err(e) => {
                failed += 1;
                bar.suspend(|| eprintln!("ERROR {case}: {e:#}"));
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
    server: &str,
    dir: &Path,
    path: &Path,
    case: &str,
) -> anyhow::Result<Option<String>> {
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
    let mut post = client
        .post(format!(
            "{}/cds-services/{}",
            server.trim_end_matches('/'),
            service.id
        ))
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(at) = at.as_ref().and_then(Value::as_str) {
        post = post.header(crate::http::routes::service::EVALUATION_TIME_HEADER, at);
    }
    let response = post.send().await.context("posting the request")?;
    let status = response.status();
    let text = response.text().await.context("reading the response")?;
    if !status.is_success() {
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
