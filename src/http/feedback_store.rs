//! Durable feedback (CDS Hooks 2.0.1 "Feedback"): SQLite by default, PostgreSQL by URL
//! scheme. A write is acknowledged only after its transaction commits.
//!
//! A connection that failed anywhere in a write is closed, never returned to the pool: after
//! an error SQLite may have rolled the transaction back on its own (disk full, `RAISE
//! (ROLLBACK)`), sqlx's count of open transactions no longer matches, and a pooled
//! connection in that state turns every later `BEGIN`/`COMMIT` into a savepoint that never
//! commits while holding the write lock (issue 10, fault 1).
//!
//! Each feedback item is stored once: (card uuid, outcome, outcomeTimestamp) is unique and
//! a retry is an insert that does nothing.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::protocol::feedback::Feedback;

/// The statements whose spelling differs between the two databases.
struct Dialect {
    schema: &'static str,
    insert: &'static str,
    readiness_schema: &'static str,
    readiness_write: &'static str,
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
    insert: "INSERT INTO cds_feedback (service_id, card_uuid, outcome, accepted_suggestions, override_reason, outcome_timestamp, received_at) VALUES (?, ?, ?, ?, NULLIF(?, ''), ?, ?) ON CONFLICT DO NOTHING",
    readiness_schema: "CREATE TABLE IF NOT EXISTS cds_readiness (id INTEGER PRIMARY KEY, checked_at TEXT NOT NULL)",
    readiness_write: "INSERT INTO cds_readiness (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
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
    insert: "INSERT INTO cds_feedback (service_id, card_uuid, outcome, accepted_suggestions, override_reason, outcome_timestamp, received_at) VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7) ON CONFLICT DO NOTHING",
    readiness_schema: "CREATE TABLE IF NOT EXISTS cds_readiness (id INTEGER PRIMARY KEY, checked_at TEXT NOT NULL)",
    readiness_write: "INSERT INTO cds_readiness (id, checked_at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
};

/// The shared `jti` replay cache (PostgreSQL only: several replicas, one cache).
const JTI_SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS cds_jti (jti_key TEXT PRIMARY KEY, valid_until BIGINT NOT NULL)";
/// Insert-if-absent, or take over an expired entry; one row affected means first use.
const JTI_RECORD: &str = "INSERT INTO cds_jti (jti_key, valid_until) VALUES ($1, $2) ON CONFLICT (jti_key) DO UPDATE SET valid_until = excluded.valid_until WHERE cds_jti.valid_until < $3";
const JTI_PURGE: &str = "DELETE FROM cds_jti WHERE valid_until < $1";

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

/// Rows stored twice before the idempotency key existed are reduced to the first, so the
/// unique index can be built on an existing database.
const DEDUPLICATE: &str = "DELETE FROM cds_feedback WHERE id NOT IN (SELECT MIN(id) FROM cds_feedback GROUP BY card_uuid, outcome, outcome_timestamp)";
/// The idempotency key of a feedback item: card uuid + outcome + outcomeTimestamp.
const UNIQUE: &str = "CREATE UNIQUE INDEX IF NOT EXISTS cds_feedback_once ON cds_feedback (card_uuid, outcome, outcome_timestamp)";

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

/// Whether a feedback database URL names PostgreSQL (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl FeedbackStore {
    /// Connects by URL scheme (`sqlite:` or `postgres://`).
    pub async fn connect(url: &str) -> Result<FeedbackStore, sqlx::Error> {
        if is_postgres_url(url) {
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
            sqlx::query(DEDUPLICATE).execute(p).await?;
            sqlx::query(UNIQUE).execute(p).await?;
            sqlx::query(dialect.readiness_schema).execute(p).await?;
        });
        if let FeedbackStore::Postgres(p) = self {
            sqlx::query(JTI_SCHEMA).execute(p).await?;
        }
        Ok(())
    }

    /// Records a `jti` key until `valid_until` unless it is there and unexpired; whether
    /// this was its first use. PostgreSQL only (SQLite deployments use the per-process
    /// cache); expired rows are purged now and then.
    pub async fn record_jti(
        &self,
        key: &str,
        valid_until: u64,
        now: u64,
    ) -> Result<bool, sqlx::Error> {
        let FeedbackStore::Postgres(p) = self else {
            return Err(sqlx::Error::Configuration(
                "the shared replay cache needs PostgreSQL".into(),
            ));
        };
        let until = i64::try_from(valid_until).unwrap_or(i64::MAX);
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let done = sqlx::query(JTI_RECORD)
            .bind(key)
            .bind(until)
            .bind(now)
            .execute(p)
            .await?;
        if now % 64 == 0 {
            sqlx::query(JTI_PURGE).bind(now).execute(p).await?;
        }
        Ok(done.rows_affected() == 1)
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
            let mut conn = p.acquire().await?;
            let result = async {
                let mut tx = conn.begin().await?;
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
            }
            .await;
            if result.is_err() {
                // Never back into the pool: its transaction state is unknown.
                conn.close_on_drop();
            }
            result
        })
    }

    /// Commits a small write (the readiness row), on a connection discarded on failure:
    /// `/readyz` is ready only when a feedback write could commit now.
    pub async fn check_write(&self) -> Result<(), sqlx::Error> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        on_pool!(self, |p, dialect| {
            let mut conn = p.acquire().await?;
            let result = async {
                let mut tx = conn.begin().await?;
                sqlx::query(dialect.readiness_write)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            }
            .await;
            if result.is_err() {
                conn.close_on_drop();
            }
            result
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

/// The feedback store once it is up: start-up does not wait for the database (hook calls
/// are served meanwhile; feedback and `/readyz` answer 503 until it is connected).
#[derive(Clone, Debug, Default)]
pub struct StoreHandle {
    slot: std::sync::Arc<std::sync::OnceLock<FeedbackStore>>,
}

impl StoreHandle {
    /// The store, if connected and migrated.
    pub fn get(&self) -> Option<&FeedbackStore> {
        self.slot.get()
    }

    /// Sets the store (once).
    pub fn set(&self, store: FeedbackStore) {
        let _ = self.slot.set(store);
    }

    /// Every stored row (an error while the store is not up).
    pub async fn all(&self) -> Result<Vec<StoredFeedback>, sqlx::Error> {
        match self.get() {
            Some(s) => s.all().await,
            None => Err(sqlx::Error::PoolClosed),
        }
    }

    /// Closes the store, if up.
    pub async fn close(&self) {
        if let Some(s) = self.get() {
            s.close().await;
        }
    }

    /// Connects and migrates, retrying with backoff (0.5 s doubling to 30 s) until it
    /// works; logs each failure without the URL (it may hold a password).
    pub async fn connect_with_retry(&self, url: String) {
        let mut delay = Duration::from_millis(500);
        loop {
            match connect_and_migrate(&url).await {
                Ok(store) => {
                    tracing::info!("feedback database connected");
                    self.set(store);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "feedback database unavailable; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Connects by URL and runs the migrations.
pub async fn connect_and_migrate(url: &str) -> Result<FeedbackStore, sqlx::Error> {
    let store = FeedbackStore::connect(url).await?;
    store.migrate().await?;
    Ok(store)
}

/// The PostgreSQL `jti` cache shared by replicas, for [`crate::auth::Verifier`].
#[derive(Clone, Debug)]
pub struct SharedJtiCache(pub StoreHandle);

impl crate::auth::SharedReplayCache for SharedJtiCache {
    fn first_use<'a>(
        &'a self,
        key: &'a str,
        valid_until: u64,
        now: u64,
    ) -> futures::future::BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let store = self.0.get().ok_or("the database is not connected yet")?;
            tokio::time::timeout(
                Duration::from_secs(1),
                store.record_jti(key, valid_until, now),
            )
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())
        })
    }
}
