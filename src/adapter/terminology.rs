//! The codes the adapter recognises, read from `fhir-profiles/` (embedded at compile
//! time) and from an optional site ConceptMap. No clinical code is written in Rust:
//! every lookup goes through the tables built here (fhir-profiles/README.md, "The
//! designation contract").

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use super::AdapterIssue;
use super::prefilter::Prefilter;

/// The ValueSets of `fhir-profiles/`, as bits so that one `(system, code)` can belong to
/// several of them (README: a pair has the same key in every ValueSet it appears in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sets(pub u32);

impl Sets {
    pub const VITAL_SIGNS: Sets = Sets(1);
    pub const LABS: Sets = Sets(1 << 1);
    pub const NEURO: Sets = Sets(1 << 2);
    pub const CONSCIOUSNESS: Sets = Sets(1 << 3);
    pub const SEIZURE: Sets = Sets(1 << 4);
    pub const MOTOR: Sets = Sets(1 << 5);
    pub const EDEMA: Sets = Sets(1 << 6);
    pub const OXYGEN_DEVICES: Sets = Sets(1 << 7);
    pub const VENTILATION: Sets = Sets(1 << 8);
    pub const VASOPRESSORS: Sets = Sets(1 << 9);
    pub const INOTROPES: Sets = Sets(1 << 10);
    pub const ANTIPYRETIC_ANTICYTOKINE: Sets = Sets(1 << 11);
    pub const CORTICOSTEROIDS: Sets = Sets(1 << 12);
    pub const TOCILIZUMAB: Sets = Sets(1 << 13);
    pub const ANTI_IL6_IL1: Sets = Sets(1 << 14);
    pub const GM_CSF: Sets = Sets(1 << 15);
    pub const CART_PRODUCTS: Sets = Sets(1 << 16);
    pub const CART_INFUSION: Sets = Sets(1 << 17);
    /// Continuous sedative infusions (RULES.md §7 S4).
    pub const SEDATIVES: Sets = Sets(1 << 18);
    /// Yes/no answers of recorded findings (RULES.md §7 S10).
    pub const ANSWERS: Sets = Sets(1 << 19);

    /// Every drug ValueSet (what a medication can be recognised as).
    pub const DRUGS: Sets = Sets(
        Self::VASOPRESSORS.0
            | Self::INOTROPES.0
            | Self::ANTIPYRETIC_ANTICYTOKINE.0
            | Self::CORTICOSTEROIDS.0
            | Self::TOCILIZUMAB.0
            | Self::ANTI_IL6_IL1.0
            | Self::GM_CSF.0
            | Self::SEDATIVES.0,
    );

    /// Everything an Observation code can be.
    pub const OBSERVATION_CODES: Sets = Sets(Self::VITAL_SIGNS.0 | Self::LABS.0 | Self::NEURO.0);

    fn intersects(self, other: Sets) -> bool {
        self.0 & other.0 != 0
    }
}

/// The embedded ValueSets and the bit each one sets.
const EMBEDDED: [(&str, Sets); 20] = [
    (
        include_str!("../../fhir-profiles/ValueSet-vital-signs.json"),
        Sets::VITAL_SIGNS,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-labs.json"),
        Sets::LABS,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-neuro-assessments.json"),
        Sets::NEURO,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-level-of-consciousness.json"),
        Sets::CONSCIOUSNESS,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-seizure-findings.json"),
        Sets::SEIZURE,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-motor-findings.json"),
        Sets::MOTOR,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-cerebral-edema-findings.json"),
        Sets::EDEMA,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-oxygen-devices.json"),
        Sets::OXYGEN_DEVICES,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-ventilation-procedures.json"),
        Sets::VENTILATION,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-vasopressors.json"),
        Sets::VASOPRESSORS,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-inotropes.json"),
        Sets::INOTROPES,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-antipyretic-anticytokine.json"),
        Sets::ANTIPYRETIC_ANTICYTOKINE,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-systemic-corticosteroids.json"),
        Sets::CORTICOSTEROIDS,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-tocilizumab.json"),
        Sets::TOCILIZUMAB,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-anti-il6-and-il1.json"),
        Sets::ANTI_IL6_IL1,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-gm-csf.json"),
        Sets::GM_CSF,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-cart-products.json"),
        Sets::CART_PRODUCTS,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-cart-infusion-procedures.json"),
        Sets::CART_INFUSION,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-sedative-infusions.json"),
        Sets::SEDATIVES,
    ),
    (
        include_str!("../../fhir-profiles/ValueSet-finding-answers.json"),
        Sets::ANSWERS,
    ),
];

const NDC_SYSTEM: &str = "http://hl7.org/fhir/sid/ndc";
const DESIGNATION_SYSTEM: &str = "https://w3id.org/crs-cds/fhir/CodeSystem/iec-toxicity";

#[derive(Deserialize)]
struct ValueSetJson {
    compose: ComposeJson,
}

#[derive(Deserialize)]
struct ComposeJson {
    #[serde(default)]
    include: Vec<IncludeJson>,
}

#[derive(Deserialize)]
struct IncludeJson {
    system: String,
    #[serde(default)]
    concept: Vec<ConceptJson>,
}

#[derive(Deserialize)]
struct ConceptJson {
    code: String,
    #[serde(default)]
    designation: Vec<DesignationJson>,
}

#[derive(Deserialize)]
struct DesignationJson {
    #[serde(rename = "use")]
    use_: Option<CodingJson>,
    value: String,
}

#[derive(Deserialize)]
struct CodingJson {
    system: Option<String>,
    code: Option<String>,
}

#[derive(Deserialize)]
struct ConceptMapJson {
    #[serde(rename = "resourceType")]
    resource_type: String,
    #[serde(default)]
    group: Vec<GroupJson>,
}

#[derive(Deserialize)]
struct GroupJson {
    source: Option<String>,
    target: Option<String>,
    #[serde(default)]
    element: Vec<ElementJson>,
}

#[derive(Deserialize)]
struct ElementJson {
    code: Option<String>,
    #[serde(default)]
    target: Vec<TargetJson>,
}

#[derive(Deserialize)]
struct TargetJson {
    code: Option<String>,
    equivalence: Option<String>,
}

/// An engine concept key and the ValueSets that list it.
#[derive(Clone, Debug)]
struct Entry {
    key: String,
    sets: Sets,
}

/// The tables built once from the embedded files.
#[derive(Debug, Default)]
struct Tables {
    /// `(system, code)` → key. NDC codes are stored normalised (see [`normalise_ndc`]).
    codes: HashMap<(String, String), Entry>,
    /// Lowercase text-match terms → key.
    terms: Vec<(String, Entry)>,
}

fn merge(map_entry: &mut Entry, sets: Sets) {
    map_entry.sets = Sets(map_entry.sets.0 | sets.0);
}

impl Tables {
    fn load() -> Tables {
        let mut tables = Tables::default();
        let mut terms: HashMap<String, Entry> = HashMap::new();
        for (text, sets) in EMBEDDED {
            // The embedded files are part of the build and are checked by the unit test
            // `embedded_value_sets_all_load`; a broken file yields an empty set, not a panic.
            let Ok(vs) = serde_json::from_str::<ValueSetJson>(text) else {
                continue;
            };
            for include in vs.compose.include {
                for concept in include.concept {
                    let mut key = None;
                    let mut concept_terms = Vec::new();
                    for d in concept.designation {
                        let Some(u) = d.use_ else { continue };
                        if u.system.as_deref() != Some(DESIGNATION_SYSTEM) {
                            continue;
                        }
                        match u.code.as_deref() {
                            Some("engine-concept") => key = Some(d.value),
                            Some("text-match") => concept_terms.push(d.value.to_lowercase()),
                            _ => {}
                        }
                    }
                    let Some(key) = key else { continue };
                    let code = if include.system == NDC_SYSTEM {
                        normalise_ndc(&concept.code).unwrap_or(concept.code)
                    } else {
                        concept.code
                    };
                    tables
                        .codes
                        .entry((include.system.clone(), code))
                        .and_modify(|e| merge(e, sets))
                        .or_insert_with(|| Entry {
                            key: key.clone(),
                            sets,
                        });
                    for term in concept_terms {
                        terms
                            .entry(term)
                            .and_modify(|e| merge(e, sets))
                            .or_insert_with(|| Entry {
                                key: key.clone(),
                                sets,
                            });
                    }
                }
            }
        }
        tables.terms = terms.into_iter().collect();
        // Longest first, so the first match found at a position is the most specific.
        tables
            .terms
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        tables
    }
}

fn embedded_tables() -> Arc<Tables> {
    static TABLES: OnceLock<Arc<Tables>> = OnceLock::new();
    TABLES.get_or_init(|| Arc::new(Tables::load())).clone()
}

/// The codes the adapter recognises, loaded from `fhir-profiles/`.
#[derive(Clone, Debug, Default)]
pub struct Terminology {
    tables: Arc<Tables>,
    /// Site ConceptMap: `(local system, local code)` → `(target system, target code)`.
    local: HashMap<(String, String), (String, String)>,
    /// The byte-level infusion prefilter for these codes (`None`: full triage always).
    prefilter: Option<Arc<Prefilter>>,
}

/// A read-only view of a CodeableConcept, from triage JSON or from fhirbolt's model.
#[derive(Clone, Debug, Default)]
pub(crate) struct Concept<'a> {
    pub codings: Vec<CodingRef<'a>>,
    pub text: Option<&'a str>,
}

/// One coding of a [`Concept`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CodingRef<'a> {
    pub system: Option<&'a str>,
    pub code: Option<&'a str>,
    pub display: Option<&'a str>,
}

impl Terminology {
    /// The project's embedded code lists.
    pub fn embedded() -> Terminology {
        let mut t = Terminology {
            tables: embedded_tables(),
            local: HashMap::new(),
            prefilter: None,
        };
        t.prefilter = t.build_prefilter().map(Arc::new);
        t
    }

    /// The same codes with the triage prefilter turned off: every document gets the
    /// full triage (the baseline of the triage benchmark and of the property test).
    #[doc(hidden)]
    pub fn without_prefilter(mut self) -> Terminology {
        self.prefilter = None;
        self
    }

    /// The triage prefilter, when on.
    pub(crate) fn prefilter(&self) -> Option<&Prefilter> {
        self.prefilter.as_deref()
    }

    /// The prefilter for the infusion's codes (CART_INFUSION, CART_PRODUCTS), the
    /// product names, and every site ConceptMap local code mapped onto one of them.
    fn build_prefilter(&self) -> Option<Prefilter> {
        let cart = Sets(Sets::CART_INFUSION.0 | Sets::CART_PRODUCTS.0);
        let codes = self
            .tables
            .codes
            .iter()
            .filter(|(_, e)| e.sets.intersects(cart))
            .map(|((_, code), _)| code.as_str());
        let local = self
            .local
            .iter()
            .filter(|(_, target)| {
                self.tables
                    .codes
                    .get(*target)
                    .is_some_and(|e| e.sets.intersects(cart))
            })
            .map(|((_, code), _)| code.as_str());
        let terms = self
            .tables
            .terms
            .iter()
            .filter(|(_, e)| e.sets.intersects(cart))
            .map(|(term, _)| term.as_str());
        Prefilter::new(codes.chain(local), terms)
    }

    /// Adds a site ConceptMap (FHIR R4 JSON) mapping local codes onto known codes.
    ///
    /// Only `equivalent`, `wider` and `narrower` targets are used (fhir-profiles/README.md,
    /// "Site ConceptMap"). A target that is not in the ValueSets is a configuration error.
    pub fn with_concept_map(mut self, concept_map_json: &str) -> Result<Terminology, AdapterIssue> {
        let issue = |message: String| AdapterIssue {
            location: "ConceptMap".to_string(),
            message,
        };
        let map: ConceptMapJson = serde_json::from_str(concept_map_json)
            .map_err(|e| issue(format!("not a readable ConceptMap: {e}")))?;
        if map.resource_type != "ConceptMap" {
            return Err(issue(format!(
                "expected a ConceptMap, found {}",
                map.resource_type
            )));
        }
        for group in map.group {
            let (Some(source), Some(target_system)) = (group.source, group.target) else {
                return Err(issue("a group has no source or target system".to_string()));
            };
            for element in group.element {
                let Some(local_code) = element.code else {
                    continue;
                };
                for target in element.target {
                    let usable = matches!(
                        target.equivalence.as_deref(),
                        Some("equivalent" | "wider" | "narrower")
                    );
                    let Some(code) = target.code.filter(|_| usable) else {
                        continue;
                    };
                    let code = if target_system == NDC_SYSTEM {
                        normalise_ndc(&code).unwrap_or(code)
                    } else {
                        code
                    };
                    if !self
                        .tables
                        .codes
                        .contains_key(&(target_system.clone(), code.clone()))
                    {
                        return Err(issue(format!(
                            "target {target_system}|{code} of local code {local_code} is not in the crs-cds value sets"
                        )));
                    }
                    self.local.insert(
                        (source.clone(), local_code.clone()),
                        (target_system.clone(), code),
                    );
                    break;
                }
            }
        }
        // Local codes mapped onto the infusion concepts join the prefilter.
        if self.prefilter.is_some() {
            self.prefilter = self.build_prefilter().map(Arc::new);
        }
        Ok(self)
    }

    /// The key of one coding in any of `sets`, through the site ConceptMap if needed.
    fn coding_key(&self, coding: &CodingRef<'_>, sets: Sets) -> Option<&str> {
        let (system, code) = (coding.system?, coding.code?);
        let (system, code): (&str, std::borrow::Cow<'_, str>) =
            match self.local.get(&(system.to_string(), code.to_string())) {
                Some((s, c)) => (s.as_str(), c.as_str().into()),
                None if system == NDC_SYSTEM => {
                    (system, normalise_ndc(code).map_or(code.into(), Into::into))
                }
                None => (system, code.into()),
            };
        let entry = self
            .tables
            .codes
            .get(&(system.to_string(), code.into_owned()))?;
        entry.sets.intersects(sets).then_some(entry.key.as_str())
    }

    /// The longest text-match term of `sets` found at word boundaries in `text`.
    fn text_key(&self, text: &str, sets: Sets) -> Option<(&str, usize)> {
        let lower = text.to_lowercase();
        self.tables
            .terms
            .iter()
            .filter(|(_, e)| e.sets.intersects(sets))
            .find(|(term, _)| contains_word(&lower, term))
            .map(|(term, e)| (e.key.as_str(), term.len()))
    }

    /// The engine key of a concept in `sets`: by code first, then by the longest term
    /// in `text` or a coding's `display`.
    pub(crate) fn key(&self, concept: &Concept<'_>, sets: Sets) -> Option<&str> {
        if let Some(k) = concept
            .codings
            .iter()
            .find_map(|c| self.coding_key(c, sets))
        {
            return Some(k);
        }
        concept
            .text
            .into_iter()
            .chain(concept.codings.iter().filter_map(|c| c.display))
            .filter_map(|t| self.text_key(t, sets))
            .max_by_key(|(_, len)| *len)
            .map(|(k, _)| k)
    }
}

/// Whether `needle` occurs in `haystack` with no letter or digit on either side.
fn contains_word(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(pos) = haystack.get(from..).and_then(|h| h.find(needle)) {
        let start = from + pos;
        let end = start + needle.len();
        let before_ok = haystack[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let after_ok = haystack[end..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric());
        if before_ok && after_ok {
            return true;
        }
        // Step past the first character of this occurrence (UTF-8 safe).
        from = start + haystack[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Reduces an NDC to labeler-product form without zero padding (`50242-0136-01`,
/// `50242013601` and `50242-136` all become `50242-136`), the form used to match the
/// product-form codes of `fhir-profiles/` (README: "NDC codes are in product form").
/// A 10-digit code without hyphens is ambiguous (4-4-2, 5-3-2, 5-4-1) and is left alone.
pub(crate) fn normalise_ndc(code: &str) -> Option<String> {
    let trim = |s: &str| {
        let t = s.trim_start_matches('0');
        if t.is_empty() {
            "0".to_string()
        } else {
            t.to_string()
        }
    };
    let code = code.trim();
    if code.contains('-') {
        let mut parts = code.split('-');
        let labeler = parts.next()?;
        let product = parts.next()?;
        if labeler.is_empty()
            || product.is_empty()
            || !labeler.bytes().all(|b| b.is_ascii_digit())
            || !product.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        return Some(format!("{}-{}", trim(labeler), trim(product)));
    }
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match code.len() {
        // The HIPAA 11-digit 5-4-2 form.
        11 => Some(format!(
            "{}-{}",
            trim(code.get(..5)?),
            trim(code.get(5..9)?)
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_value_sets_all_load() {
        for (text, _) in EMBEDDED {
            assert!(serde_json::from_str::<ValueSetJson>(text).is_ok());
        }
        assert!(Terminology::embedded().tables.codes.len() > 100);
    }

    #[test]
    fn package_ndcs_reduce_to_labeler_product_form() {
        assert_eq!(normalise_ndc("50242-0136-01").as_deref(), Some("50242-136"));
        assert_eq!(normalise_ndc("50242013601").as_deref(), Some("50242-136"));
        assert_eq!(normalise_ndc("0078-0846").as_deref(), Some("78-846"));
        assert_eq!(normalise_ndc("00078084661").as_deref(), Some("78-846"));
    }

    #[test]
    fn epinephrine_does_not_match_inside_norepinephrine() {
        assert!(!contains_word("norepinephrine drip", "epinephrine"));
        assert!(contains_word("epinephrine drip", "epinephrine"));
        assert!(contains_word("tocilizumab-bavi 400 mg", "tocilizumab"));
    }
}
