//! The actix-web service: routes, the FHIR client, the feedback store, metrics.
//!
//! The only layer that touches actix, tokio, reqwest, sqlx or spans. It may use every
//! other module; nothing else depends on it except `cli`.

pub mod cpu;
pub mod error;
pub mod feedback_store;
pub mod fhir_client;
pub mod hold_payload;
pub mod metrics;
pub mod routes;
pub mod span;
pub mod startup;

pub use error::ApiError;
pub use startup::{AppState, Application};
