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

fn fixture_dir(cases: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("requests")).expect("dir");
    std::fs::create_dir_all(dir.path().join("expected")).expect("dir");
    for (name, request, expected) in cases {
        std::fs::write(dir.path().join(format!("requests/{name}.json")), request).expect("written");
        std::fs::write(dir.path().join(format!("expected/{name}.json")), expected)
            .expect("written");
    }
    dir
}

const PV: &str = r#"{"hook":"patient-view","hookInstance":"a","context":{"patientId":"p"}}"#;

#[test]
fn replay_against_nothing_listening_stops_at_the_first_case_with_one_message() {
    let dir = fixture_dir(&[
        ("a", PV, r#"{"crsGrade":1}"#),
        ("b", PV, r#"{"crsGrade":1}"#),
        ("c", PV, r#"{"crsGrade":1}"#),
    ]);
    // Nothing listens on port 9.
    let out = bin()
        .arg("replay")
        .arg(dir.path())
        .args(["--server", "http://127.0.0.1:9"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("cannot reach").count(), 1, "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("stopped at a: 0 passed, 0 failed, 3 not run"),
        "{stdout}"
    );
}

#[test]
fn replay_with_a_bad_server_url_exits_2() {
    let dir = fixture_dir(&[("a", PV, r#"{"crsGrade":1}"#)]);
    for url in ["not a url", "ftp://127.0.0.1:8080", "127.0.0.1:8080"] {
        let out = bin()
            .arg("replay")
            .arg(dir.path())
            .args(["--server", url])
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn replay_of_a_missing_directory_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    for path in [dir.path().join("nowhere"), dir.path().to_path_buf()] {
        let out = bin()
            .arg("replay")
            .arg(&path)
            .args(["--server", "http://127.0.0.1:9"])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{}", path.display());
        assert!(String::from_utf8_lossy(&out.stderr).contains("requests"));
    }
}

#[test]
fn grade_of_a_missing_file_exits_2() {
    let out = bin()
        .args(["grade", "/nonexistent/crs-cds/bundle.json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/requests")
        .join(name)
}

#[test]
fn grade_with_a_bad_at_exits_2() {
    let out = bin()
        .args(["grade", "--at", "yesterday"])
        .arg(fixture("crs-1-fever-only.json"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
}

#[test]
fn grade_of_json_that_is_not_an_object_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, text) in ["[1,2]", "42", "\"Bundle\"", "null"].iter().enumerate() {
        let file = dir.path().join(format!("{i}.json"));
        std::fs::write(&file, text).expect("written");
        let out = bin().arg("grade").arg(&file).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{text}");
    }
}

#[test]
fn grade_runs_with_a_serve_only_setting_that_serve_would_refuse() {
    let out = bin()
        .env("CRS_CDS_BIND", "0.0.0.0:8080")
        .args(["grade", "--json", "--at", "2026-11-23T12:00:00Z"])
        .arg(fixture("crs-1-fever-only.json"))
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["org.crs-cds"]["crsGrade"], 1);
}

#[test]
fn grade_refuses_a_misspelt_crs_cds_variable_naming_the_right_one() {
    let out = bin()
        .env("CRS_CDS_GRADING_WINDOW_HOUR", "12")
        .args(["grade", "--at", "2026-11-23T12:00:00Z"])
        .arg(fixture("crs-1-fever-only.json"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did you mean CRS_CDS_GRADING_WINDOW_HOURS?"),
        "{err}"
    );
}

#[test]
fn serve_refuses_a_misspelt_crs_cds_variable_naming_the_right_one() {
    let out = bin()
        .env("CRS_CDS_BIDN", "127.0.0.1:0")
        .arg("serve")
        .output()
        .expect("runs");
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CRS_CDS_BIDN") && err.contains("did you mean CRS_CDS_BIND?"),
        "{err}"
    );
}

#[test]
fn every_subcommand_help_shows_examples() {
    for sub in ["serve", "grade", "replay", "discovery", "healthcheck"] {
        let out = bin().args([sub, "--help"]).output().expect("runs");
        assert!(out.status.success(), "{sub}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Example"), "{sub}: {text}");
        assert!(text.contains(&format!("crs-cds {sub}")), "{sub}: {text}");
    }
}

/// A stand-in CDS service that answers `{"cards": []}` only to `Bearer t0k3n`.
async fn bearer_only_server() -> (String, actix_web::dev::ServerHandle) {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(|| {
        App::new().default_service(web::to(|req: HttpRequest| async move {
            match req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
            {
                Some("Bearer t0k3n") => HttpResponse::Ok().json(serde_json::json!({"cards": []})),
                _ => HttpResponse::Unauthorized().finish(),
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .expect("listening")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_sends_the_bearer_token_and_without_it_says_to_pass_one() {
    let (url, handle) = bearer_only_server().await;
    let dir = fixture_dir(&[
        ("a", PV, r#"{"hasInfusion":false}"#),
        ("b", PV, r#"{"hasInfusion":false}"#),
    ]);
    let path = dir.path().to_path_buf();
    let run = move |bearer: Option<&'static str>| {
        let (path, url) = (path.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            let mut c = bin();
            c.arg("replay").arg(&path).args(["--server", &url]);
            if let Some(b) = bearer {
                c.args(["--bearer", b]);
            }
            c.output().expect("runs")
        })
    };
    let with = run(Some("t0k3n")).await.expect("joined");
    assert_eq!(
        with.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(String::from_utf8_lossy(&with.stdout).contains("2 passed, 0 failed"));
    let without = run(None).await.expect("joined");
    assert_eq!(without.status.code(), Some(1));
    let err = String::from_utf8_lossy(&without.stderr);
    assert_eq!(err.matches("--bearer").count(), 1, "{err}");
    handle.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_stops_at_the_first_case_when_the_server_ignores_the_evaluation_time() {
    // The real service with the override off (its default): pinned fixtures would grade as
    // of now, so replay must stop and name the setting instead of reporting mismatches.
    let app = crate::helpers::spawn_app().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let address = app.address.clone();
    let out = tokio::task::spawn_blocking(move || {
        bin()
            .arg("replay")
            .arg(&root)
            .args(["--server", &address])
            .output()
            .expect("runs")
    })
    .await
    .expect("joined");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("grading.allow_time_override"), "{err}");
    assert!(!err.contains("MISMATCH"), "{err}");
    // The first case in name order, as replay runs them.
    let mut cases: Vec<String> = std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/requests"),
    )
    .expect("fixtures")
    .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(String::from))
    .collect();
    cases.sort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("stopped at {}: 0 passed, 0 failed", cases[0])),
        "{stdout}"
    );
    app.stop().await;
}

#[test]
fn serve_demo_refuses_a_non_loopback_address_even_with_auth_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[server]\nbind = \"0.0.0.0:0\"\npublic_base_url = \"https://cds.example.org\"\n\
         [auth]\nrequired = true\n[[auth.issuers]]\niss = \"https://ehr.example.org\"\n\
         jwks_file = \"ehr.jwks.json\"\n",
    )
    .expect("written");
    let out = bin()
        .args(["serve", "--demo", "--config"])
        .arg(&config)
        .env_remove("CRS_CDS_BIND")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback address only"), "{err}");
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
