//! The project's single entry into fhirbolt's R4 JSON parser.
//!
//! fhirbolt's generated parsing code is generic and is compiled again in every crate
//! that instantiates it. Keeping the one instantiation here, behind non-generic
//! functions, halves cold builds (see `../shared/reference/stack-notes.md`).
//! This crate re-exports the typed model so callers never name `fhirbolt::json`.

pub use fhirbolt::model::r4::{Resource, resources, types};

/// How strictly unknown or missing elements are treated while parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Unknown elements are dropped, as an integration partner expects.
    Compatibility,
    /// Unknown elements are an error.
    Strict,
}

/// Parses one FHIR R4 resource from JSON text into the typed model.
///
/// Always parse through the `Resource` enum: `from_slice::<Bundle>` in fhirbolt 0.4.0
/// fails on bundles with more than one entry.
pub fn parse_resource(json: &str, mode: Mode) -> Result<Resource, String> {
    let config = fhirbolt::serde::DeserializationConfig {
        mode: match mode {
            Mode::Compatibility => fhirbolt::serde::DeserializationMode::Compatibility,
            Mode::Strict => fhirbolt::serde::DeserializationMode::Strict,
        },
    };
    fhirbolt::json::from_str::<Resource>(json, Some(config)).map_err(|e| e.to_string())
}
