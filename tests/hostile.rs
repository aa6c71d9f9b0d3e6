//! Hostile input (issue 5): every request of the corpus in `tests/hostile/`, plus
//! generated extremes (deep nesting, huge strings and arrays), gets a clear 4xx or a
//! 200 with cards that report the bad data — never a 5xx, a hang or a panic.

use std::path::Path;

use serde_json::Value;

use crate::helpers::{TestApp, spawn_app_with};

fn service_for(body: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(body);
    if text.contains("\"order-select\"") {
        "cart-toxicity-order-select"
    } else if text.contains("\"order-sign\"") {
        "cart-toxicity-order-sign"
    } else {
        "crs-icans-grading"
    }
}

async fn post(app: &TestApp, service: &str, body: Vec<u8>) -> (u16, String) {
    let r = app
        .client
        .post(format!("{}/cds-services/{service}", app.address))
        .header("Content-Type", "application/json")
        .header("X-CRS-CDS-Evaluation-Time", "2026-11-23T12:00:00Z")
        .body(body)
        .send()
        .await
        .expect("the service answers");
    let status = r.status().as_u16();
    (status, r.text().await.expect("a body"))
}

/// A 4xx must explain itself; a 200 must be a card list.
fn assert_clear(case: &str, status: u16, body: &str) {
    assert!(status < 500, "{case}: {status} {body}");
    let json: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{case}: body is not JSON ({e}): {body}"));
    match status {
        200 => assert!(json["cards"].is_array(), "{case}: {body}"),
        412 => assert_eq!(json["resourceType"], "OperationOutcome", "{case}"),
        400..=499 => assert!(
            json["error"].is_string() && json["detail"].is_string(),
            "{case}: {body}"
        ),
        other => panic!("{case}: unexpected status {other}"),
    }
}

#[tokio::test]
async fn every_hostile_request_gets_a_clear_answer_never_a_server_error() {
    let app = spawn_app_with(|s| s.grading.allow_time_override = true).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 25, "the corpus shrank");
    for path in files {
        let case = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let body = std::fs::read(&path).expect("readable");
        let service = if case == "patient-view-on-order-service" {
            "cart-toxicity-order-sign"
        } else {
            service_for(&body)
        };
        let (status, text) = post(&app, service, body).await;
        assert_clear(&case, status, &text);
    }
    // The service is still up.
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn absurd_values_are_reported_on_the_card_not_graded() {
    let app = spawn_app_with(|s| s.grading.allow_time_override = true).await;
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/absurd-values.json"),
    )
    .expect("file");
    let (status, text) = post(&app, "crs-icans-grading", body).await;
    assert_eq!(status, 200, "{text}");
    let json: Value = serde_json::from_str(&text).expect("JSON");
    let ext = &json["cards"][0]["extension"]["org.crs-cds"];
    // A 60 C reading is not a fever and an ICE score of 40 is not a score: both are
    // unusable, so CRS and ICANS can't be graded, and the cards say why.
    assert_eq!(ext["crsGrade"], Value::Null, "{text}");
    assert_eq!(ext["icansGrade"], Value::Null, "{text}");
    assert!(text.contains("temperature 60 is outside"), "{text}");
    assert!(text.contains("ICE score 40 is outside"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn generated_extremes_are_refused_or_answered_cleanly() {
    let app = spawn_app_with(|s| {
        s.grading.allow_time_override = true;
        s.server.max_body_bytes = 1024 * 1024;
    })
    .await;
    let head = r#"{"hook":"patient-view","hookInstance":"d1577c69-dfbe-44ad-ba6d-3e05e953b2ea","context":{"userId":"Practitioner/1","patientId":"p1"},"prefetch":{"vitals":"#;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("deep nesting", format!("{}{}{}", head, "[".repeat(50_000), "]".repeat(50_000)).into_bytes()),
        ("deep object nesting", format!("{}{}1{}}}}}", head, "{\"a\":".repeat(20_000), "}".repeat(20_000)).into_bytes()),
        ("huge string over the limit", format!("{head}\"{}\"}}}}", "x".repeat(2 * 1024 * 1024)).into_bytes()),
        ("huge string under the limit", format!("{head}\"{}\"}}}}", "x".repeat(900_000)).into_bytes()),
        ("huge array", format!("{head}{{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[{}]}}}}}}", vec!["{}"; 200_000].join(",")).into_bytes()),
        ("many prefetch keys", format!("{{\"hook\":\"patient-view\",\"hookInstance\":\"d1577c69-dfbe-44ad-ba6d-3e05e953b2ea\",\"context\":{{\"patientId\":\"p1\"}},\"prefetch\":{{{}}}}}", (0..20_000).map(|i| format!("\"k{i}\":null")).collect::<Vec<_>>().join(",")).into_bytes()),
    ];
    for (case, body) in cases {
        let (status, text) = post(&app, "crs-icans-grading", body).await;
        if case == "huge string over the limit" {
            assert_eq!(status, 413, "{case}");
        }
        assert_clear(case, status, &text);
    }
    app.stop().await;
}

/// Found by `cargo fuzz`: fhirbolt 0.4.0's compatibility mode loops forever on an
/// unknown element holding an array. The adapter drops such elements, says so, and
/// still reads the resource.
#[tokio::test]
async fn unknown_array_elements_are_dropped_and_reported_not_hung_on() {
    let app = spawn_app_with(|s| s.grading.allow_time_override = true).await;
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/unknown-array-elements.json"),
    )
    .expect("file");
    let (status, text) = post(&app, "crs-icans-grading", body).await;
    assert_eq!(status, 200, "{text}");
    let json: Value = serde_json::from_str(&text).expect("JSON");
    let ext = &json["cards"][0]["extension"]["org.crs-cds"];
    assert!(
        ext["evidence"].to_string().contains("temperature 38.6"),
        "{text}"
    );
    assert!(
        text.contains("elements unknown to FHIR R4 ignored"),
        "{text}"
    );
    app.stop().await;
}
