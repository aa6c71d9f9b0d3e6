use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    empty_bundle, non_cart_prefetch, null_prefetch, patient_view, spawn_app, spawn_app_with,
};

const GRADING: &str = "crs-icans-grading";

async fn error_body(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().await.expect("a JSON error body");
    assert!(
        body["error"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

#[tokio::test]
async fn a_non_cart_patient_gets_no_cards() {
    let app = spawn_app().await;
    let r = app
        .call(GRADING, &patient_view("p1", Some(non_cart_prefetch("p1"))))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("JSON"),
        json!({ "cards": [] })
    );
    app.stop().await;
}

#[tokio::test]
async fn null_prefetch_means_no_data_and_nothing_is_fetched() {
    let fhir = MockServer::start().await;
    let app = spawn_app().await;
    let mut req = patient_view("p1", Some(null_prefetch()));
    req["fhirServer"] = json!(format!("{}/fhir", fhir.uri()));
    req["fhirAuthorization"] = json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 300, "scope": "user/*.read", "subject": "crs-cds"});
    let r = app.call(GRADING, &req).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("JSON"),
        json!({ "cards": [] })
    );
    assert!(
        fhir.received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_missing_prefetch_key_is_fetched_from_the_fhir_server_with_the_bearer_token() {
    let fhir = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/fhir/Observation"))
        .and(query_param("subject", "Patient/p1"))
        .and(query_param("category", "vital-signs"))
        .and(header("Authorization", "Bearer tok-123"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_bundle()))
        .expect(1)
        .mount(&fhir)
        .await;
    let app = spawn_app().await;
    let mut prefetch = non_cart_prefetch("p1");
    prefetch.as_object_mut().expect("object").remove("vitals");
    let mut req = patient_view("p1", Some(prefetch));
    req["fhirServer"] = json!(format!("{}/fhir", fhir.uri()));
    req["fhirAuthorization"] = json!({"access_token": "tok-123", "token_type": "Bearer", "expires_in": 300, "scope": "user/*.read", "subject": "crs-cds"});
    let r = app.call(GRADING, &req).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let received = fhir.received_requests().await.unwrap_or_default();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].url.path(), "/fhir/Observation");
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains(r#"crs_cds_fhir_fetches_total{outcome="ok"} 1"#),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_operation_outcome_in_prefetch_is_refetched() {
    let fhir = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/fhir/Observation"))
        .and(query_param("category", "laboratory"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_bundle()))
        .expect(1)
        .mount(&fhir)
        .await;
    let app = spawn_app().await;
    let mut prefetch = non_cart_prefetch("p1");
    prefetch["labs"] = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]});
    let mut req = patient_view("p1", Some(prefetch));
    req["fhirServer"] = json!(format!("{}/fhir", fhir.uri()));
    let r = app.call(GRADING, &req).await;
    assert_eq!(r.status(), 200);
    assert_eq!(fhir.received_requests().await.unwrap_or_default().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn every_missing_key_is_fetched_and_next_links_are_followed_up_to_the_page_limit() {
    let fhir = MockServer::start().await;
    let base = format!("{}/fhir", fhir.uri());
    let page = |next: Option<String>| {
        let mut b = empty_bundle();
        if let Some(n) = next {
            b["link"] = json!([{"relation": "self", "url": "x"}, {"relation": "next", "url": n}]);
        }
        b
    };
    Mock::given(method("GET"))
        .and(path("/fhir/Observation"))
        .and(query_param("category", "vital-signs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(Some(format!("{base}/page2")))))
        .mount(&fhir)
        .await;
    Mock::given(method("GET"))
        .and(path("/fhir/page2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(Some(format!("{base}/page3")))))
        .mount(&fhir)
        .await;
    Mock::given(method("GET"))
        .and(path("/fhir/page3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(Some(format!("{base}/page4")))))
        .mount(&fhir)
        .await;
    Mock::given(method("GET"))
        .and(path("/fhir/Patient/p1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"resourceType": "Patient", "id": "p1"})),
        )
        .mount(&fhir)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_bundle()))
        .with_priority(10)
        .mount(&fhir)
        .await;
    let app = spawn_app_with(|s| s.fhir.max_pages = 3).await;
    let mut req = patient_view("p1", None);
    req["fhirServer"] = json!(base);
    req["fhirAuthorization"] = json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 300, "scope": "s", "subject": "c"});
    let r = app.call(GRADING, &req).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let received = fhir.received_requests().await.unwrap_or_default();
    let mut paths: Vec<String> = received.iter().map(|r| r.url.path().to_string()).collect();
    paths.sort();
    // 7 keys, and vitals read 3 pages (the page limit), never page4.
    assert_eq!(received.len(), 9, "{paths:?}");
    assert!(paths.contains(&"/fhir/page3".to_string()));
    assert!(!paths.contains(&"/fhir/page4".to_string()));
    for r in &received {
        assert_eq!(
            r.headers.get("authorization").and_then(|v| v.to_str().ok()),
            Some("Bearer tok")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn missing_prefetch_without_a_fhir_server_is_412_with_an_operation_outcome() {
    let app = spawn_app().await;
    let r = app.call(GRADING, &patient_view("p1", None)).await;
    assert_eq!(r.status(), 412);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(body["issue"][0]["severity"], "error");
    app.stop().await;
}

#[tokio::test]
async fn a_failing_fhir_server_is_412() {
    let fhir = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&fhir)
        .await;
    let app = spawn_app().await;
    let mut prefetch = non_cart_prefetch("p1");
    prefetch.as_object_mut().expect("object").remove("neuro");
    let mut req = patient_view("p1", Some(prefetch));
    req["fhirServer"] = json!(fhir.uri());
    let r = app.call(GRADING, &req).await;
    assert_eq!(r.status(), 412);
    app.stop().await;
}

#[tokio::test]
async fn a_slow_fhir_server_is_412_at_the_deadline_not_a_hang() {
    let fhir = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(empty_bundle())
                .set_delay(Duration::from_secs(30)),
        )
        .mount(&fhir)
        .await;
    let app = spawn_app_with(|s| s.fhir.deadline = Duration::from_millis(300)).await;
    let mut prefetch = non_cart_prefetch("p1");
    prefetch.as_object_mut().expect("object").remove("vitals");
    let mut req = patient_view("p1", Some(prefetch));
    req["fhirServer"] = json!(fhir.uri());
    let start = Instant::now();
    let r = app.call(GRADING, &req).await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(r.status(), 412);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["issue"][0]["code"], "timeout");
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_are_400_with_a_clear_json_error() {
    let app = spawn_app().await;
    let cases: Vec<(&str, String)> = vec![
        ("malformed JSON", "{\"hook\": ".into()),
        ("empty body", String::new()),
        ("not an object", "[1, 2]".into()),
        ("wrong type", json!({"hook": 7, "hookInstance": "a", "context": {"patientId": "p"}}).to_string()),
        ("context not an object", json!({"hook": "patient-view", "hookInstance": "a", "context": "p"}).to_string()),
        ("missing hook", json!({"hookInstance": "a", "context": {"patientId": "p"}}).to_string()),
        ("missing hookInstance", json!({"hook": "patient-view", "context": {"patientId": "p"}}).to_string()),
        ("missing context", json!({"hook": "patient-view", "hookInstance": "a"}).to_string()),
        ("missing patientId", json!({"hook": "patient-view", "hookInstance": "a", "context": {}}).to_string()),
        ("hook of another service", json!({"hook": "order-sign", "hookInstance": "a", "context": {"patientId": "p"}}).to_string()),
        ("prefetch not an object", json!({"hook": "patient-view", "hookInstance": "a", "context": {"patientId": "p"}, "prefetch": 3}).to_string()),
    ];
    for (what, body) in cases {
        let r = app.call_raw(GRADING, body).await;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(status, 400, "{what}: {text}");
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert!(
            v["error"].is_string() && v["detail"].is_string(),
            "{what}: {v}"
        );
    }
    let order_sign =
        json!({"hook": "order-sign", "hookInstance": "a", "context": {"patientId": "p"}});
    let body = error_body(app.call("cart-toxicity-order-sign", &order_sign).await, 400).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("draftOrders"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_services_and_routes_are_404() {
    let app = spawn_app().await;
    error_body(
        app.call("no-such-service", &patient_view("p", None)).await,
        404,
    )
    .await;
    error_body(app.get("/nowhere").await, 404).await;
    app.stop().await;
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 64 * 1024).await;
    let mut req = patient_view("p1", Some(non_cart_prefetch("p1")));
    req["prefetch"]["patient"]["text"] =
        json!({"status": "generated", "div": "x".repeat(100 * 1024)});
    error_body(app.call(GRADING, &req).await, 413).await;
    // Just under the limit is fine.
    let ok = app
        .call(GRADING, &patient_view("p1", Some(non_cart_prefetch("p1"))))
        .await;
    assert_eq!(ok.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_large_body_over_the_actix_default_is_accepted_below_the_configured_limit() {
    let app = spawn_app().await;
    let mut req = patient_view("p1", Some(non_cart_prefetch("p1")));
    req["prefetch"]["patient"]["text"] =
        json!({"status": "generated", "div": "x".repeat(1024 * 1024)});
    assert_eq!(app.call(GRADING, &req).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn order_hooks_without_cart_answer_no_cards() {
    let app = spawn_app().await;
    let draft = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "MedicationRequest", "id": "mr1", "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"text": "tocilizumab"}, "subject": {"reference": "Patient/p1"}}}]});
    for (service, hook) in [
        ("cart-toxicity-order-select", "order-select"),
        ("cart-toxicity-order-sign", "order-sign"),
    ] {
        let req = json!({"hook": hook, "hookInstance": uuid::Uuid::new_v4().to_string(),
            "context": {"patientId": "p1", "userId": "Practitioner/u", "draftOrders": draft, "selections": ["MedicationRequest/mr1"]},
            "prefetch": non_cart_prefetch("p1")});
        let r = app.call(service, &req).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.expect("JSON"), json!({"cards": []}));
    }
    app.stop().await;
}

/// A CAR-T patient on day 4 after axi-cel with fever 39.2 °C: at least CRS grade 1.
pub(crate) fn cart_patient_request() -> Value {
    let bundle = |entries: Vec<Value>| {
        json!({"resourceType": "Bundle", "type": "searchset",
            "entry": entries.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
    };
    let prefetch = json!({
        "patient": {"resourceType": "Patient", "id": "p9", "birthDate": "1970-05-01"},
        "vitals": bundle(vec![json!({"resourceType": "Observation", "id": "t1", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
            "subject": {"reference": "Patient/p9"}, "effectiveDateTime": "2026-03-10T10:00:00Z",
            "valueQuantity": {"value": 39.2, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"}})]),
        "neuro": empty_bundle(),
        "labs": empty_bundle(),
        "medicationAdministrations": empty_bundle(),
        "medicationRequests": empty_bundle(),
        "procedures": bundle(vec![json!({"resourceType": "Procedure", "id": "inf1", "status": "completed",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "38228"}], "text": "axicabtagene ciloleucel infusion"},
            "subject": {"reference": "Patient/p9"}, "performedDateTime": "2026-03-06T09:00:00Z"})]),
    });
    patient_view("p9", Some(prefetch))
}

#[tokio::test]
async fn a_cart_patient_gets_a_grading_card() {
    let app = spawn_app_with(|s| s.grading.allow_time_override = true).await;
    let r = app
        .call_at(GRADING, &cart_patient_request(), "2026-03-10T12:00:00Z")
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("JSON");
    let card = &body["cards"][0];
    assert!(
        card["summary"]
            .as_str()
            .unwrap_or_default()
            .starts_with("CRS grade"),
        "{card}"
    );
    assert!(
        card["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("day 4"),
        "{card}"
    );
    assert!(
        card["extension"]["org.crs-cds"]["crsGrade"]
            .as_u64()
            .is_some_and(|g| g >= 1),
        "{card}"
    );
    // Only a temperature was sent: the CRS grade is a lower bound (no blood pressure, no
    // oxygen record), ICANS not assessed, so nothing is offered for recording (S13).
    assert_eq!(
        card["extension"]["org.crs-cds"]["crsGradeIsLowerBound"],
        true
    );
    assert!(card.get("suggestions").is_none(), "{card}");
    assert!(
        card["extension"]["org.crs-cds"]["evidence"]
            .to_string()
            .contains("Observation/t1")
    );
    app.stop().await;
}

#[tokio::test]
async fn the_evaluation_time_header_is_refused_only_when_allowed_and_malformed() {
    let app = spawn_app_with(|s| s.grading.allow_time_override = true).await;
    let r = app
        .client
        .post(format!("{}/cds-services/{GRADING}", app.address))
        .header("X-CRS-CDS-Evaluation-Time", "yesterday")
        .json(&patient_view("p1", Some(non_cart_prefetch("p1"))))
        .send()
        .await
        .expect("sent");
    error_body(r, 400).await;
    app.stop().await;
    // Ignored by default.
    let app = spawn_app().await;
    let r = app
        .client
        .post(format!("{}/cds-services/{GRADING}", app.address))
        .header("X-CRS-CDS-Evaluation-Time", "yesterday")
        .json(&patient_view("p1", Some(non_cart_prefetch("p1"))))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn the_token_never_follows_a_next_link_to_another_server() {
    let fhir = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    let mut page = empty_bundle();
    page["link"] = json!([{"relation": "next", "url": format!("{}/steal", elsewhere.uri())}]);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .mount(&fhir)
        .await;
    let app = spawn_app().await;
    let mut prefetch = non_cart_prefetch("p1");
    prefetch.as_object_mut().expect("object").remove("vitals");
    let mut req = patient_view("p1", Some(prefetch));
    req["fhirServer"] = json!(fhir.uri());
    req["fhirAuthorization"] = json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 300, "scope": "s", "subject": "c"});
    let r = app.call(GRADING, &req).await;
    assert_eq!(r.status(), 412);
    assert!(
        elsewhere
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test]
async fn an_operation_outcome_from_the_fhir_server_is_412() {
    let fhir = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"resourceType": "OperationOutcome", "issue": []})),
        )
        .mount(&fhir)
        .await;
    let app = spawn_app().await;
    let mut prefetch = non_cart_prefetch("p1");
    prefetch.as_object_mut().expect("object").remove("patient");
    let mut req = patient_view("p1", Some(prefetch));
    req["fhirServer"] = json!(fhir.uri());
    assert_eq!(app.call(GRADING, &req).await.status(), 412);
    app.stop().await;
}

#[tokio::test]
async fn prefetch_under_other_keys_is_used_and_unfetchable_keys_are_reported_not_refused() {
    let app = spawn_app_with(|s| s.grading.allow_time_override = true).await;
    // One Bundle under a key the service did not ask for, no fhirServer.
    let request = cart_patient_request();
    let mut everything = Vec::new();
    for (_, v) in request["prefetch"].as_object().expect("prefetch") {
        match v["resourceType"].as_str() {
            Some("Bundle") => everything.extend(v["entry"].as_array().cloned().unwrap_or_default()),
            Some(_) => everything.push(json!({"resource": v})),
            None => {}
        }
    }
    let mut req = patient_view(
        "p9",
        Some(
            json!({"everything": {"resourceType": "Bundle", "type": "collection", "entry": everything}}),
        ),
    );
    req["hookInstance"] = request["hookInstance"].clone();
    let r = app.call_at(GRADING, &req, "2026-03-10T12:00:00Z").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("JSON");
    let ext = &body["cards"][0]["extension"]["org.crs-cds"];
    assert!(
        ext["evidence"].to_string().contains("Observation/t1"),
        "{body}"
    );
    let all = body.to_string();
    assert!(
        all.contains("prefetch vitals: not provided and no fhirServer"),
        "{all}"
    );
    app.stop().await;
}
