//! Issue 10 (hardening) and the HTTP side of issue 9: one test per observed fault, each
//! reproducing it against the code before the fix.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{empty_bundle, non_cart_prefetch, patient_view, spawn_app_on, spawn_app_with};
use crate::service::cart_patient_request;

const GRADING: &str = "crs-icans-grading";

/// Generous liveness bound for network steps (not a latency assertion).
const LIVENESS: Duration = Duration::from_secs(10);

fn feedback(card: &str) -> Value {
    json!({"feedback": [{"card": card, "outcome": "accepted", "acceptedSuggestions": [{"id": "s-1"}],
        "outcomeTimestamp": "2026-03-10T10:05:31Z"}]})
}

async fn sqlite(db: &std::path::Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("the test opens the database")
}

/// Cards committed to the file, read on a connection of the test's own.
async fn committed_cards(db: &std::path::Path) -> Vec<String> {
    let mut c = sqlite(db).await;
    let rows: Vec<(String,)> = sqlx::query_as("SELECT card_uuid FROM cds_feedback ORDER BY id")
        .fetch_all(&mut c)
        .await
        .expect("readable");
    rows.into_iter().map(|r| r.0).collect()
}

#[tokio::test]
async fn feedback_acknowledged_after_injected_write_failures_is_committed_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("feedback.db");
    spawn_app_on(&db, |_| {}).await.stop().await;
    // Injected faults: a card named rollback-* makes SQLite roll the whole transaction back
    // itself (as a full disk does); abort-* fails one statement.
    let mut c = sqlite(&db).await;
    sqlx::query(
        "CREATE TRIGGER inject BEFORE INSERT ON cds_feedback BEGIN
           SELECT CASE
             WHEN NEW.card_uuid LIKE 'rollback-%' THEN RAISE(ROLLBACK, 'injected rollback')
             WHEN NEW.card_uuid LIKE 'abort-%' THEN RAISE(ABORT, 'injected abort')
           END;
         END",
    )
    .execute(&mut c)
    .await
    .expect("trigger created");
    c.close().await.expect("closed");

    let app = spawn_app_on(&db, |_| {}).await;
    let mut acknowledged = Vec::new();
    // The pool rotates its connections: this order puts both faults on one connection
    // and later writes on it too, whatever the pool's size.
    for round in 0..3 {
        for step in ["rollback", "good", "abort", "good", "good", "good"] {
            let card = format!("{step}-{round}-{}", acknowledged.len());
            let r = app.feedback(GRADING, &feedback(&card)).await;
            if step == "good" {
                assert_eq!(r.status(), 200, "{:?}", r.text().await);
                // Acknowledged means committed: visible to another connection at once.
                assert!(
                    committed_cards(&db).await.contains(&card),
                    "{card} acknowledged but not committed"
                );
                acknowledged.push(card);
            } else {
                assert_eq!(r.status(), 503);
                assert!(r.headers().contains_key("retry-after"));
            }
            // Let the connection go back to (or be dropped from) the pool.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    app.stop().await;
    let stored = committed_cards(&db).await;
    assert_eq!(stored, acknowledged);
}

#[tokio::test]
async fn a_retried_feedback_item_is_stored_once() {
    let app = spawn_app_with(|_| {}).await;
    for _ in 0..3 {
        let r = app.feedback(GRADING, &feedback("card-retried")).await;
        assert_eq!(r.status(), 200);
    }
    let other_outcome = json!({"feedback": [{"card": "card-retried", "outcome": "overridden",
        "overrideReason": {"reason": {"code": "clinical-judgement", "system": "https://w3id.org/crs-cds/fhir/CodeSystem/override-reason", "display": "Clinical judgement"}},
        "outcomeTimestamp": "2026-03-10T10:06:00Z"}]});
    assert_eq!(app.feedback(GRADING, &other_outcome).await.status(), 200);
    let stored = app.state.store.all().await.expect("readable");
    let outcomes: Vec<&str> = stored.iter().map(|s| s.outcome.as_str()).collect();
    assert_eq!(outcomes, vec!["accepted", "overridden"]);
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_503_within_a_second_when_a_write_cannot_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("feedback.db");
    let app = spawn_app_on(&db, |_| {}).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let mut c = sqlite(&db).await;
    sqlx::query(
        "CREATE TRIGGER no_writes BEFORE UPDATE ON cds_readiness BEGIN SELECT RAISE(ABORT, 'read-only'); END",
    )
    .execute(&mut c)
    .await
    .expect("trigger created");
    c.close().await.expect("closed");
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 503);
    app.stop().await;
}

#[tokio::test]
async fn hook_calls_are_served_while_the_feedback_database_is_unreachable() {
    // A PostgreSQL URL where nothing listens: start-up must not fail.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let app = spawn_app_with(|s| {
        s.feedback.database_url = format!("postgres://u:p@127.0.0.1:{port}/none");
    })
    .await;
    let r = app
        .call(GRADING, &patient_view("p1", Some(non_cart_prefetch("p1"))))
        .await;
    assert_eq!(r.status(), 200);
    let r = app.feedback(GRADING, &feedback("c1")).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(app.get("/readyz").await.status(), 503);
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await;
}

/// A raw HTTP server on loopback that answers every request with an endless chunked
/// JSON body; returns its base URL.
async fn endless_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let start = br#"{"resourceType":"Bundle","keys":[{"kid":"x"},"#;
                let _ = s
                    .write_all(format!("{:x}\r\n", start.len()).as_bytes())
                    .await;
                let _ = s.write_all(start).await;
                let _ = s.write_all(b"\r\n").await;
                let filler = "{\"a\":1},".repeat(8192);
                let chunk = format!("{:x}\r\n{filler}\r\n", filler.len());
                while s.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    base
}

#[tokio::test]
async fn an_endless_fhir_answer_is_cut_at_the_page_cap_and_412_names_the_key() {
    let base = endless_server().await;
    let app = spawn_app_with(|s| s.fhir.max_page_bytes = 256 * 1024).await;
    let mut req = patient_view("p1", None);
    req["fhirServer"] = json!(base);
    let r = tokio::time::timeout(LIVENESS, app.call(GRADING, &req))
        .await
        .expect("answered (liveness)");
    assert_eq!(r.status(), 412);
    let text = r.text().await.expect("body");
    assert!(text.contains("fhir.max_page_bytes"), "{text}");
    assert!(text.contains("is over"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn fhir_answers_over_the_call_budget_together_are_412_naming_the_setting() {
    let fhir = MockServer::start().await;
    // ~600 KiB per key: each under the page cap, seven together over the call cap.
    let mut big = empty_bundle();
    big["entry"] = json!([{"resource": {"resourceType": "Basic", "id": "x", "code": {"text": "y".repeat(600 * 1024)}}}]);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(big))
        .mount(&fhir)
        .await;
    let app = spawn_app_with(|s| {
        s.fhir.max_page_bytes = 1024 * 1024;
        s.fhir.max_call_bytes = 2 * 1024 * 1024;
    })
    .await;
    let mut req = patient_view("p1", None);
    req["fhirServer"] = json!(fhir.uri());
    let r = app.call(GRADING, &req).await;
    assert_eq!(r.status(), 412);
    let text = r.text().await.expect("body");
    assert!(text.contains("fhir.max_call_bytes"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn the_token_never_follows_a_next_link_whose_userinfo_mimics_the_server() {
    let fhir = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    let host_only = fhir.uri(); // http://127.0.0.1:P, no path
    let other = elsewhere.uri().trim_start_matches("http://").to_string();
    let mut page = empty_bundle();
    page["link"] = json!([{"relation": "next", "url": format!("{host_only}@{other}/Observation")}]);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .mount(&fhir)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_bundle()))
        .mount(&elsewhere)
        .await;
    let app = spawn_app_with(|_| {}).await;
    for base in [host_only.clone(), format!("{host_only}/")] {
        let mut req = patient_view("p1", None);
        req["fhirServer"] = json!(base);
        req["fhirAuthorization"] = json!({"access_token": "secret-tok", "token_type": "Bearer", "expires_in": 300, "scope": "s", "subject": "c"});
        let r = app.call(GRADING, &req).await;
        assert_eq!(r.status(), 412);
    }
    let leaked = elsewhere.received_requests().await.unwrap_or_default();
    assert!(
        leaked.is_empty(),
        "the other origin got {} requests",
        leaked.len()
    );
    app.stop().await;
}

#[tokio::test]
async fn next_links_of_prefetched_bundles_are_followed_and_the_page_limit_is_reported_on_the_card()
{
    let fhir = MockServer::start().await;
    let base = format!("{}/fhir", fhir.uri());
    let mut req = cart_patient_request();
    // The prefetched vitals Bundle has a next page holding nothing new, which has another.
    req["prefetch"]["vitals"]["link"] =
        json!([{"relation": "next", "url": format!("{base}/vitals-2")}]);
    let mut page2 = empty_bundle();
    page2["link"] = json!([{"relation": "next", "url": format!("{base}/vitals-3")}]);
    Mock::given(method("GET"))
        .and(path("/fhir/vitals-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page2))
        .mount(&fhir)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_bundle()))
        .with_priority(10)
        .mount(&fhir)
        .await;
    req["fhirServer"] = json!(base);
    let app = spawn_app_with(|s| {
        s.fhir.max_pages = 2;
        s.grading.allow_time_override = true;
    })
    .await;
    let r = app.call_at(GRADING, &req, "2026-03-10T12:00:00Z").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("JSON");
    let paths: Vec<String> = fhir
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert_eq!(
        paths,
        vec!["/fhir/vitals-2"],
        "page 3 is beyond max_pages = 2"
    );
    let text = body["cards"].to_string();
    assert!(
        text.contains("prefetch vitals: only the first 2 pages were read"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn medications_referenced_but_not_sent_are_read_with_one_id_search() {
    let fhir = MockServer::start().await;
    let mut req = cart_patient_request();
    req["prefetch"]["medicationAdministrations"] = json!({"resourceType": "Bundle", "type": "searchset",
        "entry": [{"resource": {"resourceType": "MedicationAdministration", "id": "ma1", "status": "in-progress",
            "medicationReference": {"reference": "Medication/norepi"},
            "subject": {"reference": "Patient/p9"},
            "effectivePeriod": {"start": "2026-03-10T08:00:00Z"}}}]});
    Mock::given(method("GET"))
        .and(path("/Medication"))
        .and(query_param("_id", "norepi"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": {"resourceType": "Medication", "id": "norepi",
                "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7512"}]}}}]})))
        .mount(&fhir)
        .await;
    req["fhirServer"] = json!(fhir.uri());
    let app = spawn_app_with(|_| {}).await;
    let r = app.call(GRADING, &req).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let received = fhir.received_requests().await.unwrap_or_default();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].url.query(), Some("_id=norepi"));
    app.stop().await;
}

#[tokio::test]
async fn more_draft_orders_than_the_cap_are_422_naming_the_setting() {
    let app = spawn_app_with(|s| s.server.limits.max_draft_orders = 3).await;
    let order = json!({"resource": {"resourceType": "MedicationRequest", "status": "draft", "intent": "order"}});
    let mut req = patient_view("p1", Some(non_cart_prefetch("p1")));
    req["hook"] = json!("order-select");
    req["context"]["selections"] = json!(["MedicationRequest/x"]);
    req["context"]["draftOrders"] = json!({"resourceType": "Bundle", "entry": [order.clone(), order.clone(), order.clone(), order]});
    let r = app.call("cart-toxicity-order-select", &req).await;
    assert_eq!(r.status(), 422);
    let text = r.text().await.expect("body");
    assert!(text.contains("server.max_draft_orders"), "{text}");
    app.stop().await;
}

/// Sends `head` then `body` on a raw connection and reads until the server closes it
/// (or the liveness bound passes); returns what was read and whether it closed.
async fn raw_exchange(
    address: &str,
    head: &str,
    body: &[u8],
    keep_sending: bool,
) -> (String, bool) {
    let mut s = TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .expect("connected");
    s.write_all(head.as_bytes()).await.expect("head sent");
    s.write_all(body).await.expect("body sent");
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        if keep_sending {
            let chunk = format!("{:x}\r\n{}\r\n", 65536, "x".repeat(65536));
            while wr.write_all(chunk.as_bytes()).await.is_ok() {}
        } else {
            tokio::time::sleep(LIVENESS * 2).await;
            drop(wr);
        }
    });
    let mut out = Vec::new();
    let closed = tokio::time::timeout(LIVENESS, async {
        let mut buf = [0u8; 8192];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    writer.abort();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

#[tokio::test]
async fn an_endless_upload_to_an_unknown_route_is_answered_404_and_the_connection_closed() {
    let app = spawn_app_with(|_| {}).await;
    let head = "POST /nowhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n";
    let (answer, closed) = raw_exchange(&app.address, head, b"", true).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(closed, "the server kept reading the upload");
    app.stop().await;
}

#[tokio::test]
async fn an_oversize_chunked_upload_is_413_and_the_connection_closed() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 64 * 1024).await;
    let head = format!(
        "POST /cds-services/{GRADING} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    );
    let (answer, closed) = raw_exchange(&app.address, &head, b"", true).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(closed, "the server kept reading the upload");
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_chunk_size_is_a_400_not_a_500() {
    let app = spawn_app_with(|_| {}).await;
    let head = format!(
        "POST /cds-services/{GRADING} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    );
    let (answer, _) = raw_exchange(&app.address, &head, b"2\r\n{}\r\nzz\r\n", false).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn a_body_trickling_in_slower_than_the_read_timeout_is_408() {
    let app = spawn_app_with(|s| {
        s.server.limits.body_read_timeout = Duration::from_millis(300);
    })
    .await;
    let head = format!(
        "POST /cds-services/{GRADING} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n"
    );
    let (answer, closed) = raw_exchange(&app.address, &head, b"{", false).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(closed);
    app.stop().await;
}

#[tokio::test]
async fn liveness_check_healthz_answers_while_every_grading_slot_is_taken() {
    let app = spawn_app_with(|s| {
        s.server.limits.cpu_workers = 1;
        s.server.limits.cpu_queue = 0;
    })
    .await;
    // Take the only slot from outside, as a long grading would.
    let held = app.state.cpu.admit().expect("the slot");
    let r = app.call(GRADING, &cart_patient_request()).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let health = tokio::time::timeout(Duration::from_secs(5), app.get("/healthz"))
        .await
        .expect("healthz answers within 5 s while the pool is saturated (liveness check)");
    assert_eq!(health.status(), 200);
    drop(held);
    assert_eq!(
        app.call(GRADING, &cart_patient_request()).await.status(),
        200
    );
    app.stop().await;
}

/// The idempotency key on PostgreSQL (`CRS_CDS_TEST_POSTGRES_URL`, set by `.ci/run`; in
/// CI its absence is a failure).
#[tokio::test]
async fn a_retried_feedback_item_is_stored_once_in_postgresql() {
    let Ok(url) = std::env::var("CRS_CDS_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide CRS_CDS_TEST_POSTGRES_URL"
        );
        eprintln!("CRS_CDS_TEST_POSTGRES_URL not set: PostgreSQL idempotency test skipped");
        return;
    };
    let app = spawn_app_with(|s| s.feedback.database_url = url).await;
    let card = format!("retried-{}", uuid::Uuid::new_v4());
    for _ in 0..3 {
        assert_eq!(app.feedback(GRADING, &feedback(&card)).await.status(), 200);
    }
    let stored = app.state.store.all().await.expect("readable");
    assert_eq!(stored.iter().filter(|s| s.card_uuid == card).count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_fhir_deadline_covers_grading_what_was_fetched_not_only_fetching_it() {
    let fhir = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_bundle()))
        .mount(&fhir)
        .await;
    let app = spawn_app_with(|s| {
        s.fhir.deadline = Duration::from_millis(300);
        s.server.limits.cpu_workers = 1;
        s.server.limits.cpu_queue = 1;
    })
    .await;
    // The only grading slot is busy, as with a long grading in flight: the fetch is quick,
    // the grading cannot start before the deadline.
    let held = app.state.cpu.admit().expect("the slot");
    let busy = held.run((), |()| std::thread::sleep(Duration::from_secs(2)));
    let busy = tokio::spawn(busy);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut req = patient_view("p1", None);
    req["fhirServer"] = json!(fhir.uri());
    let r = app.call(GRADING, &req).await;
    assert_eq!(r.status(), 412);
    let text = r.text().await.expect("body");
    assert!(text.contains("\"timeout\""), "{text}");
    busy.await.expect("joined").expect("ran");
    app.stop().await;
}

#[tokio::test]
async fn over_the_card_cap_one_card_says_how_many_were_not_shown() {
    let app = spawn_app_with(|s| {
        s.server.limits.max_cards = 3;
        s.grading.allow_time_override = true;
    })
    .await;
    let mut req = cart_patient_request();
    let orders: Vec<Value> = (0..6)
        .map(|n| json!({"resource": {"resourceType": "MedicationRequest", "id": format!("toci{n}"), "status": "draft",
            "intent": "order", "subject": {"reference": "Patient/p9"},
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "612865"}], "text": "tocilizumab"},
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 800, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]}]}}))
        .collect();
    req["hook"] = json!("order-select");
    req["context"]["selections"] = json!(
        (0..6)
            .map(|n| format!("MedicationRequest/toci{n}"))
            .collect::<Vec<_>>()
    );
    req["context"]["draftOrders"] =
        json!({"resourceType": "Bundle", "type": "collection", "entry": orders});
    let r = app
        .call_at("cart-toxicity-order-select", &req, "2026-03-10T12:00:00Z")
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("JSON");
    let cards = body["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 3, "{body}");
    let last = &cards[2];
    let hidden = last["extension"]["org.crs-cds"]["cardsNotShown"]
        .as_u64()
        .expect("the last card counts the hidden ones");
    assert!(
        hidden >= 4,
        "6 orders give at least 6 cards: {hidden} hidden"
    );
    assert_eq!(last["indicator"], "warning");
    app.stop().await;
}

#[tokio::test]
async fn a_prefetched_next_page_on_another_server_is_not_fetched_and_is_reported() {
    let fhir = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty_bundle()))
        .mount(&elsewhere)
        .await;
    let mut req = cart_patient_request();
    req["prefetch"]["vitals"]["link"] =
        json!([{"relation": "next", "url": format!("{}/Observation?page=2", elsewhere.uri())}]);
    req["fhirServer"] = json!(fhir.uri());
    req["fhirAuthorization"] = json!({"access_token": "secret-tok", "token_type": "Bearer", "expires_in": 300, "scope": "s", "subject": "c"});
    let app = spawn_app_with(|s| s.grading.allow_time_override = true).await;
    let r = app.call_at(GRADING, &req, "2026-03-10T12:00:00Z").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    assert!(
        text.contains("prefetch vitals: the Bundle's next page is not on fhirServer"),
        "{text}"
    );
    assert!(
        elsewhere
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
    app.stop().await;
}

/// `cart_patient_request` holds 3 entries the engine uses: the infusion Procedure, the
/// Patient and one temperature Observation (the other prefetch Bundles are empty).
const CART_PATIENT_ENTRIES: u64 = 3;

async fn grade_with_cap(cap: usize, service: &str, req: &Value) -> Value {
    let app = spawn_app_with(|s| {
        s.server.limits.max_parsed_entries = cap;
        s.grading.allow_time_override = true;
    })
    .await;
    let r = app.call_at(service, req, "2026-03-10T12:00:00Z").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("JSON");
    app.stop().await;
    body
}

#[tokio::test]
async fn exactly_at_the_parsed_entry_cap_the_patient_is_graded_normally() {
    let body = grade_with_cap(
        CART_PATIENT_ENTRIES as usize,
        GRADING,
        &cart_patient_request(),
    )
    .await;
    let card = &body["cards"][0];
    assert!(
        card["summary"]
            .as_str()
            .unwrap_or_default()
            .starts_with("CRS grade"),
        "{body}"
    );
    let ext = &card["extension"]["org.crs-cds"];
    assert!(ext["crsGrade"].is_u64(), "{ext}");
    assert!(ext.get("entriesToParse").is_none(), "{ext}");
}

#[tokio::test]
async fn one_entry_over_the_parsed_entry_cap_answers_one_not_graded_card() {
    let cap = CART_PATIENT_ENTRIES - 1;
    let body = grade_with_cap(cap as usize, GRADING, &cart_patient_request()).await;
    let cards = body["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 1, "{body}");
    let card = &cards[0];
    assert_eq!(card["indicator"], "warning");
    assert_eq!(
        card["summary"],
        format!(
            "CAR-T toxicity not graded: the record holds {CART_PATIENT_ENTRIES} entries to check, over this service's limit of {cap}"
        )
    );
    let detail = card["detail"].as_str().expect("detail");
    assert!(detail.contains("not graded"), "{detail}");
    assert!(detail.contains("server.max_parsed_entries"), "{detail}");
    assert!(!detail.contains("No dose check"), "no orders: {detail}");
    let ext = &card["extension"]["org.crs-cds"];
    assert!(ext["crsGrade"].is_null(), "no grade: {ext}");
    assert!(ext["icansGrade"].is_null(), "no grade: {ext}");
    assert_eq!(ext["flags"], json!([]));
    assert_eq!(ext["entriesToParse"], CART_PATIENT_ENTRIES);
    assert_eq!(ext["parsedEntriesLimit"], cap);
}

#[tokio::test]
async fn over_the_parsed_entry_cap_an_order_hook_says_the_tocilizumab_dose_was_not_checked() {
    // Two tocilizumab draft orders, 800 mg each: with the 3 record entries, 5 to parse.
    let mut req = cart_patient_request();
    let orders: Vec<Value> = (0..2)
        .map(|n| json!({"resource": {"resourceType": "MedicationRequest", "id": format!("toci{n}"), "status": "draft",
            "intent": "order", "subject": {"reference": "Patient/p9"},
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "612865"}], "text": "tocilizumab"},
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 800, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]}]}}))
        .collect();
    req["hook"] = json!("order-select");
    req["context"]["selections"] = json!(["MedicationRequest/toci0", "MedicationRequest/toci1"]);
    req["context"]["draftOrders"] =
        json!({"resourceType": "Bundle", "type": "collection", "entry": orders});
    let entries = CART_PATIENT_ENTRIES + 2;

    let at_cap = grade_with_cap(entries as usize, "cart-toxicity-order-select", &req).await;
    assert!(
        at_cap["cards"]
            .as_array()
            .expect("cards")
            .iter()
            .any(|c| c["extension"]["org.crs-cds"]["doseCheck"]["drug"] == "tocilizumab"),
        "at the cap the doses are checked: {at_cap}"
    );

    let over = grade_with_cap(entries as usize - 1, "cart-toxicity-order-select", &req).await;
    let cards = over["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 1, "{over}");
    let card = &cards[0];
    let detail = card["detail"].as_str().expect("detail");
    assert!(
        detail.contains("**No dose check was done** on the draft orders: Tocilizumab (2)"),
        "{detail}"
    );
    let ext = &card["extension"]["org.crs-cds"];
    assert!(ext.get("doseCheck").is_none(), "never an implied OK: {ext}");
    assert_eq!(
        ext["uncheckedOrders"],
        json!(["tocilizumab", "tocilizumab"])
    );
    assert_eq!(ext["entriesToParse"], entries);
    assert!(ext["crsGrade"].is_null());
}

mod parse_cost {
    use crs_cds::adapter::{Document, Terminology, map_documents_capped};
    use crs_cds::domain::Timestamp;

    const NOW: Timestamp = Timestamp(1_795_435_200_000); // 2026-11-23T12:00:00Z

    /// A CAR-T infusion and `n` temperature Observations in the last day, each with 32
    /// unknown elements.
    fn bundle(n: usize) -> String {
        let mut entries = vec![r#"{"resource":{"resourceType":"Procedure","id":"cart","status":"completed","code":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"38228"}]},"subject":{"reference":"Patient/p"},"performedDateTime":"2026-11-20T10:00:00Z"}}"#.to_string()];
        for i in 0..n {
            let extra: String = (0..32).map(|k| format!(r#","vendor{k}":[{k}]"#)).collect();
            entries.push(format!(
                r#"{{"resource":{{"resourceType":"Observation","id":"t{i}","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"8310-5"}}]}},"subject":{{"reference":"Patient/p"}},"effectiveDateTime":"2026-11-23T{:02}:{:02}:00Z","valueQuantity":{{"value":37.5,"unit":"Cel","system":"http://unitsofmeasure.org","code":"Cel"}}{extra}}}}}"#,
                i / 60,
                i % 60
            ));
        }
        format!(
            r#"{{"resourceType":"Bundle","type":"searchset","entry":[{}]}}"#,
            entries.join(",")
        )
    }

    fn map(json: &str, cap: usize) -> crs_cds::adapter::Mapped {
        let docs = [Document {
            origin: "vitals",
            json,
        }];
        map_documents_capped(
            Some("p"),
            &docs,
            None,
            &[],
            NOW,
            &Terminology::embedded(),
            24.0,
            cap,
        )
    }

    #[test]
    fn a_hundred_entries_with_32_unknown_elements_cost_one_parse_each_plus_two() {
        // The infusion: 1 parse. The first Observation: 3 (the failing parse, the probe
        // that confirms the Observation's field list, the parse after dropping all 32).
        // The 99 others are cleaned by the learnt list first: 1 each. 1 + 3 + 99 = 103
        // for 101 entries (element by element it was 1 + 100 × 33 = 3,301).
        let json = bundle(100);
        let m = map(&json, 101);
        assert!(m.over_parse_limit.is_none());
        assert_eq!(m.facts.temperatures.len(), 100);
        assert_eq!(m.typed_parses, 101);
        assert_eq!(m.parse_attempts, 103);
        assert_eq!(
            m.issues
                .iter()
                .filter(|i| i
                    .message
                    .starts_with("elements unknown to FHIR R4 ignored: "))
                .count(),
            100,
            "each entry reports what was dropped"
        );
    }

    #[test]
    fn over_the_parsed_entry_cap_only_the_infusion_is_parsed() {
        let json = bundle(100);
        let m = map(&json, 100);
        let limit = m.over_parse_limit.expect("over the cap");
        assert_eq!((limit.entries, limit.limit), (101, 100));
        assert!(limit.unchecked_orders.is_empty());
        assert_eq!(m.typed_parses, 1, "the infusion only");
        assert_eq!(m.parse_attempts, 1);
        assert!(m.facts.temperatures.is_empty(), "nothing to grade on");
    }

    #[test]
    fn with_more_infusions_than_the_cap_nothing_is_parsed() {
        let json = bundle(3);
        let m = map(&json, 0);
        let limit = m.over_parse_limit.expect("over the cap");
        assert_eq!(limit.entries, 4);
        assert_eq!(m.parse_attempts, 0);
    }
}
