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
