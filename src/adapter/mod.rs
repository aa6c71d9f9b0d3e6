//! FHIR R4 JSON → domain facts.
//!
//! Depends on `domain` and the `fhir-r4` wrapper crate (fhirbolt typed model), and uses
//! `serde_json` for input triage only. Synchronous, no IO, no logging. Problems in the
//! input are returned as [`AdapterIssue`]s beside the facts, never as a panic or error.
//!
//! CONTRACT (used by `protocol`, `http` and `cli`; keep the signatures stable):
//! - [`Terminology::embedded`] loads the codes from `fhir-profiles/` (embedded).
//! - [`Terminology::with_concept_map`] adds a site ConceptMap (FHIR JSON text).
//! - [`map_documents`] turns FHIR JSON documents (each a Bundle of any type or a single
//!   resource, e.g. one per prefetch key) plus optional draft orders into [`Mapped`].

use crate::domain::{DoseOrder, PatientFacts, Timestamp};

/// The codes the adapter recognises, loaded from `fhir-profiles/`.
#[derive(Clone, Debug, Default)]
pub struct Terminology {}

impl Terminology {
    /// The project's embedded code lists.
    pub fn embedded() -> Terminology {
        Terminology {}
    }

    /// Adds a site ConceptMap (FHIR R4 JSON) mapping local codes onto known codes.
    pub fn with_concept_map(self, _concept_map_json: &str) -> Result<Terminology, AdapterIssue> {
        Ok(self)
    }
}

/// One FHIR JSON document handed to the adapter.
#[derive(Clone, Copy, Debug)]
pub struct Document<'a> {
    /// Where it came from (a prefetch key, "fhirServer", "draftOrders", a file name).
    pub origin: &'a str,
    /// The JSON text: a Bundle (any type) or a single resource.
    pub json: &'a str,
}

/// A problem found in the input; the rest of the input is still used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterIssue {
    /// The document origin and, when known, the resource (`Observation/abc`).
    pub location: String,
    /// What is wrong, in words ("unknown unit 'degK' for temperature: value not used").
    pub message: String,
}

/// The adapter's result.
#[derive(Clone, Debug, Default)]
pub struct Mapped {
    /// The clinical facts.
    pub facts: PatientFacts,
    /// Draft orders of checked drugs (tocilizumab and biosimilars, steroids,
    /// siltuximab, anakinra, sargramostim).
    pub orders: Vec<DoseOrder>,
    /// Problems found.
    pub issues: Vec<AdapterIssue>,
}

impl Mapped {
    /// Whether a CAR-T infusion is on record (else patient-view answers no cards).
    pub fn has_infusion(&self) -> bool {
        self.facts.infusion.is_some()
    }
}

/// Maps FHIR documents (and `draftOrders`, restricted to `selections` when given) to
/// domain facts at the evaluation instant `now`.
pub fn map_documents(
    _documents: &[Document<'_>],
    _draft_orders: Option<Document<'_>>,
    _selections: &[String],
    _now: Timestamp,
    _terminology: &Terminology,
) -> Mapped {
    Mapped::default()
}
