use crate::helpers::spawn_app;

#[tokio::test]
async fn discovery_lists_the_three_services_with_prefetch_templates() {
    let app = spawn_app().await;
    let r = app.get("/cds-services").await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("JSON");
    let services = body["services"].as_array().expect("services");
    let ids: Vec<(&str, &str)> = services
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or(""),
                s["hook"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("crs-icans-grading", "patient-view"),
            ("cart-toxicity-order-select", "order-select"),
            ("cart-toxicity-order-sign", "order-sign")
        ]
    );
    for s in services {
        assert!(s["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(s["title"].is_string());
        let prefetch = s["prefetch"].as_object().expect("prefetch");
        assert_eq!(prefetch["patient"], "Patient/{{context.patientId}}");
        for key in [
            "vitals",
            "neuro",
            "labs",
            "medicationAdministrations",
            "medicationRequests",
            "procedures",
        ] {
            let t = prefetch[key].as_str().expect("a template");
            assert!(t.contains("{{context.patientId}}"), "{key}: {t}");
        }
        // Medications come with the orders and administrations (issue 9), so a vasopressor
        // named only in a Medication resource is not missed.
        let ma = prefetch["medicationAdministrations"]
            .as_str()
            .expect("a template");
        assert!(
            ma.ends_with("&_include=MedicationAdministration:medication"),
            "{ma}"
        );
        let mr = prefetch["medicationRequests"].as_str().expect("a template");
        assert!(
            mr.ends_with("&_include=MedicationRequest:medication"),
            "{mr}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("JSON");
    assert_eq!(body["feedbackStore"], "ok");
    app.get("/cds-services").await;
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains(r#"crs_cds_http_requests_total{route="/cds-services",status="200"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("crs_cds_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn cors_preflight_allows_any_origin_with_authorization_and_content_type() {
    let app = spawn_app().await;
    let r = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/cds-services/crs-icans-grading", app.address),
        )
        .header("Origin", "https://ehr.example.org")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("sent");
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://ehr.example.org");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    let get = app
        .client
        .get(format!("{}/cds-services", app.address))
        .header("Origin", "https://ehr.example.org")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "https://ehr.example.org"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_bench_endpoint_exists_only_when_enabled() {
    let app = spawn_app().await;
    assert_eq!(app.get("/bench/ceiling").await.status(), 404);
    app.stop().await;
    let app = crate::helpers::spawn_app_with(|s| s.server.bench_endpoints = true).await;
    assert_eq!(app.get("/bench/ceiling").await.status(), 200);
    app.stop().await;
}
