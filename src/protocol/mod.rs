//! CDS Hooks wire types and the mapping from domain results to cards.
//!
//! Depends on `domain` and serde/serde_json only; never on fhirbolt, actix or reqwest.
//! Every JSON shape the service speaks is defined here, by explicit conversion
//! functions (domain types are not serializable on purpose).

pub mod cards;
pub mod course;
pub mod discovery;
pub mod extension;
pub mod feedback;
pub mod request;

pub use extension::{extension, format_time};
