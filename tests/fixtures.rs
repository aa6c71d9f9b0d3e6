//! Data-driven engine tests: every `fixtures/requests/<case>.json` (a CDS Hooks request)
//! runs through adapter → domain → protocol, and the `org.crs-cds` extension is compared
//! with `fixtures/expected/<case>.json` by subset: every key present in the expected file
//! must equal the actual value; absent keys are not compared. Expected values are derived
//! by hand from RULES.md (see fixtures/README.md); there is deliberately no way to
//! rewrite them from the engine's output.

use std::path::{Path, PathBuf};

use crs_cds::adapter::{Document, Terminology, map_documents};
use crs_cds::domain::{Policy, Timestamp, assess};
use crs_cds::protocol::extension;
use serde_json::Value;

/// Keys of the expected file that are not part of the extension.
const META_KEYS: [&str; 3] = ["at", "why", "hasInfusion"];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs one case; `Err` describes every difference.
fn check(case: &str) -> Result<(), String> {
    let dir = fixtures_dir();
    let request = read_json(&dir.join("requests").join(format!("{case}.json")))?;
    let expected = read_json(&dir.join("expected").join(format!("{case}.json")))?;

    let at = expected["at"]
        .as_str()
        .ok_or("expected file has no \"at\"")?;
    let now = chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| Timestamp(t.timestamp_millis()))
        .map_err(|e| format!("bad \"at\": {e}"))?;

    let mut texts: Vec<(String, String)> = Vec::new();
    if let Some(prefetch) = request["prefetch"].as_object() {
        for (key, value) in prefetch {
            if !value.is_null() {
                texts.push((key.clone(), value.to_string()));
            }
        }
    }
    let documents: Vec<Document<'_>> = texts
        .iter()
        .map(|(origin, json)| Document { origin, json })
        .collect();
    let draft_text = request["context"].get("draftOrders").map(Value::to_string);
    let draft = draft_text.as_deref().map(|json| Document {
        origin: "draftOrders",
        json,
    });
    let selections: Vec<String> = request["context"]["selections"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();

    let mapped = map_documents(
        &documents,
        draft,
        &selections,
        now,
        &Terminology::embedded(),
    );
    let mut diffs = Vec::new();
    if let Some(want) = expected.get("hasInfusion").and_then(Value::as_bool)
        && want != mapped.has_infusion()
    {
        diffs.push(format!(
            "hasInfusion: expected {want}, got {}",
            mapped.has_infusion()
        ));
    }
    if mapped.has_infusion() {
        let assessment = assess(&mapped.facts, &mapped.orders, now, &Policy::default());
        let actual = extension(&assessment, assessment.dose_checks.first());
        for (key, want) in expected.as_object().into_iter().flatten() {
            if META_KEYS.contains(&key.as_str()) {
                continue;
            }
            let got = actual.get(key).unwrap_or(&Value::Null);
            if got != want {
                diffs.push(format!("{key}: expected {want}, got {got}"));
            }
        }
        if !diffs.is_empty() {
            diffs.push(format!("adapter issues: {:?}", mapped.issues));
            diffs.push(format!("missing: {}", actual["missing"]));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n    "))
    }
}

#[test]
fn every_fixture_request_grades_as_its_expected_file_says() {
    let dir = fixtures_dir().join("requests");
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_suffix(".json")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    cases.sort();
    assert!(
        cases.len() >= 30,
        "expected the fixture cases in {}",
        dir.display()
    );
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| check(case).err().map(|e| format!("case {case}:\n    {e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
