use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_crs-cds"))
}

#[test]
fn grade_refuses_a_file_that_is_not_json_with_exit_code_2_and_the_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("broken.json");
    std::fs::write(&file, "{\n  \"resourceType\": \"Bundle\",\n  oops\n}").expect("written");
    let out = bin().arg("grade").arg(&file).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn grade_of_a_bundle_without_cart_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("b.json");
    std::fs::write(
        &file,
        r#"{"resourceType":"Bundle","type":"collection","entry":[]}"#,
    )
    .expect("written");
    let out = bin()
        .args(["grade", "--json", "--at", "2026-03-10T12:00:00Z"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v, serde_json::json!({"cards": []}));
}

#[test]
fn discovery_prints_the_services() {
    let out = bin().arg("discovery").output().expect("runs");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["services"].as_array().map(Vec::len), Some(3));
}

#[test]
fn replay_reports_failures_with_a_non_zero_exit_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("requests")).expect("dir");
    std::fs::create_dir_all(dir.path().join("expected")).expect("dir");
    std::fs::write(
        dir.path().join("requests/a.json"),
        r#"{"hook":"patient-view","hookInstance":"a","context":{"patientId":"p"}}"#,
    )
    .expect("written");
    std::fs::write(dir.path().join("expected/a.json"), r#"{"crsGrade":1}"#).expect("written");
    // Nothing listens on port 9: the case errors and replay fails.
    let out = bin()
        .arg("replay")
        .arg(dir.path())
        .args(["--server", "http://127.0.0.1:9"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 passed, 1 failed"));
}

#[test]
fn grade_shows_the_card_summary_the_weight_and_dose_checks_as_readable_lines() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/requests/toci-30kg-360mg-exceeds.json"
    );
    let out = bin()
        .args(["grade", "--at", "2026-11-23T12:00:00Z", fixture])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "CRS grade 2, ICANS grade 1 (ASTCT) - day 5",
        "Dosing weight              30 kg",
        "[critical] Tocilizumab 360 mg exceeds the maximum of 240 mg per dose",
        "temperature 38.6 °C",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    let out = bin()
        .args(["grade", "--json", "--at", "2026-11-23T12:00:00Z", fixture])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ext = &v["org.crs-cds"];
    assert_eq!(ext["crsGrade"], 2);
    assert_eq!(ext["weight"]["kg"], 30.0);
    let check = &ext["doseChecks"][0];
    assert_eq!(check["indicator"], "critical");
    assert_eq!(check["maxAllowedMg"], 240);
    assert_eq!(
        check["summary"],
        "Tocilizumab 360 mg exceeds the maximum of 240 mg per dose"
    );
}
