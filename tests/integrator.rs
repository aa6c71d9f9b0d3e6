//! Issue 11, the integrator's view: error bodies, the landing page, the OpenAPI document
//! (validated against the official OpenAPI 3.1 JSON Schema, vendored in tests/openapi/),
//! metrics present from start.

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::{patient_view, spawn_app, spawn_app_with};

const OAS_31_SCHEMA_ID: &str = "https://spec.openapis.org/oas/3.1/schema/2022-10-07";

fn openapi_doc() -> Value {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json"))
            .expect("docs/openapi.json");
    serde_json::from_str(&text).expect("docs/openapi.json is JSON")
}

fn oas_31_errors(doc: &Value) -> Option<String> {
    let schema: Value =
        serde_json::from_str(include_str!("openapi/oas-3.1-schema-2022-10-07.json"))
            .expect("the vendored schema is JSON");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource(OAS_31_SCHEMA_ID, schema)
        .expect("added");
    let index = compiler
        .compile(OAS_31_SCHEMA_ID, &mut schemas)
        .expect("the OpenAPI 3.1 schema compiles");
    schemas.validate(doc, index).err().map(|e| format!("{e:#}"))
}

#[test]
fn the_openapi_document_is_valid_against_the_official_openapi_3_1_schema() {
    let doc = openapi_doc();
    assert_eq!(oas_31_errors(&doc), None);
    // The validator does reject: the same document without `info`, or with a bad version.
    let mut broken = doc.clone();
    broken.as_object_mut().expect("object").remove("info");
    assert!(
        oas_31_errors(&broken).is_some(),
        "a document without info is refused"
    );
    let mut broken = doc;
    broken["openapi"] = json!("3.0.3");
    assert!(oas_31_errors(&broken).is_some(), "a 3.0 version is refused");
}

#[test]
fn the_openapi_document_describes_the_org_crs_cds_extension() {
    let doc = openapi_doc();
    let ext = &doc["components"]["schemas"]["CrsCdsExtension"]["properties"];
    for field in [
        "crsGrade",
        "icansGrade",
        "flags",
        "evidence",
        "missing",
        "doseCheck",
    ] {
        assert!(ext.get(field).is_some(), "{field}");
    }
    assert_eq!(
        doc["components"]["schemas"]["Card"]["properties"]["extension"]["properties"]["org.crs-cds"]
            ["$ref"],
        "#/components/schemas/CrsCdsExtension"
    );
}

/// Literal `.route("…")` paths in a source file.
fn route_literals(file: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).expect("source");
    text.match_indices(".route(")
        .filter_map(|(i, m)| {
            let rest = text[i + m.len()..].trim_start().strip_prefix('"')?;
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

#[test]
fn every_route_the_service_registers_is_in_the_openapi_document() {
    let doc = openapi_doc();
    let paths = doc["paths"].as_object().expect("paths");
    let mut served: Vec<String> = route_literals("src/http/startup.rs")
        .into_iter()
        .map(|r| {
            if r.is_empty() || r.starts_with("/{id}") {
                format!("/cds-services{r}")
            } else {
                r
            }
        })
        .collect();
    served.extend(
        route_literals("src/demo/mod.rs")
            .into_iter()
            .map(|r| format!("/demo/fhir{r}")),
    );
    // The SMART app and the demo authorization server and EHR (issue 13).
    for (file, prefix) in [
        ("src/http/routes/app.rs", "/app"),
        ("src/demo/auth.rs", "/demo/auth"),
        ("src/demo/ehr.rs", "/demo/ehr"),
    ] {
        served.extend(
            route_literals(file)
                .into_iter()
                .map(|r| format!("{prefix}{r}")),
        );
    }
    assert!(served.len() >= 12, "{served:?}");
    assert!(served.contains(&"/app/callback".to_string()), "{served:?}");
    assert!(
        served.contains(&"/bench/naive-fhirbolt".to_string()),
        "{served:?}"
    );
    for route in served {
        assert!(paths.contains_key(&route), "{route} is not documented");
    }
}

#[tokio::test]
async fn every_documented_path_is_served_and_the_served_document_is_the_one_in_docs() {
    let app = spawn_app_with(|s| {
        s.demo = true;
        s.server.bench_endpoints = true;
    })
    .await;
    let doc = openapi_doc();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let concrete = if path.starts_with("/demo/fhir") {
            path.replace("{type}", "Patient")
                .replace("{id}", "demo-crs-0")
        } else {
            path.replace("{id}", "crs-icans-grading")
        };
        for method in item.as_object().expect("path item").keys() {
            let url = format!("{}{concrete}", app.address);
            let response = match method.as_str() {
                "get" => app.client.get(&url).send().await,
                "post" => app.client.post(&url).json(&json!({})).send().await,
                other => panic!("undocumented method handling for {other}"),
            }
            .expect("sent");
            let status = response.status().as_u16();
            assert!(
                status != 404 && status != 405,
                "{method} {concrete}: {status}"
            );
        }
    }
    let served: Value = app.get("/openapi.json").await.json().await.expect("JSON");
    assert_eq!(served, doc);
    app.stop().await;
}

fn assert_error_body(what: &str, status: u16, body: &Value, error: &str) {
    assert_eq!(body["resourceType"], "OperationOutcome", "{what}: {body}");
    let issue = &body["issue"][0];
    let severity = if status >= 500 { "fatal" } else { "error" };
    assert_eq!(issue["severity"], severity, "{what}: {body}");
    assert!(
        issue["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{what}: {body}"
    );
    assert_eq!(body["error"], error, "{what}: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: {body}"
    );
    assert_eq!(issue["diagnostics"], body["detail"], "{what}: {body}");
}

#[tokio::test]
async fn every_error_answer_is_an_operation_outcome_with_the_2_0_1_error_and_detail_fields() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 2048).await;
    let cases: Vec<(&str, reqwest::Response, u16, &str)> = vec![
        (
            "malformed JSON",
            app.call_raw("crs-icans-grading", "{not json").await,
            400,
            "malformed-request",
        ),
        (
            "missing hookInstance",
            app.call(
                "crs-icans-grading",
                &json!({"hook": "patient-view", "context": {"patientId": "p"}}),
            )
            .await,
            400,
            "missing-field",
        ),
        (
            "unknown service",
            app.call("nope", &patient_view("p", None)).await,
            404,
            "unknown-service",
        ),
        ("unknown route", app.get("/nowhere").await, 404, "not-found"),
        (
            "GET on a service",
            app.get("/cds-services/crs-icans-grading").await,
            404,
            "not-found",
        ),
        (
            "too large",
            app.call_raw("crs-icans-grading", "x".repeat(4096)).await,
            413,
            "payload-too-large",
        ),
        (
            "no data",
            app.call("crs-icans-grading", &patient_view("p", None))
                .await,
            412,
            "precondition-failed",
        ),
    ];
    for (what, response, status, error) in cases {
        assert_eq!(response.status().as_u16(), status, "{what}");
        let body: Value = response.json().await.expect("a JSON body");
        assert_error_body(what, status, &body, error);
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unauthenticated_call_gets_401_with_an_operation_outcome_and_no_reason() {
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1", "use": "sig", "alg": "ES384",
        "x": "2LmkoBghi2l_qc1zt1DN6gfgiq3g6xEMS0DPiI1v3o6OuIqaKd4o2_nTOUNG6U23",
        "y": "LcAroM9B8l6aFTy3uP8iHcb4xers2zxqi_fjv5SREEK--JCCpz_kl270PBH90KVx"}]});
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks.to_string()).expect("written");
    let app = spawn_app_with(move |s| {
        s.server.public_base_url = Some("https://cds.example.org".into());
        s.auth.required = true;
        s.auth.issuers = vec![crs_cds::auth::IssuerSettings::with_jwks_file(
            "https://ehr.example.org",
            path,
        )];
    })
    .await;
    let response = app
        .call("crs-icans-grading", &patient_view("p", None))
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response
            .headers()
            .get("WWW-Authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let body: Value = response.json().await.expect("a JSON body");
    assert_error_body("401", 401, &body, "unauthorized");
    assert!(
        !body.to_string().contains("missing"),
        "no reason is given: {body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_landing_page_lists_the_services_and_links_and_the_demo_only_in_demo_mode() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/html"))
    );
    let html = response.text().await.expect("text");
    for s in [
        "crs-icans-grading",
        "cart-toxicity-order-select",
        "cart-toxicity-order-sign",
        "patient-view",
        "order-select",
        "order-sign",
        "href=\"/cds-services\"",
        "href=\"/openapi.json\"",
        "href=\"/healthz\"",
        "href=\"/metrics\"",
    ] {
        assert!(html.contains(s), "{s}");
    }
    assert!(
        !html.contains("/demo/fhir"),
        "no demo instructions outside demo mode"
    );
    app.stop().await;

    let app = spawn_app_with(|s| s.demo = true).await;
    let html = app.get("/").await.text().await.expect("text");
    assert!(
        html.contains(&format!("{}/demo/fhir", app.address)),
        "the demo FHIR URL"
    );
    assert!(html.contains("CDS Hooks Sandbox"));
    for p in crs_cds::demo::PATIENTS {
        assert!(html.contains(p.id), "{}", p.id);
    }
    app.stop().await;
}

#[tokio::test]
async fn every_documented_metric_family_is_present_before_the_first_call() {
    let app = spawn_app().await;
    let text = app.get("/metrics").await.text().await.expect("text");
    for family in [
        "crs_cds_http_requests_total",
        "crs_cds_http_request_duration_seconds",
        "crs_cds_cards_total",
        "crs_cds_fhir_fetches_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family}\n{text}"
        );
    }
    for outcome in ["ok", "http-error", "transport-error", "unusable", "timeout"] {
        assert!(
            text.contains(&format!(
                "crs_cds_fhir_fetches_total{{outcome=\"{outcome}\"}} 0"
            )),
            "{outcome}\n{text}"
        );
    }
    assert!(
        text.contains(&format!(
            "crs_cds_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    #[cfg(target_os = "linux")]
    for family in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(text.contains(family), "{family}");
    }
    app.stop().await;
}
