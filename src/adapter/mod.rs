//! FHIR R4 JSON → domain facts.
//!
//! Depends on `domain` and the `fhir-r4` wrapper crate (fhirbolt typed model), and uses
//! `serde_json` for input triage only. Synchronous, no IO, no logging. Problems in the
//! input are returned as [`AdapterIssue`]s beside the facts, never as a panic or error.
//! Must not depend on `protocol` or `http`.
//!
//! CONTRACT (used by `protocol`, `http` and `cli`; keep the signatures stable):
//! - [`Terminology::embedded`] loads the codes from `fhir-profiles/` (embedded).
//! - [`Terminology::with_concept_map`] adds a site ConceptMap (FHIR JSON text).
//! - [`map_documents`] turns FHIR JSON documents (each a Bundle of any type or a single
//!   resource, e.g. one per prefetch key) plus optional draft orders into [`Mapped`].
//!
//! How (issue 3, "Speed"): every Bundle entry is first read as raw JSON into a small
//! flat triage struct (type, id, status, codes, medication). Triage dedupes, drops
//! statuses that do not count and codes the engine does not use, and looks for a CAR-T
//! infusion. With no infusion on record the adapter returns at once, without typed
//! parsing (the service then answers no cards). Only the entries the engine can use go
//! through fhirbolt's typed parser (`fhir_r4::parse_resource`), in [`map`].

mod map;
#[doc(hidden)]
pub mod prefilter;
#[doc(hidden)]
pub mod synth;
mod terminology;
mod time;
mod units;

#[cfg(test)]
mod realworld_tests;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::domain::{CarTProduct, DoseOrder, Drug, PatientFacts, Timestamp};

pub use terminology::Terminology;
use terminology::{CodingRef, Concept, Sets};

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
    /// Resources skipped because their status does not count (entered-in-error,
    /// cancelled, stopped, not-done, ...), for debugging.
    pub ignored_by_status: usize,
    /// Resources skipped because they repeat a `resourceType/id` already read.
    pub duplicates: usize,
    /// Resources handed to fhirbolt's typed parser.
    pub typed_parses: usize,
    /// Runs of fhirbolt's parser over those resources (a resource with unknown
    /// elements costs more than one; issue 10, fault 3).
    pub parse_attempts: usize,
    /// Observations skipped before typed parsing because they are older than the
    /// window their concept is graded over.
    pub outside_window: usize,
    /// Whether the byte-level prefilter found no CAR-T infusion candidate, so the
    /// documents were not read at all (no issues are reported then: no cards follow).
    pub prefiltered: bool,
    /// Set when more entries needed typed parsing than the cap allowed
    /// ([`map_documents_capped`]): then nothing past the infusion was parsed and nothing
    /// may be graded.
    pub over_parse_limit: Option<ParseLimit>,
}

/// The entries a request needed typed-parsed, over the cap (`server.max_parsed_entries`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseLimit {
    /// Entries the engine would have used: infusions, then the triaged Patients,
    /// Observations, medications and procedures, and the checked draft orders.
    pub entries: usize,
    /// The cap.
    pub limit: usize,
    /// The drugs of the draft orders whose doses were therefore not checked, in order.
    pub unchecked_orders: Vec<Drug>,
}

impl Mapped {
    /// Whether a CAR-T infusion is on record (else patient-view answers no cards).
    pub fn has_infusion(&self) -> bool {
        self.facts.infusion.is_some()
    }
}

// ---------------------------------------------------------------------------------
// Triage: small flat serde structs (stack-notes.md: no untagged/flatten, because
// fhirbolt turns on serde_json's arbitrary_precision).

#[derive(Deserialize)]
struct TopJson<'a> {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    #[serde(borrow, default)]
    entry: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct EntryJson<'a> {
    #[serde(borrow, default)]
    resource: Option<&'a RawValue>,
    #[serde(rename = "fullUrl")]
    full_url: Option<String>,
    search: Option<SearchJson>,
}

#[derive(Deserialize)]
struct SearchJson {
    mode: Option<String>,
}

#[derive(Deserialize)]
struct OutcomeIssueJson {
    severity: Option<String>,
}

/// An ingredient of a Medication: `itemCodeableConcept` or `itemReference`.
#[derive(Deserialize, Default, Clone)]
struct IngredientJson {
    #[serde(rename = "itemCodeableConcept")]
    item_cc: Option<CcJson>,
    #[serde(rename = "itemReference")]
    item_ref: Option<RefJson>,
}

#[derive(Deserialize, Default)]
struct TriageJson {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    id: Option<String>,
    status: Option<String>,
    code: Option<CcJson>,
    #[serde(rename = "medicationCodeableConcept")]
    medication_cc: Option<CcJson>,
    #[serde(rename = "medicationReference")]
    medication_ref: Option<RefJson>,
    #[serde(default)]
    contained: Vec<ContainedJson>,
    /// A Medication's ingredients.
    #[serde(default)]
    ingredient: Vec<IngredientJson>,
    /// Whom the resource is about.
    subject: Option<RefJson>,
    patient: Option<RefJson>,
    /// An OperationOutcome's issues.
    #[serde(default)]
    issue: Vec<OutcomeIssueJson>,
    #[serde(rename = "effectiveDateTime")]
    effective_date_time: Option<String>,
    #[serde(rename = "effectivePeriod")]
    effective_period: Option<PeriodJson>,
    issued: Option<String>,
}

#[derive(Deserialize)]
struct PeriodJson {
    end: Option<String>,
}

impl TriageJson {
    /// The latest instant an Observation speaks for, when triage can tell: `None` for
    /// no time or an open period (still running), so the entry is not skipped.
    fn observed_until(&self) -> Option<Timestamp> {
        if let Some(p) = &self.effective_period {
            return p.end.as_deref().and_then(time::parse_time);
        }
        self.effective_date_time
            .as_deref()
            .or(self.issued.as_deref())
            .and_then(time::parse_time)
    }
}

#[derive(Deserialize, Default, Clone)]
struct CcJson {
    #[serde(default)]
    coding: Vec<CodingJson>,
    text: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
struct CodingJson {
    system: Option<String>,
    code: Option<String>,
    display: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
struct RefJson {
    reference: Option<String>,
    display: Option<String>,
}

#[derive(Deserialize)]
struct ContainedJson {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    id: Option<String>,
    code: Option<CcJson>,
    #[serde(default)]
    ingredient: Vec<IngredientJson>,
}

/// What a Medication resource says about the drug: its code, then its ingredients.
#[derive(Clone, Default)]
struct MedicationJson {
    code: Option<CcJson>,
    ingredient: Vec<IngredientJson>,
}

impl CcJson {
    fn view(&self) -> Concept<'_> {
        Concept {
            codings: self
                .coding
                .iter()
                .map(|c| CodingRef {
                    system: c.system.as_deref(),
                    code: c.code.as_deref(),
                    display: c.display.as_deref(),
                })
                .collect(),
            text: self.text.as_deref(),
        }
    }
}

/// A resource after triage.
struct Item<'a> {
    origin: &'a str,
    raw: &'a RawValue,
    triage: TriageJson,
    /// `resourceType/id`.
    reference: String,
    /// The Bundle entry's `fullUrl` (`urn:uuid:…` or an absolute URL), when given.
    full_url: Option<String>,
}

impl Item<'_> {
    fn kind(&self) -> &str {
        self.triage.resource_type.as_deref().unwrap_or("")
    }

    fn status(&self) -> &str {
        self.triage.status.as_deref().unwrap_or("")
    }

    fn location(&self) -> String {
        format!("{}: {}", self.origin, self.reference)
    }
}

/// FHIR-INPUTS.md "Statuses that count" (draft MedicationRequests only in draftOrders).
fn status_counts(kind: &str, status: &str, draft: bool) -> bool {
    match kind {
        "Observation" => matches!(status, "final" | "amended" | "corrected" | "preliminary"),
        "MedicationAdministration" => matches!(status, "in-progress" | "completed"),
        "MedicationRequest" if draft => matches!(status, "active" | "draft"),
        "MedicationRequest" => status == "active",
        "Procedure" => matches!(status, "in-progress" | "completed"),
        _ => true,
    }
}

/// What a medication resource names, resolved at triage.
#[derive(Clone, Copy, Debug, Default)]
struct MedicationKind {
    drug: Option<Drug>,
    product: Option<CarTProduct>,
    /// Named a CAR-T product (even if not one of the seven by key).
    cart: bool,
    /// A `medicationReference` that could not be resolved and whose display names no
    /// known drug.
    unidentified: bool,
}

struct Collector<'a> {
    issues: Vec<AdapterIssue>,
    seen: HashSet<String>,
    items: Vec<Item<'a>>,
    ignored_by_status: usize,
    duplicates: usize,
}

impl<'a> Collector<'a> {
    fn new() -> Self {
        Collector {
            issues: Vec::new(),
            seen: HashSet::new(),
            items: Vec::new(),
            ignored_by_status: 0,
            duplicates: 0,
        }
    }

    fn issue(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.issues.push(AdapterIssue {
            location: location.into(),
            message: message.into(),
        });
    }

    /// Reads one document (a Bundle or a single resource) into triage items.
    fn collect(&mut self, doc: &Document<'a>, draft: bool) {
        let trimmed = doc.json.trim();
        if trimmed.is_empty() || trimmed == "null" {
            self.issue(doc.origin, "no data (null or empty document)");
            return;
        }
        let top: TopJson<'a> = match serde_json::from_str(doc.json) {
            Ok(t) => t,
            Err(e) => {
                self.issue(doc.origin, format!("not a FHIR JSON resource: {e}"));
                return;
            }
        };
        if top.resource_type.as_deref() == Some("Bundle") {
            self.entries(doc.origin, top, draft, 0);
        } else {
            match serde_json::from_str::<&'a RawValue>(doc.json) {
                Ok(raw) => self.add(doc.origin, raw, draft, 0, None, false, 0),
                Err(e) => self.issue(doc.origin, format!("not a FHIR JSON resource: {e}")),
            }
        }
    }

    /// The entries of a Bundle at nesting `depth` (0: a document; 1: a Bundle inside
    /// one, e.g. a `batch-response` of searchsets, read one level deep: FHIR-INPUTS.md
    /// "Real-world encodings", "Nested Bundles").
    fn entries(&mut self, origin: &'a str, top: TopJson<'a>, draft: bool, depth: usize) {
        for (i, entry) in top.entry.unwrap_or_default().into_iter().enumerate() {
            match serde_json::from_str::<EntryJson<'a>>(entry.get()) {
                Ok(EntryJson {
                    resource: Some(raw),
                    full_url,
                    search,
                }) => {
                    let outcome_mode = search.and_then(|s| s.mode).as_deref() == Some("outcome");
                    self.add(origin, raw, draft, i, full_url, outcome_mode, depth);
                }
                Ok(EntryJson { resource: None, .. }) => {}
                Err(_) => self.issue(
                    origin,
                    format!("Bundle entry {i} is not an object: ignored"),
                ),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        origin: &'a str,
        raw: &'a RawValue,
        draft: bool,
        index: usize,
        full_url: Option<String>,
        outcome_mode: bool,
        depth: usize,
    ) {
        let triage: TriageJson = match serde_json::from_str(raw.get()) {
            Ok(t) => t,
            Err(e) => {
                self.issue(
                    origin,
                    format!("entry {index} is not a readable resource: {e}"),
                );
                return;
            }
        };
        let Some(kind) = triage.resource_type.clone() else {
            self.issue(
                origin,
                format!("entry {index} has no resourceType: ignored"),
            );
            return;
        };
        let reference = match &triage.id {
            Some(id) => format!("{kind}/{id}"),
            None => format!("{kind}/(entry {index}, no id)"),
        };
        if kind == "Bundle" {
            if depth > 0 {
                self.issue(
                    format!("{origin}: {reference}"),
                    "a Bundle nested more than one level deep: not read",
                );
                return;
            }
            match serde_json::from_str::<TopJson<'a>>(raw.get()) {
                Ok(top) => self.entries(origin, top, draft, depth + 1),
                Err(e) => self.issue(
                    format!("{origin}: {reference}"),
                    format!("not a readable Bundle: {e}"),
                ),
            }
            return;
        }
        if kind == "OperationOutcome" {
            if outcome_is_problem(&triage.issue, outcome_mode) {
                self.issue(
                    format!("{origin}: {reference}"),
                    "the server returned an OperationOutcome instead of data",
                );
            }
            // Otherwise an empty search ("no results", Epic 4101): no data, no problem.
            return;
        }
        if triage.id.is_some() && !self.seen.insert(reference.clone()) {
            // The same resource from two prefetch keys: counted once.
            self.duplicates += 1;
            return;
        }
        if !status_counts(&kind, triage.status.as_deref().unwrap_or(""), draft) {
            self.ignored_by_status += 1;
            return;
        }
        self.items.push(Item {
            origin,
            raw,
            triage,
            reference,
            full_url,
        });
    }

    /// Drops the resources about another patient than `patient_id` (FHIR-INPUTS.md
    /// "Real-world encodings", "Subject"), with one issue per document naming them.
    fn keep_patient(&mut self, patient_id: &str) {
        let full_urls: HashMap<&str, &str> = self
            .items
            .iter()
            .filter_map(|i| Some((i.full_url.as_deref()?, i.reference.as_str())))
            .collect();
        let mut dropped: Vec<(&'a str, String)> = Vec::new();
        let mut keep = Vec::with_capacity(self.items.len());
        for item in &self.items {
            let other = if item.kind() == "Patient" {
                item.triage.id.as_deref().is_some_and(|id| id != patient_id)
            } else {
                item.triage
                    .subject
                    .as_ref()
                    .or(item.triage.patient.as_ref())
                    .and_then(|r| r.reference.as_deref())
                    .and_then(|r| referenced_patient(r, &full_urls))
                    .is_some_and(|id| id != patient_id)
            };
            if other {
                dropped.push((item.origin, item.reference.clone()));
            }
            keep.push(!other);
        }
        if dropped.is_empty() {
            return;
        }
        let mut keep = keep.into_iter();
        self.items.retain(|_| keep.next().unwrap_or(true));
        let mut origins: Vec<&str> = dropped.iter().map(|(o, _)| *o).collect();
        origins.dedup();
        for origin in origins {
            let refs: Vec<&str> = dropped
                .iter()
                .filter(|(o, _)| *o == origin)
                .map(|(_, r)| r.as_str())
                .collect();
            let shown = refs.iter().take(5).copied().collect::<Vec<_>>().join(", ");
            let more = if refs.len() > 5 { ", …" } else { "" };
            self.issue(
                origin,
                format!(
                    "{} resource(s) about another patient than context.patientId not used: {shown}{more}",
                    refs.len()
                ),
            );
        }
    }
}

/// Whether an OperationOutcome entry is an input problem: any `error`/`fatal` issue,
/// or no issue at all outside a search `outcome` entry. Only `information`/`warning`
/// issues (Epic's 4101 "no results"), or an outcome entry of a search, mean "no data"
/// (FHIR-INPUTS.md "Real-world encodings", "Empty searches").
fn outcome_is_problem(issues: &[OutcomeIssueJson], outcome_mode: bool) -> bool {
    let serious = issues
        .iter()
        .any(|i| !matches!(i.severity.as_deref(), Some("information" | "warning")));
    serious || (issues.is_empty() && !outcome_mode)
}

/// The patient id a `subject`/`patient` reference names: `Patient/x`, an absolute
/// `…/Patient/x`, `Patient/x/_history/n`, or a `urn:uuid:` fullUrl of a Patient entry.
/// `None` when the reference names something else than a Patient (a Group, a Location)
/// or a `urn:uuid:` that no entry has: then nobody can tell whose it is, and the
/// resource is kept (dropping an infusion would silently answer no cards).
fn referenced_patient<'r>(
    reference: &'r str,
    full_urls: &HashMap<&str, &'r str>,
) -> Option<&'r str> {
    let reference = match full_urls.get(reference) {
        Some(r) => *r,
        None if reference.starts_with("urn:uuid:") => return None,
        None => reference,
    };
    let pos = reference.rfind("Patient/")?;
    let after = reference.get(pos + 8..)?;
    let before_ok = pos == 0 || reference.get(..pos).is_some_and(|b| b.ends_with('/'));
    before_ok.then(|| after.split('/').next().unwrap_or(after))
}

/// The `Medication/id` a reference names (relative, absolute or with `_history`).
fn medication_key(reference: &str) -> Option<String> {
    let pos = reference.rfind("Medication/")?;
    let before_ok = pos == 0 || reference.get(..pos).is_some_and(|b| b.ends_with('/'));
    let id = reference.get(pos + 11..)?.split('/').next()?;
    (before_ok && !id.is_empty()).then(|| format!("Medication/{id}"))
}

/// The Medications of the documents, by `Medication/id` and by entry `fullUrl`.
fn medication_index(items: &[Item<'_>]) -> HashMap<String, MedicationJson> {
    let mut out = HashMap::new();
    for i in items.iter().filter(|i| i.kind() == "Medication") {
        let m = MedicationJson {
            code: i.triage.code.clone(),
            ingredient: i.triage.ingredient.clone(),
        };
        if let Some(url) = &i.full_url {
            out.entry(url.clone()).or_insert_with(|| m.clone());
        }
        out.entry(i.reference.clone()).or_insert(m);
    }
    out
}

/// Finds the Medication a reference names among `medications`.
fn find_medication<'m>(
    reference: &str,
    medications: &'m HashMap<String, MedicationJson>,
) -> Option<&'m MedicationJson> {
    medications
        .get(reference)
        .or_else(|| medication_key(reference).and_then(|k| medications.get(&k)))
}

/// Resolves what the medication of a MedicationAdministration / MedicationRequest is
/// (FHIR-INPUTS.md "Real-world encodings", "Medication identity"):
/// `medicationCodeableConcept`, or `medicationReference` to a contained Medication
/// (`#id`) or to a Medication in any of the documents (`Medication/id`, an absolute URL
/// or a `urn:uuid:` fullUrl), or the reference's `display`; inside the Medication by
/// `code`, then by `ingredient[].itemCodeableConcept` (or an ingredient reference).
fn medication_kind(
    item: &Item<'_>,
    medications: &HashMap<String, MedicationJson>,
    terminology: &Terminology,
) -> MedicationKind {
    let t = &item.triage;
    if let Some(cc) = &t.medication_cc {
        return classify(&cc.view(), terminology);
    }
    let Some(r) = &t.medication_ref else {
        return MedicationKind::default();
    };
    let contained;
    let medication: Option<&MedicationJson> = match r.reference.as_deref() {
        Some(local) if local.starts_with('#') => {
            contained = t
                .contained
                .iter()
                .find(|c| {
                    c.resource_type.as_deref() == Some("Medication")
                        && c.id.as_deref() == local.get(1..)
                })
                .map(|c| MedicationJson {
                    code: c.code.clone(),
                    ingredient: c.ingredient.clone(),
                });
            contained.as_ref()
        }
        Some(reference) => find_medication(reference, medications),
        None => None,
    };
    let mut kind = medication
        .map(|m| medication_resource_kind(m, medications, terminology))
        .unwrap_or_default();
    // A reference's display ("Norepinephrine 4 mg in 250 mL") is text about the drug.
    if kind.drug.is_none()
        && !kind.cart
        && let Some(display) = r.display.as_deref()
    {
        kind = classify(&text_concept(display), terminology);
    }
    kind.unidentified =
        medication.is_none() && kind.drug.is_none() && !kind.cart && r.reference.is_some();
    kind
}

fn text_concept(text: &str) -> Concept<'_> {
    Concept {
        codings: vec![CodingRef {
            system: None,
            code: None,
            display: Some(text),
        }],
        text: None,
    }
}

/// A Medication resource: its `code`, else the first ingredient that names a drug (by
/// `itemCodeableConcept`, or `itemReference` to another Medication or its display).
fn medication_resource_kind(
    m: &MedicationJson,
    medications: &HashMap<String, MedicationJson>,
    terminology: &Terminology,
) -> MedicationKind {
    let named = |k: &MedicationKind| k.drug.is_some() || k.cart;
    if let Some(code) = &m.code {
        let k = classify(&code.view(), terminology);
        if named(&k) {
            return k;
        }
    }
    for ingredient in &m.ingredient {
        let k = if let Some(cc) = &ingredient.item_cc {
            classify(&cc.view(), terminology)
        } else if let Some(r) = &ingredient.item_ref {
            let by_code = r
                .reference
                .as_deref()
                .and_then(|x| find_medication(x, medications))
                .and_then(|inner| inner.code.as_ref())
                .map(|c| classify(&c.view(), terminology))
                .unwrap_or_default();
            if named(&by_code) {
                by_code
            } else {
                r.display
                    .as_deref()
                    .map(|d| classify(&text_concept(d), terminology))
                    .unwrap_or_default()
            }
        } else {
            MedicationKind::default()
        };
        if named(&k) {
            return k;
        }
    }
    MedicationKind::default()
}

fn classify(concept: &Concept<'_>, terminology: &Terminology) -> MedicationKind {
    let product_key = terminology.key(concept, Sets::CART_PRODUCTS);
    MedicationKind {
        drug: terminology
            .key(concept, Sets::DRUGS)
            .and_then(Drug::from_key),
        product: product_key.and_then(CarTProduct::from_key),
        cart: product_key.is_some(),
        unidentified: false,
    }
}

/// Maps FHIR documents (and `draftOrders`, restricted to `selections` when given) to
/// domain facts at the evaluation instant `now`.
pub fn map_documents(
    documents: &[Document<'_>],
    draft_orders: Option<Document<'_>>,
    selections: &[String],
    now: Timestamp,
    terminology: &Terminology,
) -> Mapped {
    map_documents_within(
        documents,
        draft_orders,
        selections,
        now,
        terminology,
        crate::domain::MAX_WINDOW_HOURS,
    )
}

/// How far back an Observation of concept `key` can matter to the engine, in hours, or
/// `None` when any age can: the latest weight whatever its age, the creatinine baseline
/// before the infusion (FHIR-INPUTS.md "Patient", "Laboratory").
fn lookback_hours(key: &str, window_hours: f64) -> Option<f64> {
    match key {
        // A recorded CRS grade documents CRS for the fever waiver whenever it was
        // recorded after the infusion (RULES.md §7 S3).
        "body-weight" | "creatinine" | "crs-grade" => None,
        k if crate::domain::LabKind::from_key(k).is_some()
            || matches!(
                k,
                "hemophagocytosis" | "pulmonary-edema-grade-3" | "oliguria-grade-3"
            ) =>
        {
            Some(crate::domain::LAB_WINDOW_HOURS.max(window_hours))
        }
        _ => Some(window_hours),
    }
}

/// As [`map_documents`], for an engine grading over `window_hours`: vital-sign and
/// neurological Observations older than the window, and labs older than the lab
/// window, are skipped before typed parsing (issue 3, "classify each by … time").
pub fn map_documents_within(
    documents: &[Document<'_>],
    draft_orders: Option<Document<'_>>,
    selections: &[String],
    now: Timestamp,
    terminology: &Terminology,
    window_hours: f64,
) -> Mapped {
    map_documents_for_patient(
        None,
        documents,
        draft_orders,
        selections,
        now,
        terminology,
        window_hours,
    )
}

/// As [`map_documents_within`], for the patient `patient_id` (`context.patientId`):
/// a resource whose `subject`/`patient` names another patient is not used, and an
/// issue says so (FHIR-INPUTS.md "Real-world encodings", "Subject"). `None` checks
/// nothing (a file given to the CLI without a request).
///
/// Before any JSON parsing, the byte-level [`prefilter`] looks for the infusion's codes
/// and product names; when no document holds one, the documents are not read at all
/// and the result has no infusion (`prefiltered`).
pub fn map_documents_for_patient(
    patient_id: Option<&str>,
    documents: &[Document<'_>],
    draft_orders: Option<Document<'_>>,
    selections: &[String],
    now: Timestamp,
    terminology: &Terminology,
    window_hours: f64,
) -> Mapped {
    map_documents_capped(
        patient_id,
        documents,
        draft_orders,
        selections,
        now,
        terminology,
        window_hours,
        usize::MAX,
    )
}

/// What triage pass 2 hands to the typed parser for one entry.
enum Planned {
    Patient,
    Observation(String),
    Administration(Drug),
    Request(Drug),
    Ventilation(String),
    Oxygen(String),
}

/// As [`map_documents_for_patient`], typed-parsing at most `max_parsed` entries
/// (`server.max_parsed_entries`, issue 10). The entries to parse are counted after
/// triage, before any is parsed past the infusions; over the cap none is, and
/// [`Mapped::over_parse_limit`] says how many there were: grading on part of the record
/// could miss the fever or the hypotension that sets the grade, so the caller must not
/// grade (RULES.md §7: missing data is never reassurance).
#[allow(clippy::too_many_arguments)]
pub fn map_documents_capped(
    patient_id: Option<&str>,
    documents: &[Document<'_>],
    draft_orders: Option<Document<'_>>,
    selections: &[String],
    now: Timestamp,
    terminology: &Terminology,
    window_hours: f64,
    max_parsed: usize,
) -> Mapped {
    if let Some(filter) = terminology.prefilter()
        && !documents.iter().any(|d| filter.may_hold_infusion(d.json))
    {
        return Mapped {
            prefiltered: true,
            ..Mapped::default()
        };
    }
    let mut c = Collector::new();
    for doc in documents {
        c.collect(doc, false);
    }
    if let Some(id) = patient_id {
        c.keep_patient(id);
    }

    // Medications anywhere in the documents, for `medicationReference`.
    let medications = medication_index(&c.items);

    // Triage pass 1: the CAR-T infusion (FHIR-INPUTS.md "CAR-T infusion").
    let mut infusions = Vec::new();
    let mut kinds: Vec<MedicationKind> = Vec::with_capacity(c.items.len());
    for item in &c.items {
        let kind = match item.kind() {
            "MedicationAdministration" | "MedicationRequest" => {
                medication_kind(item, &medications, terminology)
            }
            "Procedure" => {
                let concept = item
                    .triage
                    .code
                    .as_ref()
                    .map(CcJson::view)
                    .unwrap_or_default();
                let mut k = classify(&concept, terminology);
                k.cart |= terminology.key(&concept, Sets::CART_INFUSION).is_some();
                k
            }
            _ => MedicationKind::default(),
        };
        if kind.cart && matches!(item.kind(), "Procedure" | "MedicationAdministration") {
            infusions.push(kinds.len());
        }
        if kind.unidentified {
            c.issues.push(unidentified(item));
        }
        kinds.push(kind);
    }

    // Draft orders: MedicationRequest only, restricted to `selections` when given.
    let mut d = Collector::new();
    let mut drafts: Vec<(usize, Drug)> = Vec::new();
    if let Some(doc) = draft_orders {
        d.collect(&doc, true);
        // A draft order may reference a Medication sent along in the draft Bundle.
        let mut medications = medications;
        for (k, v) in medication_index(&d.items) {
            medications.entry(k).or_insert(v);
        }
        for (i, item) in d.items.iter().enumerate() {
            if item.kind() != "MedicationRequest" {
                continue; // other request types are ignored, not rejected
            }
            let selected = selections.is_empty()
                || selections
                    .iter()
                    .any(|s| s == &item.reference || s.ends_with(&format!("/{}", item.reference)));
            if !selected {
                continue;
            }
            let kind = medication_kind(item, &medications, terminology);
            if kind.unidentified {
                d.issues.push(unidentified(item));
            }
            if let Some(drug) = kind.drug {
                drafts.push((i, drug));
            }
        }
    }

    let mut mapped = Mapped::default();
    let mut ctx = map::Context::new(terminology, now);
    ctx.window_hours = window_hours;
    let over = |entries: usize| {
        (entries > max_parsed).then(|| ParseLimit {
            entries,
            limit: max_parsed,
            unchecked_orders: drafts.iter().map(|&(_, drug)| drug).collect(),
        })
    };
    // Too many infusions to parse: the count of the rest assumes no infusion time.
    let early = infusions.len() > max_parsed;
    let mut limit = early
        .then(|| {
            let (plan, _) = plan(
                &c.items,
                &kinds,
                &infusions,
                None,
                now,
                terminology,
                window_hours,
            );
            over(infusions.len() + plan.len() + drafts.len())
        })
        .flatten();
    if !early {
        for &i in &infusions {
            if let (Some(item), Some(kind)) = (c.items.get(i), kinds.get(i)) {
                ctx.infusion(item, kind.product);
            }
        }
    }
    if limit.is_none() && ctx.facts.infusion.is_none() {
        // The common case: not a CAR-T patient. No typed parsing of the rest.
        mapped.issues = c.issues;
        mapped.issues.append(&mut ctx.issues);
        mapped.ignored_by_status = c.ignored_by_status;
        mapped.duplicates = c.duplicates;
        mapped.typed_parses = ctx.typed_parses;
        mapped.parse_attempts = ctx.parser.parses();
        return mapped;
    }

    // Triage pass 2: only what the engine uses goes through the typed parser.
    let infused_at = ctx.facts.infusion.as_ref().map(|i| i.at);
    let (planned, outside_window) = plan(
        &c.items,
        &kinds,
        &infusions,
        infused_at,
        now,
        terminology,
        window_hours,
    );
    if limit.is_none() {
        limit = over(infusions.len() + planned.len() + drafts.len());
    }
    if limit.is_none() {
        for (i, step) in &planned {
            let Some(item) = c.items.get(*i) else {
                continue;
            };
            match step {
                Planned::Patient => ctx.patient(item),
                Planned::Observation(key) => ctx.observation(item, key),
                Planned::Administration(drug) => ctx.administration(item, *drug),
                Planned::Request(drug) => ctx.request(item, *drug),
                Planned::Ventilation(key) => ctx.ventilation(item, key),
                Planned::Oxygen(key) => ctx.oxygen_procedure(item, key),
            }
        }
        ctx.finish_ice_items();
        for &(i, drug) in &drafts {
            if let Some(item) = d.items.get(i) {
                ctx.draft_order(item, drug);
            }
        }
    }
    c.issues.append(&mut d.issues);
    c.ignored_by_status += d.ignored_by_status;

    mapped.issues = c.issues;
    mapped.issues.append(&mut ctx.issues);
    mapped.orders = std::mem::take(&mut ctx.orders);
    mapped.typed_parses = ctx.typed_parses;
    mapped.parse_attempts = ctx.parser.parses();
    mapped.outside_window = outside_window;
    mapped.facts = ctx.facts;
    mapped.ignored_by_status = c.ignored_by_status;
    mapped.duplicates = c.duplicates;
    mapped.over_parse_limit = limit;
    mapped
}

/// Triage pass 2: the entries the engine uses, in order, with what to read from each,
/// and how many Observations were too old to matter (issue 3, "classify each by …
/// time"). `infused_at` is the infusion time (`None` when not parsed).
fn plan(
    items: &[Item<'_>],
    kinds: &[MedicationKind],
    infusions: &[usize],
    infused_at: Option<Timestamp>,
    now: Timestamp,
    terminology: &Terminology,
    window_hours: f64,
) -> (Vec<(usize, Planned)>, usize) {
    let mut planned = Vec::new();
    let mut outside_window = 0;
    for (i, (item, kind)) in items.iter().zip(kinds).enumerate() {
        if infusions.contains(&i) {
            continue;
        }
        let step = match item.kind() {
            "Patient" => Some(Planned::Patient),
            "Observation" => code_key(item, terminology, Sets::OBSERVATION_CODES).and_then(|key| {
                let too_old = match (key.as_str(), infused_at) {
                    // RULES.md §7 S3: a fever documented since the infusion, before an
                    // antipyretic dose, opens the waiver whatever its age.
                    ("temperature", Some(infused)) => {
                        item.triage.observed_until().is_some_and(|t| t < infused)
                    }
                    _ => lookback_hours(&key, window_hours).is_some_and(|h| {
                        let start = now.minus_hours(h);
                        item.triage.observed_until().is_some_and(|t| t <= start)
                    }),
                };
                if too_old {
                    outside_window += 1;
                    None
                } else {
                    Some(Planned::Observation(key))
                }
            }),
            "MedicationAdministration" => kind.drug.map(Planned::Administration),
            "MedicationRequest" => kind.drug.map(Planned::Request),
            "Procedure" => {
                if let Some(key) = code_key(item, terminology, Sets::VENTILATION) {
                    Some(Planned::Ventilation(key))
                } else {
                    // FHIR-INPUTS.md "Real-world encodings", "Oxygen by Procedure"; a
                    // site ConceptMap applies here as to Observation codes.
                    code_key(item, terminology, Sets::OXYGEN_DEVICES).map(Planned::Oxygen)
                }
            }
            _ => None,
        };
        if let Some(step) = step {
            planned.push((i, step));
        }
    }
    (planned, outside_window)
}

/// "medication of MedicationAdministration/x could not be identified" (FHIR-INPUTS.md
/// "Real-world encodings", "Medication identity": never dropped silently).
fn unidentified(item: &Item<'_>) -> AdapterIssue {
    AdapterIssue {
        location: item.location(),
        message: format!("medication of {} could not be identified", item.reference),
    }
}

/// The ids of the Medications that MedicationAdministration / MedicationRequest entries
/// reference as `Medication/x` (relative) and that are neither contained nor present in
/// any of `documents` (by `Medication/id` or `fullUrl`): what the fhirServer path reads
/// with `Medication?_id=a,b,…` (FHIR-INPUTS.md "Real-world encodings", "Medication
/// identity"). Sorted, without repeats.
pub fn unresolved_medication_ids(documents: &[Document<'_>]) -> Vec<String> {
    let mut c = Collector::new();
    for doc in documents {
        c.collect(doc, false);
    }
    let medications = medication_index(&c.items);
    let mut out: Vec<String> = c
        .items
        .iter()
        .filter(|i| matches!(i.kind(), "MedicationAdministration" | "MedicationRequest"))
        .filter(|i| i.triage.medication_cc.is_none())
        .filter_map(|i| i.triage.medication_ref.as_ref()?.reference.as_deref())
        .filter(|r| !r.starts_with('#') && !r.contains("://") && !r.starts_with("urn:"))
        .filter(|r| find_medication(r, &medications).is_none())
        .filter_map(medication_key)
        .filter_map(|k| k.strip_prefix("Medication/").map(str::to_string))
        .filter(|id| protocol_safe_id(id))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A FHIR id (`[A-Za-z0-9\-\.]{1,64}`), safe to put in a search URL.
fn protocol_safe_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The engine concept key of an entry's `code` within `sets`, if recognised.
fn code_key(item: &Item<'_>, terminology: &Terminology, sets: Sets) -> Option<String> {
    let concept = item
        .triage
        .code
        .as_ref()
        .map(CcJson::view)
        .unwrap_or_default();
    terminology.key(&concept, sets).map(str::to_string)
}

/// The naive way, for benchmarks only: fhirbolt's typed parser over a whole document,
/// with no triage. Returns whether it parsed.
#[doc(hidden)]
pub fn naive_typed_parse(json: &str) -> bool {
    fhir_r4::parse_resource(json, fhir_r4::Mode::Compatibility).is_ok()
}

#[cfg(test)]
mod unresolved_medication_tests {
    use super::{Document, unresolved_medication_ids};

    #[test]
    fn a_referenced_medication_absent_from_the_documents_is_unresolved() {
        let ma = r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MedicationAdministration","id":"ma1","status":"in-progress","medicationReference":{"reference":"Medication/norepi"}}},{"resource":{"resourceType":"MedicationRequest","id":"mr1","status":"active","intent":"order","medicationReference":{"reference":"Medication/toci"}}}]}"#;
        let docs = [Document {
            origin: "medicationAdministrations",
            json: ma,
        }];
        assert_eq!(unresolved_medication_ids(&docs), vec!["norepi", "toci"]);
    }

    #[test]
    fn a_medication_included_in_any_document_is_resolved() {
        let ma = r#"{"resourceType":"MedicationAdministration","id":"ma1","status":"in-progress","medicationReference":{"reference":"Medication/norepi"},"subject":{"reference":"Patient/1"}}"#;
        let med = r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Medication","id":"norepi"}}]}"#;
        let docs = [
            Document {
                origin: "a",
                json: ma,
            },
            Document {
                origin: "b",
                json: med,
            },
        ];
        assert!(unresolved_medication_ids(&docs).is_empty());
    }
}
