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
pub mod synth;
mod terminology;
mod time;
mod units;

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
    /// Observations skipped before typed parsing because they are older than the
    /// window their concept is graded over.
    pub outside_window: usize,
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

#[derive(Deserialize)]
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
            for (i, entry) in top.entry.unwrap_or_default().into_iter().enumerate() {
                match serde_json::from_str::<EntryJson<'a>>(entry.get()) {
                    Ok(EntryJson {
                        resource: Some(raw),
                    }) => self.add(doc.origin, raw, draft, i),
                    Ok(EntryJson { resource: None }) => {}
                    Err(_) => self.issue(
                        doc.origin,
                        format!("Bundle entry {i} is not an object: ignored"),
                    ),
                }
            }
        } else {
            match serde_json::from_str::<&'a RawValue>(doc.json) {
                Ok(raw) => self.add(doc.origin, raw, draft, 0),
                Err(e) => self.issue(doc.origin, format!("not a FHIR JSON resource: {e}")),
            }
        }
    }

    fn add(&mut self, origin: &'a str, raw: &'a RawValue, draft: bool, index: usize) {
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
        if kind == "OperationOutcome" {
            self.issue(
                format!("{origin}: {reference}"),
                "the server returned an OperationOutcome instead of data",
            );
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
        });
    }
}

/// Resolves what the medication of a MedicationAdministration / MedicationRequest is:
/// `medicationCodeableConcept`, or `medicationReference` to a contained Medication
/// (`#id`) or to a Medication in any of the documents (`Medication/id`).
fn medication_kind(
    item: &Item<'_>,
    medications: &HashMap<String, CcJson>,
    terminology: &Terminology,
) -> MedicationKind {
    let t = &item.triage;
    let code: Option<&CcJson> = if let Some(cc) = &t.medication_cc {
        Some(cc)
    } else if let Some(r) = &t.medication_ref {
        match r.reference.as_deref() {
            Some(local) if local.starts_with('#') => t
                .contained
                .iter()
                .find(|c| {
                    c.resource_type.as_deref() == Some("Medication")
                        && c.id.as_deref() == local.get(1..)
                })
                .and_then(|c| c.code.as_ref()),
            Some(reference) => reference
                .find("Medication/")
                .and_then(|pos| reference.get(pos..))
                .and_then(|key| medications.get(key)),
            None => None,
        }
    } else {
        None
    };
    let mut concept = code.map(CcJson::view).unwrap_or_default();
    // A reference's display ("Norepinephrine 4 mg in 250 mL") is text about the drug.
    if let Some(display) = t.medication_ref.as_ref().and_then(|r| r.display.as_deref()) {
        concept.codings.push(CodingRef {
            system: None,
            code: None,
            display: Some(display),
        });
    }
    classify(&concept, terminology)
}

fn classify(concept: &Concept<'_>, terminology: &Terminology) -> MedicationKind {
    let product_key = terminology.key(concept, Sets::CART_PRODUCTS);
    MedicationKind {
        drug: terminology
            .key(concept, Sets::DRUGS)
            .and_then(Drug::from_key),
        product: product_key.and_then(CarTProduct::from_key),
        cart: product_key.is_some(),
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
        "body-weight" | "creatinine" => None,
        k if crate::domain::LabKind::from_key(k).is_some() => {
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
    let mut c = Collector::new();
    for doc in documents {
        c.collect(doc, false);
    }

    // Medications anywhere in the documents, for `medicationReference: Medication/id`.
    let medications: HashMap<String, CcJson> = c
        .items
        .iter()
        .filter(|i| i.kind() == "Medication")
        .filter_map(|i| Some((i.reference.clone(), i.triage.code.clone()?)))
        .collect();

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
        kinds.push(kind);
    }

    let mut mapped = Mapped::default();
    let mut ctx = map::Context::new(terminology, now);
    for &i in &infusions {
        if let (Some(item), Some(kind)) = (c.items.get(i), kinds.get(i)) {
            ctx.infusion(item, kind.product);
        }
    }
    if ctx.facts.infusion.is_none() {
        // The common case: not a CAR-T patient. No typed parsing of the rest.
        mapped.issues = c.issues;
        mapped.issues.append(&mut ctx.issues);
        mapped.ignored_by_status = c.ignored_by_status;
        mapped.duplicates = c.duplicates;
        mapped.typed_parses = ctx.typed_parses;
        return mapped;
    }

    // Triage pass 2: only what the engine uses goes through the typed parser.
    let mut outside_window = 0;
    for (i, (item, kind)) in c.items.iter().zip(&kinds).enumerate() {
        if infusions.contains(&i) {
            continue;
        }
        match item.kind() {
            "Patient" => ctx.patient(item),
            "Observation" => {
                if let Some(key) = code_key(item, terminology, Sets::OBSERVATION_CODES) {
                    let too_old = lookback_hours(&key, window_hours).is_some_and(|h| {
                        let start = now.minus_hours(h);
                        item.triage.observed_until().is_some_and(|t| t <= start)
                    });
                    if too_old {
                        outside_window += 1;
                    } else {
                        ctx.observation(item, &key);
                    }
                }
            }
            "MedicationAdministration" => {
                if let Some(drug) = kind.drug {
                    ctx.administration(item, drug);
                }
            }
            "MedicationRequest" => {
                if let Some(drug) = kind.drug {
                    ctx.request(item, drug);
                }
            }
            "Procedure" => {
                if let Some(key) = code_key(item, terminology, Sets::VENTILATION) {
                    ctx.ventilation(item, &key);
                }
            }
            _ => {}
        }
    }
    ctx.finish_ice_items();

    // Draft orders: MedicationRequest only, restricted to `selections` when given.
    if let Some(doc) = draft_orders {
        let mut d = Collector::new();
        d.collect(&doc, true);
        // A draft order may reference a Medication sent along in the draft Bundle.
        let mut medications = medications;
        for item in d.items.iter().filter(|i| i.kind() == "Medication") {
            if let Some(code) = &item.triage.code {
                medications
                    .entry(item.reference.clone())
                    .or_insert_with(|| code.clone());
            }
        }
        for item in &d.items {
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
            if let Some(drug) = kind.drug {
                ctx.draft_order(item, drug);
            }
        }
        c.issues.append(&mut d.issues);
        c.ignored_by_status += d.ignored_by_status;
    }

    mapped.issues = c.issues;
    mapped.issues.append(&mut ctx.issues);
    mapped.orders = std::mem::take(&mut ctx.orders);
    mapped.typed_parses = ctx.typed_parses;
    mapped.outside_window = outside_window;
    mapped.facts = ctx.facts;
    mapped.ignored_by_status = c.ignored_by_status;
    mapped.duplicates = c.duplicates;
    mapped
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

/// The ids of Medications referenced as `"reference": "Medication/<id>"` (relative, or an
/// absolute URL ending in `/Medication/<id>`) that no Medication resource in `documents`
/// carries, sorted and without repeats: what a follow-up `Medication?_id=` read must fetch
/// (FHIR-INPUTS.md "Real-world encodings", medication identity).
///
/// PLACEHOLDER written on the `harden` branch so the HTTP follow-up read can be built and
/// tested; the `adapter` branch (issue 9) provides the real implementation with this exact
/// signature and replaces this one at merge. It walks each document's JSON once;
/// unreadable documents contribute nothing.
pub fn unresolved_medication_ids(documents: &[Document<'_>]) -> Vec<String> {
    fn walk(value: &serde_json::Value, refs: &mut HashSet<String>, have: &mut HashSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if map.get("resourceType").and_then(|v| v.as_str()) == Some("Medication")
                    && let Some(id) = map.get("id").and_then(|v| v.as_str())
                {
                    have.insert(id.to_string());
                }
                if let Some(r) = map.get("reference").and_then(|v| v.as_str()) {
                    let tail = r.rsplit_once("/Medication/").map(|(_, t)| t);
                    let id = r.strip_prefix("Medication/").or(tail);
                    if let Some(id) = id.filter(|i| !i.is_empty() && !i.contains('/')) {
                        refs.insert(id.to_string());
                    }
                }
                for v in map.values() {
                    walk(v, refs, have);
                }
            }
            serde_json::Value::Array(items) => {
                for v in items {
                    walk(v, refs, have);
                }
            }
            _ => {}
        }
    }
    let mut refs = HashSet::new();
    let mut have = HashSet::new();
    for d in documents {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(d.json) {
            walk(&v, &mut refs, &mut have);
        }
    }
    let mut out: Vec<String> = refs.difference(&have).cloned().collect();
    out.sort();
    out
}

#[cfg(test)]
mod unresolved_medication_tests {
    use super::{Document, unresolved_medication_ids};

    #[test]
    fn a_referenced_medication_absent_from_the_documents_is_unresolved() {
        let ma = r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MedicationAdministration","medicationReference":{"reference":"Medication/norepi"}}},{"resource":{"resourceType":"MedicationRequest","medicationReference":{"reference":"https://ehr.example.org/fhir/Medication/toci"}}}]}"#;
        let docs = [Document {
            origin: "medicationAdministrations",
            json: ma,
        }];
        assert_eq!(unresolved_medication_ids(&docs), vec!["norepi", "toci"]);
    }

    #[test]
    fn a_medication_included_in_any_document_is_resolved() {
        let ma = r#"{"resourceType":"MedicationAdministration","medicationReference":{"reference":"Medication/norepi"},"subject":{"reference":"Patient/1"}}"#;
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
