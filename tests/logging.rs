use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{captured_logs, empty_bundle, non_cart_prefetch, spawn_app};

#[tokio::test]
async fn logs_never_contain_the_patient_id_or_the_token() {
    let fhir = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_bundle()))
        .mount(&fhir)
        .await;
    let app = spawn_app().await;
    let patient = "PATIENT-SECRET-123";
    let token = "TOKEN-SECRET-456";
    let auth = json!({"access_token": token, "token_type": "Bearer", "expires_in": 300, "scope": "user/*.read", "subject": "crs-cds"});
    let mut prefetch = non_cart_prefetch(patient);
    prefetch.as_object_mut().expect("object").remove("vitals");

    // A good request that makes the service fetch with the token.
    let good = json!({"hook": "patient-view", "hookInstance": "5b9a1c2e-0000-4000-8000-000000000001",
        "fhirServer": fhir.uri(), "fhirAuthorization": auth, "context": {"patientId": patient}, "prefetch": prefetch});
    assert_eq!(app.call("crs-icans-grading", &good).await.status(), 200);
    // Bad requests whose error messages could echo the values.
    let wrong_type = json!({"hook": "patient-view", "hookInstance": patient, "fhirServer": fhir.uri(),
        "fhirAuthorization": auth, "context": {"patientId": patient, "selections": patient}});
    assert_eq!(
        app.call("crs-icans-grading", &wrong_type).await.status(),
        400
    );
    let bad_id = json!({"hook": "patient-view", "hookInstance": token, "context": {"patientId": format!("{patient}/../x")}});
    assert_eq!(app.call("crs-icans-grading", &bad_id).await.status(), 400);
    let deadline = json!({"hook": "patient-view", "hookInstance": "x", "fhirServer": "http://127.0.0.1:9",
        "fhirAuthorization": auth, "context": {"patientId": patient}});
    assert_eq!(app.call("crs-icans-grading", &deadline).await.status(), 412);
    app.stop().await;

    let logs = captured_logs();
    assert!(
        logs.contains("crs-icans-grading"),
        "the request was logged at all"
    );
    assert!(
        logs.contains("5b9a1c2e-0000-4000-8000-000000000001"),
        "hookInstance is logged"
    );
    assert!(!logs.contains(patient), "patient id leaked into the logs");
    assert!(!logs.contains(token), "token leaked into the logs");
}

#[tokio::test]
async fn the_smart_app_never_logs_the_code_state_token_verifier_or_patient() {
    use wiremock::matchers::path;
    let patient = "PATIENT-SMART-789";
    let token = "TOKEN-SMART-0123456789";
    let code = "CODE-SMART-4242";
    let name = "Zyxwvut";
    let ehr = MockServer::start().await;
    let base = ehr.uri();
    Mock::given(method("GET"))
        .and(path("/fhir/.well-known/smart-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "code_challenge_methods_supported": ["S256"],
        })))
        .mount(&ehr)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": token, "token_type": "Bearer", "expires_in": 300,
            "scope": "launch patient/Observation.rs", "patient": patient, "appContext": "course",
        })))
        .mount(&ehr)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/fhir/Patient/{patient}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "resourceType": "Patient", "id": patient, "name": [{"family": name}], "birthDate": "1970-01-01",
        })))
        .mount(&ehr)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_bundle()))
        .mount(&ehr)
        .await;
    let iss = format!("{base}/fhir");
    let allowed = iss.clone();
    let app = crate::helpers::spawn_app_with(move |s| {
        s.server.public_base_url = Some("https://cds.example.org".into());
        s.app.allowed_issuers = vec![allowed];
        s.app.cookie_key = Some(
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
                .to_string()
                .into(),
        );
    })
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let launch = client
        .get(
            reqwest::Url::parse_with_params(
                &format!("{}/app/launch", app.address),
                &[("iss", iss.as_str()), ("launch", "LAUNCH-SMART-1")],
            )
            .expect("a URL"),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(launch.status(), 302);
    let cookie = launch.headers()["set-cookie"]
        .to_str()
        .expect("ASCII")
        .split(';')
        .next()
        .expect("a pair")
        .to_string();
    let authorize =
        reqwest::Url::parse(launch.headers()["location"].to_str().expect("ASCII")).expect("a URL");
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("a state");
    let page = client
        .get(
            reqwest::Url::parse_with_params(
                &format!("{}/app/callback", app.address),
                &[("code", code), ("state", state.as_str())],
            )
            .expect("a URL"),
        )
        .header("Cookie", cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), 200);
    let received = ehr.received_requests().await.expect("recording is on");
    let form = received
        .iter()
        .find(|r| r.url.path() == "/token")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .expect("a token request");
    let verifier = form
        .split('&')
        .find_map(|kv| kv.strip_prefix("code_verifier="))
        .expect("a verifier")
        .to_string();
    assert!(
        received
            .iter()
            .filter(|r| r.url.path().starts_with("/fhir/Observation"))
            .all(|r| r
                .headers
                .get("authorization")
                .is_some_and(|v| v == &format!("Bearer {token}"))),
        "the FHIR reads carry the access token"
    );
    app.stop().await;
    let logs = captured_logs();
    assert!(
        logs.contains("SMART app course shown"),
        "the flow was logged at all"
    );
    for (what, secret) in [
        ("patient id", patient),
        ("patient name", name),
        ("access token", token),
        ("code", code),
        ("state", state.as_str()),
        ("verifier", verifier.as_str()),
        ("launch", "LAUNCH-SMART-1"),
    ] {
        assert!(!logs.contains(secret), "{what} leaked into the logs");
    }
}

/// Lines the `serve` binary writes to stderr, as they come.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (up to a generous guard, not a speed assertion) for a line matching `want`,
/// collecting every line seen into `seen`.
fn wait_for(
    rx: &std::sync::mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    want: impl Fn(&str) -> bool,
) -> Option<String> {
    let guard = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < guard {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            seen.push(line.clone());
            if want(&line) {
                return Some(line);
            }
        }
    }
    None
}

#[tokio::test]
async fn serve_in_json_mode_writes_only_json_lines_with_one_access_line_per_request_and_each_refusal_once()
 {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_crs-cds"))
        .args(["serve", "--bind", "127.0.0.1:0", "--demo"])
        .env("CRS_CDS_LOG_FORMAT", "json")
        .env(
            "CRS_CDS_FEEDBACK_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("f.db").display()),
        )
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let rx = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let listening = wait_for(&rx, &mut seen, |l| l.contains("crs-cds listening"));
    let Some(listening) = listening else {
        let _ = child.kill();
        panic!("no listening line: {seen:?}");
    };
    let v: serde_json::Value =
        serde_json::from_str(&listening).expect("the listening line is JSON");
    let port = v["fields"]["port"].as_u64().expect("the port is logged");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("sent")
            .status(),
        200
    );
    let unknown = client
        .post(format!("{base}/cds-services/nope"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown.status(), 404);
    let malformed = client
        .post(format!("{base}/cds-services/crs-icans-grading"))
        .header("Content-Type", "application/json")
        .body("{oops")
        .send()
        .await
        .expect("sent");
    assert_eq!(malformed.status(), 400);
    // The access line of the last request is the last line these requests produce.
    let last = wait_for(&rx, &mut seen, |l| {
        l.contains("\"message\":\"request\"") && l.contains("\"status\":400")
    });
    let _ = child.kill();
    let _ = child.wait();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("piped"), &mut stdout)
        .expect("stdout");
    assert!(last.is_some(), "no access line for the 400: {seen:#?}");
    assert_eq!(stdout, "", "nothing on stdout");
    let lines: Vec<serde_json::Value> = seen
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    // The start-up warnings (auth off, demo mode) are JSON lines too.
    assert!(lines.iter().any(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("AUTHENTICATION IS OFF"))
    }));
    assert!(lines.iter().any(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("DEMO MODE"))
    }));
    let access: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    assert_eq!(access.len(), 3, "{access:#?}");
    let routes: Vec<(&str, u64)> = access
        .iter()
        .map(|l| {
            (
                l["fields"]["route"].as_str().unwrap_or_default(),
                l["fields"]["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        vec![
            ("/healthz", 200),
            ("/cds-services/{id}", 404),
            ("/cds-services/{id}", 400)
        ]
    );
    for l in &access {
        assert!(
            ["GET", "POST"].contains(&l["fields"]["method"].as_str().unwrap_or_default()),
            "{l}"
        );
        assert!(l["fields"]["latency_ms"].as_f64().is_some(), "{l}");
    }
    let refusals = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request refused")
        .count();
    assert_eq!(refusals, 2, "each refusal is logged once: {lines:#?}");
}

#[test]
fn a_configuration_error_in_json_mode_is_a_json_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crs-cds"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("CRS_CDS_LOG_FORMAT", "json")
        .env("CRS_CDS_BIDN", "x")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(v["level"], "ERROR");
    assert!(
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("did you mean CRS_CDS_BIND?")),
        "{v}"
    );
}

#[tokio::test]
async fn a_patient_id_in_a_request_query_never_reaches_the_logs() {
    let app = crate::helpers::spawn_app_with(|s| s.demo = true).await;
    let secret = "QUERY-PATIENT-789";
    let r = app
        .get(&format!("/demo/fhir/Observation?subject=Patient/{secret}"))
        .await;
    assert_eq!(r.status(), 200);
    let r = app.get(&format!("/cds-services?patient={secret}")).await;
    assert_eq!(r.status(), 200);
    app.stop().await;
    let logs = captured_logs();
    assert!(
        logs.contains("\"route\":\"/demo/fhir\""),
        "the requests were logged"
    );
    assert!(
        !logs.contains(secret),
        "a query's patient id leaked into the logs"
    );
}
