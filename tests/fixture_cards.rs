//! Every fixture request through the running service: the cards' `org.crs-cds`
//! extension matches the hand-derived expectation, and every card carries the fields
//! the CDS Hooks contract promises (issue 4, "Cards").

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::spawn_app_with;

fn service_for(hook: &str) -> &'static str {
    match hook {
        "patient-view" => "crs-icans-grading",
        "order-select" => "cart-toxicity-order-select",
        _ => "cart-toxicity-order-sign",
    }
}

/// The card fields every card must have, whatever the case.
fn assert_card_contract(case: &str, card: &Value) {
    let uuid = card["uuid"]
        .as_str()
        .unwrap_or_else(|| panic!("{case}: uuid"));
    assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{case}: uuid {uuid}");
    let summary = card["summary"]
        .as_str()
        .unwrap_or_else(|| panic!("{case}: summary"));
    assert!(
        summary.chars().count() < 140,
        "{case}: summary too long: {summary}"
    );
    let indicator = card["indicator"]
        .as_str()
        .unwrap_or_else(|| panic!("{case}: indicator"));
    assert!(
        ["info", "warning", "critical"].contains(&indicator),
        "{case}: {indicator}"
    );
    assert!(card["source"]["label"].is_string(), "{case}: source.label");
    assert!(card["source"]["url"].is_string(), "{case}: source.url");
    assert!(
        card["source"]["topic"]["code"].is_string(),
        "{case}: source.topic"
    );
    let detail = card["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("{case}: detail"));
    assert!(
        detail.contains("doi:10.1016/j.bbmt.2018.12.758"),
        "{case}: references in detail"
    );
    let ext = &card["extension"]["org.crs-cds"];
    for key in ["crsGrade", "icansGrade", "flags", "evidence", "missing"] {
        assert!(ext.get(key).is_some(), "{case}: extension lacks {key}");
    }
    for e in ext["evidence"].as_array().into_iter().flatten() {
        assert!(
            e["finding"].is_string() && e["reference"].is_string() && e["time"].is_string(),
            "{case}: {e}"
        );
    }
    if indicator != "info" && card["extension"]["org.crs-cds"].get("doseCheck").is_some() {
        assert!(
            card["overrideReasons"]
                .as_array()
                .is_some_and(|r| !r.is_empty()),
            "{case}: overrideReasons"
        );
    }
    if card.get("suggestions").is_some() {
        assert!(
            card["selectionBehavior"].is_string(),
            "{case}: selectionBehavior"
        );
    }
}

/// RULES.md §7 S14: what a clinician reads (summary, detail, suggestion labels) uses
/// clinical units, and carries no UCUM-only spellings, resource ids or internal rule ids
/// (those belong in the extension).
fn assert_clinician_text(case: &str, card: &Value) {
    let mut text = format!(
        "{}\n{}",
        card["summary"].as_str().unwrap_or_default(),
        card["detail"].as_str().unwrap_or_default()
    );
    for s in card["suggestions"].as_array().into_iter().flatten() {
        text.push('\n');
        text.push_str(s["label"].as_str().unwrap_or_default());
    }
    let mut banned = vec![
        " Cel", "mm[Hg]", "[degF]", "[lb_av]", "RULES ", "RULES.md", "6-U", "SEED-",
    ];
    // The data-quality card may name the unusable resource (FHIR-INPUTS "Medication
    // identity": "medication of MedicationAdministration/x could not be identified").
    if card["source"]["topic"]["code"] != "data-quality" {
        banned.extend([
            "Observation/",
            "MedicationAdministration/",
            "MedicationRequest/",
            "Procedure/",
        ]);
    }
    for bad in banned {
        assert!(
            !text.contains(bad),
            "{case}: card text shows {bad:?} to clinicians: {text}"
        );
    }
}

/// The grading card's indicator follows the worse grade: 0-1 info, 2 warning, 3-4
/// critical.
fn expected_indicator(crs: &Value, icans: &Value) -> Option<&'static str> {
    let worst = crs.as_u64().max(icans.as_u64())?;
    Some(match worst {
        0 | 1 => "info",
        2 => "warning",
        _ => "critical",
    })
}

#[tokio::test]
async fn every_fixture_request_gets_cards_matching_its_expected_extension() {
    let app = spawn_app_with(|s| s.grading.allow_time_override = true).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut cases = 0;
    let mut entries: Vec<_> = std::fs::read_dir(root.join("requests"))
        .expect("fixtures/requests")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let case = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file name")
            .to_string();
        let request: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON");
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("expected").join(format!("{case}.json")))
                .expect("expected file"),
        )
        .expect("JSON");
        let hook = request["hook"].as_str().expect("hook");
        let response = app
            .client
            .post(format!(
                "{}/cds-services/{}",
                app.address,
                service_for(hook)
            ))
            .header(
                "X-CRS-CDS-Evaluation-Time",
                expected["at"].as_str().expect("at"),
            )
            .json(&request)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "{case}");
        let body: Value = response.json().await.expect("JSON body");
        let cards = body["cards"]
            .as_array()
            .unwrap_or_else(|| panic!("{case}: cards"));
        if expected["hasInfusion"] == false {
            assert!(
                cards.is_empty(),
                "{case}: a patient without CAR-T gets no cards"
            );
            cases += 1;
            continue;
        }
        assert!(!cards.is_empty(), "{case}: cards expected");
        for card in cards {
            assert_card_contract(&case, card);
            assert_clinician_text(&case, card);
        }
        let want_dose = expected.get("doseCheck").is_some();
        let actual = crs_cds::cli::pick_extension(&body, want_dose);
        let mut compared = expected.clone();
        if let Some(o) = compared.as_object_mut() {
            for k in ["at", "why", "hasInfusion"] {
                o.remove(k);
            }
        }
        assert!(
            crs_cds::cli::subset_matches(&compared, &actual),
            "{case}: expected {compared:#}\nactual {actual:#}"
        );
        if hook == "patient-view" {
            let grading = &cards[0];
            let ext = &grading["extension"]["org.crs-cds"];
            if let Some(ind) = expected_indicator(&ext["crsGrade"], &ext["icansGrade"]) {
                assert_eq!(grading["indicator"], ind, "{case}: grading card indicator");
            }
            // RULES.md §7 S13: only definite grades are offered for recording.
            let definite = |grade: &Value, lower: &Value| !grade.is_null() && lower != &json!(true);
            let mut want = Vec::new();
            if definite(&ext["crsGrade"], &ext["crsGradeIsLowerBound"]) {
                want.push("crs-grade");
            }
            if definite(&ext["icansGrade"], &ext["icansGradeIsLowerBound"]) {
                want.push("icans-grade");
            }
            let codes: Vec<&str> = grading["suggestions"][0]["actions"]
                .as_array()
                .map(|actions| {
                    actions
                        .iter()
                        .filter_map(|a| a["resource"]["code"]["coding"][0]["code"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(codes, want, "{case}: grade Observations suggested");
        }
        cases += 1;
    }
    assert!(cases >= 30, "only {cases} fixtures ran");
    app.stop().await;
}

#[tokio::test]
async fn replay_of_the_fixtures_against_the_service_passes() {
    let app = spawn_app_with(|s| s.grading.allow_time_override = true).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let code = crs_cds::cli::replay(&root, &app.address, None)
        .await
        .expect("replay runs");
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    app.stop().await;
}

/// Every text a clinician reads on the cards: summaries, details and suggestion labels.
fn card_text(cards: &[Value]) -> String {
    let mut text = String::new();
    for card in cards {
        for part in [&card["summary"], &card["detail"]] {
            text.push_str(part.as_str().unwrap_or_default());
            text.push('\n');
        }
        for s in card["suggestions"].as_array().into_iter().flatten() {
            text.push_str(s["label"].as_str().unwrap_or_default());
            text.push('\n');
        }
    }
    text
}

/// The MedicationRequests that the cards' suggestions create or update, with the lower-case
/// medication text (display and text joined).
fn suggested_orders(cards: &[Value]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for card in cards {
        for s in card["suggestions"].as_array().into_iter().flatten() {
            for a in s["actions"].as_array().into_iter().flatten() {
                let r = &a["resource"];
                if r["resourceType"] == "MedicationRequest"
                    && (a["type"] == "create" || a["type"] == "update")
                {
                    let m = &r["medicationCodeableConcept"];
                    let mut name = m["text"].as_str().unwrap_or_default().to_lowercase();
                    for c in m["coding"].as_array().into_iter().flatten() {
                        name.push(' ');
                        name.push_str(&c["display"].as_str().unwrap_or_default().to_lowercase());
                    }
                    out.push((name, r.clone()));
                }
            }
        }
    }
    out
}

fn dose_mg(order: &Value) -> Option<f64> {
    let q = &order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"];
    (q["code"] == "mg").then(|| q["value"].as_f64()).flatten()
}

/// Card-level checks of `fixtures/cards/<case>.json` (fixtures/README.md "Card checks"):
/// texts present or absent, indicators, suggested doses, and that no suggestion is flagged
/// by the service's own dose check when sent back through order-select (RULES.md §7 S9).
#[tokio::test]
async fn every_card_check_file_holds_through_the_service() {
    let app = spawn_app_with(|s| s.grading.allow_time_override = true).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files: Vec<_> = std::fs::read_dir(root.join("cards"))
        .expect("fixtures/cards")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let post = |hook: &str, at: &str, request: &Value| {
        app.client
            .post(format!(
                "{}/cds-services/{}",
                app.address,
                service_for(hook)
            ))
            .header("X-CRS-CDS-Evaluation-Time", at.to_string())
            .json(request)
            .send()
    };
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in &files {
        let case = path.file_stem().and_then(|s| s.to_str()).expect("name");
        let read = |p: std::path::PathBuf| -> Value {
            serde_json::from_str(&std::fs::read_to_string(&p).expect("readable")).expect("JSON")
        };
        let checks = read(path.clone());
        let request = read(root.join("requests").join(format!("{case}.json")));
        let expected = read(root.join("expected").join(format!("{case}.json")));
        let at = expected["at"].as_str().expect("at");
        let hook = request["hook"].as_str().expect("hook");
        let body: Value = post(hook, at, &request)
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        let cards = body["cards"].as_array().cloned().unwrap_or_default();
        let text = card_text(&cards);
        let lower = text.to_lowercase();
        let mut fail = |what: String| failures.push(format!("{case}: {what}"));
        for s in checks["contains"].as_array().into_iter().flatten() {
            let s = s.as_str().expect("string");
            if !lower.contains(&s.to_lowercase()) {
                fail(format!("no card says {s:?}"));
            }
        }
        for s in checks["lacks"].as_array().into_iter().flatten() {
            let s = s.as_str().expect("string");
            if lower.contains(&s.to_lowercase()) {
                fail(format!("a card says {s:?}"));
            }
        }
        if let Some(want) = checks.get("doseCardIndicator") {
            let got = cards
                .iter()
                .find(|c| c["extension"]["org.crs-cds"].get("doseCheck").is_some())
                .map(|c| c["indicator"].clone());
            if got.as_ref() != Some(want) {
                fail(format!("dose card indicator {got:?}, expected {want}"));
            }
        }
        for (summary, want) in checks["cardIndicators"].as_object().into_iter().flatten() {
            let got = cards
                .iter()
                .find(|c| {
                    c["summary"]
                        .as_str()
                        .is_some_and(|s| s.to_lowercase().contains(&summary.to_lowercase()))
                })
                .map(|c| c["indicator"].clone());
            if got.as_ref() != Some(want) {
                fail(format!(
                    "card {summary:?}: indicator {got:?}, expected {want}"
                ));
            }
        }
        let orders = suggested_orders(&cards);
        if checks["noDoseSuggestion"] == true
            && let Some((name, _)) = orders.iter().find(|(n, _)| n.contains("tocilizumab"))
        {
            fail(format!("a suggestion orders {name}"));
        }
        for (drug, mg) in checks["suggestedMg"].as_object().into_iter().flatten() {
            let doses: Vec<Option<f64>> = orders
                .iter()
                .filter(|(n, _)| n.contains(drug.as_str()))
                .map(|(_, o)| dose_mg(o))
                .collect();
            // `null`: no suggestion orders this drug.
            let want: Vec<Option<f64>> = mg.as_f64().map(Some).into_iter().collect();
            if doses != want {
                fail(format!(
                    "suggested {drug} doses {doses:?}, expected {want:?}"
                ));
            }
        }
        if checks["createBeforeDelete"] == true {
            // RULES.md §7 S9: in a replace suggestion `create` comes before `delete`.
            let mut replaces = 0;
            for card in &cards {
                for s in card["suggestions"].as_array().into_iter().flatten() {
                    let kinds: Vec<&str> = s["actions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a["type"].as_str())
                        .collect();
                    if kinds.contains(&"delete") {
                        replaces += 1;
                        if kinds.first() != Some(&"create") {
                            fail(format!("replace suggestion actions {kinds:?}"));
                        }
                    }
                }
            }
            if replaces == 0 {
                fail("no replace suggestion".into());
            }
        }
        for drug in checks["onlyConsidered"].as_array().into_iter().flatten() {
            // RULES.md §7 S2: a drug whose flag is not set appears only as a "consider"
            // (or conditional "if ...") line on the grading card, never as an instruction.
            let drug = drug.as_str().expect("string");
            let ext = &cards[0]["extension"]["org.crs-cds"];
            for r in ext["recommendations"].as_array().into_iter().flatten() {
                let l = r["text"].as_str().unwrap_or_default().to_lowercase();
                if l.contains(drug) && !(l.contains("consider") || l.contains("if ")) {
                    fail(format!("{drug} as an instruction: {l:?}"));
                }
            }
        }
        if checks["tocilizumabOnlyConsidered"] == true {
            // RULES.md §7 S2: at CRS 1 tocilizumab appears only as a "consider" line.
            let ext = &cards[0]["extension"]["org.crs-cds"];
            let mut named = 0;
            for r in ext["recommendations"].as_array().into_iter().flatten() {
                let l = r["text"].as_str().unwrap_or_default().to_lowercase();
                if l.contains("tocilizumab") {
                    named += 1;
                    if !l.contains("consider") {
                        fail(format!("tocilizumab as an instruction: {l:?}"));
                    }
                }
            }
            if named == 0 {
                fail("no 'consider tocilizumab' line".into());
            }
        }
        if checks["noTocilizumabAdvice"] == true {
            // RULES.md §7 S1/S2: no action line recommends or suggests tocilizumab; the
            // only line naming it is the "not recommended" reason.
            let ext = &cards[0]["extension"]["org.crs-cds"];
            let mut lines: Vec<String> = ext["recommendations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["text"].as_str().map(str::to_string))
                .collect();
            lines.extend(
                cards[0]["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string),
            );
            for line in &lines {
                let l = line.to_lowercase();
                if l.contains("tocilizumab") && !l.contains("tocilizumab not recommended") {
                    fail(format!("grading card line names tocilizumab: {line:?}"));
                }
            }
            if orders.iter().any(|(n, _)| n.contains("tocilizumab")) {
                fail("a suggestion orders tocilizumab".into());
            }
        }
        if checks["suggestionsPassDoseCheck"] == true {
            if orders.is_empty() {
                fail("no suggested order to send back".into());
            }
            for (i, (name, order)) in orders.iter().enumerate() {
                let mut order = order.clone();
                order["id"] = json!(format!("suggested-{i}"));
                order["status"] = json!("draft");
                let mut back = request.clone();
                back["hook"] = json!("order-select");
                back["context"]["draftOrders"] = json!({
                    "resourceType": "Bundle", "type": "collection",
                    "entry": [{ "resource": order }]
                });
                back["context"]["selections"] = json!([format!("MedicationRequest/suggested-{i}")]);
                let answer: Value = post("order-select", at, &back)
                    .await
                    .expect("sent")
                    .json()
                    .await
                    .expect("JSON");
                let ext = crs_cds::cli::pick_extension(&answer, true);
                let issues = &ext["doseCheck"]["issues"];
                if !issues.is_array() {
                    fail(format!("the suggested {name} got no dose check: {ext}"));
                } else if issues
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|i| i == "exceeds-max" || i == "dose-unreadable")
                {
                    fail(format!(
                        "the suggested {name} is flagged by the service: {issues}"
                    ));
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} card-check files");
    app.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
