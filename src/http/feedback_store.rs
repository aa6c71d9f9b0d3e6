//! Durable feedback (CDS Hooks 2.0.1 "Feedback"): SQLite by default, PostgreSQL by URL
//! scheme. A write is acknowledged only after its transaction commits.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::protocol::feedback::Feedback;

/// The statements whose spelling differs between the two databases.
struct Dialect {
    schema: &'static str,
    insert: &'static str,
}

const SQLITE: Dialect = Dialect {
    schema: "CREATE TABLE IF NOT EXISTS cds_feedback (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        service_id TEXT NOT NULL,
        card_uuid TEXT NOT NULL,
        outcome TEXT NOT NULL,
        accepted_suggestions TEXT NOT NULL,
        override_reason TEXT,
        outcome_timestamp TEXT NOT NULL,
        received_at TEXT NOT NULL
    )",
    insert: "INSERT INTO cds_feedback (service_id, card_uuid, outcome, accepted_suggestions, override_reason, outcome_timestamp, received_at) VALUES (?, ?, ?, ?, NULLIF(?, ''), ?, ?)",
};

const POSTGRES: Dialect = Dialect {
    schema: "CREATE TABLE IF NOT EXISTS cds_feedback (
        id BIGSERIAL PRIMARY KEY,
        service_id TEXT NOT NULL,
        card_uuid TEXT NOT NULL,
        outcome TEXT NOT NULL,
        accepted_suggestions TEXT NOT NULL,
        override_reason TEXT,
        outcome_timestamp TEXT NOT NULL,
        received_at TEXT NOT NULL
    )",
    insert: "INSERT INTO cds_feedback (service_id, card_uuid, outcome, accepted_suggestions, override_reason, outcome_timestamp, received_at) VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7)",
};

/// Runs the same code on whichever pool the store holds, with that database's dialect.
/// (sqlx's pools are different types per database, so one body serves both arms.)
macro_rules! on_pool {
    ($store:expr, |$pool:ident, $dialect:ident| $body:expr) => {
        match $store {
            FeedbackStore::Sqlite($pool) => {
                let $dialect = &SQLITE;
                $body
            }
            FeedbackStore::Postgres($pool) => {
                let $dialect = &POSTGRES;
                $body
            }
        }
    };
}

const INDEX: &str = "CREATE INDEX IF NOT EXISTS cds_feedback_card ON cds_feedback (card_uuid)";

/// A stored feedback row (read back by tests and operators).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFeedback {
    /// The service.
    pub service_id: String,
    /// The card uuid.
    pub card_uuid: String,
    /// `accepted` or `overridden`.
    pub outcome: String,
}

/// The feedback database.
#[derive(Clone, Debug)]
pub enum FeedbackStore {
    /// A SQLite file.
    Sqlite(SqlitePool),
    /// A PostgreSQL database.
    Postgres(PgPool),
}

impl FeedbackStore {
    /// Connects by URL scheme (`sqlite:` or `postgres://`).
    pub async fn connect(url: &str) -> Result<FeedbackStore, sqlx::Error> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await?;
            Ok(FeedbackStore::Postgres(pool))
        } else {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk before the feedback is acknowledged.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?;
            Ok(FeedbackStore::Sqlite(pool))
        }
    }

    /// Creates the table if needed (idempotent; run at start-up).
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, |p, dialect| {
            sqlx::query(dialect.schema).execute(p).await?;
            sqlx::query(INDEX).execute(p).await?;
        });
        Ok(())
    }

    /// Stores every entry in one transaction.
    pub async fn record(&self, service_id: &str, entries: &[Feedback]) -> Result<(), sqlx::Error> {
        let received_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let rows: Vec<[String; 5]> = entries
            .iter()
            .map(|f| {
                [
                    f.card.clone(),
                    f.outcome.name().to_string(),
                    serde_json::to_string(&f.accepted_suggestions).unwrap_or_else(|_| "[]".into()),
                    f.override_reason
                        .as_ref()
                        .and_then(|r| serde_json::to_string(r).ok())
                        .unwrap_or_default(),
                    f.outcome_timestamp.clone(),
                ]
            })
            .collect();
        on_pool!(self, |p, dialect| {
            let mut tx = p.begin().await?;
            for [card, outcome, accepted, reason, ts] in &rows {
                sqlx::query(dialect.insert)
                    .bind(service_id)
                    .bind(card)
                    .bind(outcome)
                    .bind(accepted)
                    .bind(reason)
                    .bind(ts)
                    .bind(&received_at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
    }

    /// Every stored row, oldest first.
    pub async fn all(&self) -> Result<Vec<StoredFeedback>, sqlx::Error> {
        use sqlx::Row;
        const Q: &str = "SELECT service_id, card_uuid, outcome FROM cds_feedback ORDER BY id";
        let rows: Vec<(String, String, String)> = on_pool!(self, |p, _dialect| {
            sqlx::query(Q)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<_, sqlx::Error>>()?
        });
        Ok(rows
            .into_iter()
            .map(|(service_id, card_uuid, outcome)| StoredFeedback {
                service_id,
                card_uuid,
                outcome,
            })
            .collect())
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, |p, _dialect| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|_| ()))
    }

    /// Closes the pool (tests restart the app on the same file).
    pub async fn close(&self) {
        on_pool!(self, |p, _dialect| p.close().await)
    }
}
