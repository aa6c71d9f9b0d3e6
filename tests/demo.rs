//! Demo mode (`serve --demo`, issue 11): the synthetic FHIR endpoint, and a patient-view
//! call per demo patient with `fhirServer` pointing at it. The grades below are derived by
//! hand from RULES.md (A.1 CRS, A.2 ICANS) for the data each patient was built with; they
//! are not read from the demo module.

use serde_json::{Value, json};

use crate::helpers::{patient_view, spawn_app, spawn_app_with};

/// (patient id, CRS grade, ICANS grade, why) — `None` for not assessable.
const EXPECTED: &[(&str, Option<u8>, Option<u8>, &str)] = &[
    (
        "demo-crs-0",
        Some(0),
        Some(0),
        "37.0 °C and nothing given: fever gate closed (A.1); ICE 10",
    ),
    (
        "demo-crs-1",
        Some(1),
        Some(0),
        "38.9 °C, SBP 118, room air: fever only (A.1 grade 1)",
    ),
    (
        "demo-crs-2",
        Some(2),
        Some(0),
        "38.9 °C, SBP 82 < 90 without vasopressor, nasal cannula 3 L/min ≤ 6: grade 2",
    ),
    (
        "demo-crs-3",
        Some(3),
        Some(0),
        "39.0 °C, one vasopressor (norepinephrine running now): hypotension 3",
    ),
    (
        "demo-crs-4",
        Some(4),
        None,
        "39.3 °C, mechanical ventilation in progress: hypoxia 4; ICE not performed, nothing else: not assessable (A.2)",
    ),
    (
        "demo-icans-no-crs",
        Some(0),
        Some(2),
        "afebrile, nothing given: CRS 0; ICE 5 (3-6): ICANS 2",
    ),
    (
        "demo-icans-with-crs",
        Some(2),
        Some(2),
        "38.8 °C, SBP 84 without vasopressor: CRS 2; ICE 5: ICANS 2",
    ),
    (
        "demo-child",
        Some(1),
        Some(1),
        "8 years: SBP threshold 70 + 2×8 = 86, SBP 104 is not below; 38.7 °C: CRS 1; CAPD 4 (1-8): ICANS 1",
    ),
    (
        "demo-tocilizumab-history",
        Some(2),
        Some(0),
        "39.1 °C 14 h ago (in the 24 h window, before tocilizumab), SBP 84 without vasopressor, room air: CRS 2; ICE 10",
    ),
];

fn demo_call(patient: &str, fhir_server: &str) -> Value {
    let mut r = patient_view(patient, None);
    r["fhirServer"] = json!(fhir_server);
    r
}

#[tokio::test]
async fn each_demo_patient_grades_as_its_data_was_built_for_through_the_demo_fhir_endpoint() {
    let app = spawn_app_with(|s| s.demo = true).await;
    let fhir = format!("{}/demo/fhir", app.address);
    let ids: Vec<&str> = crs_cds::demo::PATIENTS.iter().map(|p| p.id).collect();
    for (id, _, _, _) in EXPECTED {
        assert!(ids.contains(id), "{id} is a demo patient");
    }
    for (id, crs, icans, why) in EXPECTED {
        let response = app.call("crs-icans-grading", &demo_call(id, &fhir)).await;
        assert_eq!(response.status(), 200, "{id}");
        let body: Value = response.json().await.expect("JSON");
        let ext = &body["cards"][0]["extension"]["org.crs-cds"];
        assert_eq!(ext["crsGrade"], json!(crs), "{id}: {why}\n{ext:#}");
        assert_eq!(ext["icansGrade"], json!(icans), "{id}: {why}\n{ext:#}");
        assert_eq!(ext["missing"], json!([]), "{id}: nothing missing\n{ext:#}");
    }
    // The patient without a CAR-T infusion gets no cards at all.
    let response = app
        .call("crs-icans-grading", &demo_call("demo-no-car-t", &fhir))
        .await;
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["cards"], json!([]));
    // Every demo patient is covered above.
    assert_eq!(ids.len(), EXPECTED.len() + 1);
    app.stop().await;
}

#[tokio::test]
async fn the_demo_fhir_endpoint_pages_with_next_links_and_reads_by_id() {
    let app = spawn_app_with(|s| s.demo = true).await;
    let first: Value = app
        .get("/demo/fhir/Observation?subject=Patient/demo-child&_count=2")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(first["resourceType"], "Bundle");
    assert_eq!(first["type"], "searchset");
    let total = first["total"].as_u64().expect("a total");
    assert!(total > 2, "the child has more than two Observations");
    let mut seen = first["entry"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(seen, 2);
    let mut next = first["link"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
        .and_then(|l| l["url"].as_str())
        .map(String::from);
    while let Some(url) = next {
        assert!(
            url.starts_with(&format!("{}/demo/fhir/", app.address)),
            "{url}"
        );
        let page: Value = app
            .client
            .get(&url)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        seen += page["entry"].as_array().map_or(0, Vec::len) as u64;
        next = page["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(String::from);
    }
    assert_eq!(seen, total);
    let patient = app.get("/demo/fhir/Patient/demo-child").await;
    assert_eq!(patient.status(), 200);
    let patient: Value = patient.json().await.expect("JSON");
    assert_eq!(patient["id"], "demo-child");
    let missing = app.get("/demo/fhir/Patient/nobody").await;
    assert_eq!(missing.status(), 404);
    let missing: Value = missing.json().await.expect("JSON");
    assert_eq!(missing["resourceType"], "OperationOutcome");
    app.stop().await;
}

#[tokio::test]
async fn without_demo_mode_no_demo_data_is_served() {
    let app = spawn_app().await;
    for path in [
        "/demo/fhir/metadata",
        "/demo/fhir/Patient/demo-crs-3",
        "/demo/fhir/Observation?subject=Patient/demo-crs-3",
    ] {
        assert_eq!(app.get(path).await.status(), 404, "{path}");
    }
    app.stop().await;
}

#[test]
fn demo_mode_cannot_be_turned_on_by_a_file_or_the_environment() {
    use std::path::Path;
    let on_file = crs_cds::config::Settings::from_sources(
        Some((Path::new("x.toml"), "[server]\ndemo = true\n")),
        Vec::new(),
    );
    assert!(on_file.is_err(), "no file key");
    let env =
        crs_cds::config::Settings::from_sources(None, vec![("CRS_CDS_DEMO".into(), "true".into())]);
    assert!(env.is_err(), "no environment variable");
    assert!(!crs_cds::config::Settings::defaults().demo);
}

#[test]
fn only_the_cli_and_the_startup_reach_the_demo_module() {
    // The production path never depends on demo data: `crate::demo` is named only where
    // `serve --demo` mounts it.
    let mut offenders = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                if !path.ends_with("demo") {
                    stack.push(path);
                }
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let allowed = [
                "src/cli.rs",
                "src/lib.rs",
                "src/http/startup.rs",
                "src/http/routes/landing.rs",
            ];
            if text.contains("demo::") && !allowed.iter().any(|a| path.ends_with(a)) {
                offenders.push(path.display().to_string());
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:?}");
}
