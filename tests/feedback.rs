use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_on};

const GRADING: &str = "crs-icans-grading";

fn entry(i: usize) -> Value {
    if i.is_multiple_of(2) {
        json!({"card": format!("card-{i}"), "outcome": "accepted", "acceptedSuggestions": [{"id": format!("s-{i}")}],
            "outcomeTimestamp": "2026-03-10T10:05:31Z"})
    } else {
        json!({"card": format!("card-{i}"), "outcome": "overridden",
            "overrideReason": {"reason": {"code": "clinical-judgement", "system": "https://w3id.org/crs-cds/fhir/CodeSystem/override-reason", "display": "Clinical judgement"}, "userComment": "c"},
            "outcomeTimestamp": "2026-03-10T10:05:31Z"})
    }
}

#[tokio::test]
async fn acknowledged_feedback_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("feedback.db");
    let app = spawn_app_on(&db, |_| {}).await;
    let mut acknowledged = 0;
    for batch in 0..5 {
        let entries: Vec<Value> = (0..4).map(|i| entry(batch * 4 + i)).collect();
        let service = if batch.is_multiple_of(2) {
            GRADING
        } else {
            "cart-toxicity-order-sign"
        };
        let r = app.feedback(service, &json!({ "feedback": entries })).await;
        assert_eq!(r.status(), 200);
        acknowledged += 4;
    }
    app.stop().await;

    let app = spawn_app_on(&db, |_| {}).await;
    let stored = app.state.store.all().await.expect("readable");
    assert_eq!(stored.len(), acknowledged);
    let cards: Vec<&str> = stored.iter().map(|s| s.card_uuid.as_str()).collect();
    for i in 0..acknowledged {
        assert!(
            cards.contains(&format!("card-{i}").as_str()),
            "card-{i} lost"
        );
    }
    assert_eq!(stored[0].service_id, GRADING);
    assert_eq!(stored[0].outcome, "accepted");
    assert_eq!(stored[1].outcome, "overridden");
    app.stop().await;
}

#[tokio::test]
async fn invalid_feedback_is_400_and_stores_nothing() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"feedback": []}),
        json!({"feedback": [{"card": "c", "outcome": "ignored", "outcomeTimestamp": "2026-03-10T10:05:31Z"}]}),
        json!({"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-03-10T10:05:31Z"}]}),
        json!({"feedback": [{"card": "c", "outcome": "overridden"}]}),
        json!({"feedback": [entry(1), {"card": "c", "outcome": "overridden", "outcomeTimestamp": "soon"}]}),
    ] {
        let r = app.feedback(GRADING, &body).await;
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.expect("JSON");
        assert!(v["error"].is_string(), "{v}");
    }
    assert!(app.state.store.all().await.expect("readable").is_empty());
    assert_eq!(
        app.feedback("no-such-service", &json!({"feedback": [entry(0)]}))
            .await
            .status(),
        404
    );
    app.stop().await;
}

/// Concurrent feedback posts, each acknowledged only after its write committed, all
/// found again after a restart on the same database (SQLite file or PostgreSQL URL).
async fn concurrent_feedback_survives_a_restart_on(database_url: String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("feedback.db");
    let url = database_url.clone();
    let app = spawn_app_on(&db, move |s| s.feedback.database_url = url).await;
    let run = uuid::Uuid::new_v4().to_string();
    let posts = (0..24).map(|i| {
        let body = json!({"feedback": [{"card": format!("{run}-{i}"), "outcome": "accepted", "acceptedSuggestions": [{"id": "s"}],
            "outcomeTimestamp": "2026-03-10T10:05:31Z"}]});
        let app = &app;
        async move { app.feedback(GRADING, &body).await.status().as_u16() }
    });
    let statuses = futures::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    app.stop().await;

    let app = spawn_app_on(&db, move |s| s.feedback.database_url = database_url).await;
    let stored = app.state.store.all().await.expect("readable");
    for i in 0..24 {
        let card = format!("{run}-{i}");
        assert!(
            stored.iter().any(|s| s.card_uuid == card),
            "{card} acknowledged but lost"
        );
    }
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_feedback_survives_a_restart_in_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("shared.db").display()
    );
    concurrent_feedback_survives_a_restart_on(url).await;
}

/// PostgreSQL (several replicas): `.ci/run` starts a server on loopback and sets
/// `CRS_CDS_TEST_POSTGRES_URL`. Outside CI, without the variable, the test is skipped;
/// in CI its absence is a failure.
#[tokio::test]
async fn concurrent_feedback_survives_a_restart_in_postgresql() {
    let Ok(url) = std::env::var("CRS_CDS_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide CRS_CDS_TEST_POSTGRES_URL"
        );
        eprintln!("CRS_CDS_TEST_POSTGRES_URL not set: PostgreSQL feedback test skipped");
        return;
    };
    concurrent_feedback_survives_a_restart_on(url).await;
}
