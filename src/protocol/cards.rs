//! Domain results → CDS Hooks cards (CDS Hooks 2.0.1 "Card Attributes"), by explicit
//! functions: domain types are not serializable on purpose.
//!
//! Every card carries the `org.crs-cds` extension ([`extension()`](super::extension::extension)). Indicators
//! follow the worst grade: 0-1 info, 2 warning, 3-4 critical.

use serde::Serialize;
use serde_json::{Value, json};

use super::discovery::Hook;
use super::extension::{EXTENSION_KEY, extension, format_time, number};
use crate::domain::{
    Assessment, DoseCheck, DoseIssue, DoseOrder, Drug, DrugClass, Evidence, FeverGate, Flag,
    IcansState, Scope, SteroidSuggestion, Timestamp,
};
use text::{cite, clinician_units, one_decimal, when, without_rule_ids};

/// The project's code system (`fhir-profiles/CodeSystem-iec-toxicity.json`).
pub const IEC: &str = "https://w3id.org/crs-cds/fhir/CodeSystem/iec-toxicity";
/// Card topics.
pub const TOPIC_SYSTEM: &str = "https://w3id.org/crs-cds/fhir/CodeSystem/card-topic";
/// Override reasons: the HL7 CDS Hooks non-adherence reason code system (CDS Hooks 3.0
/// ballot, `input/vocabulary/CodeSystem-non-adherence-reason.json`), which the Sandbox
/// renders.
pub const NON_ADHERENCE_SYSTEM: &str = "http://cds-hooks.hl7.org/CodeSystem/non-adherence-reason";
/// The project's own override reasons, only where no HL7 code fits.
pub const OVERRIDE_SYSTEM: &str = "https://w3id.org/crs-cds/fhir/CodeSystem/override-reason";
/// The grade-evidence extension (`fhir-profiles/StructureDefinition-grade-evidence.json`).
pub const GRADE_EVIDENCE_URL: &str =
    "https://w3id.org/crs-cds/fhir/StructureDefinition/grade-evidence";
/// The source label of every card.
pub const SOURCE_LABEL: &str = "crs-cds ASTCT 2019 grading";
/// The source URL: the ASTCT consensus paper.
pub const SOURCE_URL: &str = "https://doi.org/10.1016/j.bbmt.2018.12.758";

const REFERENCES: &str = "### References\n\
- Lee DW et al. ASTCT consensus grading for cytokine release syndrome and neurologic toxicity associated with immune effector cells. Biol Blood Marrow Transplant 2019;25:625-638. doi:10.1016/j.bbmt.2018.12.758\n\
- Santomasso BD et al. Management of immune-related adverse events in patients treated with chimeric antigen receptor T-cell therapy: ASCO guideline. J Clin Oncol 2021;39:3978-3992. doi:10.1200/JCO.21.01992\n\
- Neelapu SS et al. Chimeric antigen receptor T-cell therapy: assessment and management of toxicities (CARTOX). Nat Rev Clin Oncol 2018;15:47-62. doi:10.1038/nrclinonc.2017.148\n";

/// The one-line source of the cards that carry a single point (RULES.md §7 S14: the full
/// references stay on the grading card).
const SOURCE_LINE: &str = "Source: ASTCT 2019 consensus grading (doi:10.1016/j.bbmt.2018.12.758); ASCO 2021 guideline (doi:10.1200/JCO.21.01992).\n";

/// Card urgency, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    /// Information.
    Info,
    /// Warning.
    Warning,
    /// Critical.
    Critical,
}

impl Indicator {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Indicator::Info => "info",
            Indicator::Warning => "warning",
            Indicator::Critical => "critical",
        }
    }

    /// The indicator for a grade: 0-1 info, 2 warning, 3-4 critical.
    pub fn for_grade(grade: Option<u8>) -> Indicator {
        match grade {
            Some(g) if g >= 3 => Indicator::Critical,
            Some(2) => Indicator::Warning,
            _ => Indicator::Info,
        }
    }
}

/// A Coding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Coding {
    /// System.
    pub system: &'static str,
    /// Code.
    pub code: &'static str,
    /// Display (required on override reasons).
    pub display: &'static str,
}

/// A card's source.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Source {
    /// Label.
    pub label: &'static str,
    /// URL.
    pub url: &'static str,
    /// Topic.
    pub topic: Coding,
}

/// A suggested action.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    /// `create`, `update` or `delete`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What it does.
    pub description: String,
    /// The resource (create, update).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    /// The resource reference (delete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

/// A suggestion: actions taken together.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    /// Button text.
    pub label: String,
    /// Identifier reported back in feedback.
    pub uuid: String,
    /// Whether it is the recommended choice.
    pub is_recommended: bool,
    /// The actions.
    pub actions: Vec<Action>,
}

/// A CDS Hooks card.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    /// Identifier reported back in feedback.
    pub uuid: String,
    /// One sentence, under 140 characters.
    pub summary: String,
    /// Markdown detail.
    pub detail: String,
    /// Urgency.
    pub indicator: Indicator,
    /// Source.
    pub source: Source,
    /// Suggestions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
    /// Required when there are suggestions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection_behavior: Option<&'static str>,
    /// Reasons offered when the user dismisses the card.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub override_reasons: Vec<Coding>,
    /// Links (CDS Hooks 2.0.1 "Link"): the app link on the grading card (issue 13).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// `{"org.crs-cds": {...}}`.
    pub extension: Value,
}

/// A card link (CDS Hooks 2.0.1 "Link"): `absolute` opens a URL, `smart` launches a SMART
/// app with `appContext`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// Human-readable label.
    pub label: String,
    /// The URL (a SMART app's launch URL for `smart`).
    pub url: String,
    /// `absolute` or `smart`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Opaque context for a `smart` link, passed back by the EHR in the token response;
    /// never patient data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_context: Option<String>,
}

/// The label of the app link.
pub const APP_LINK_LABEL: &str = "CRS/ICANS course";
/// The `appContext` of the app link: opaque, no patient data (the patient comes from the
/// EHR's launch context).
pub const APP_LINK_CONTEXT: &str = "course";

/// The links to the SMART app at `{base}/app/launch`: a `smart` link (EHR launch), an
/// `absolute` one (the same URL opened directly starts a standalone launch), both or none.
pub fn app_links(base: &str, smart: bool, absolute: bool) -> Vec<Link> {
    let url = format!("{}/app/launch", base.trim_end_matches('/'));
    let mut links = Vec::new();
    if smart {
        links.push(Link {
            label: APP_LINK_LABEL.to_string(),
            url: url.clone(),
            kind: "smart",
            app_context: Some(APP_LINK_CONTEXT.to_string()),
        });
    }
    if absolute {
        links.push(Link {
            label: APP_LINK_LABEL.to_string(),
            url,
            kind: "absolute",
            app_context: None,
        });
    }
    links
}

/// The topic code of the grading card (the one with the grades).
pub const GRADING_TOPIC: &str = "crs-icans-grade";

/// Puts `links` on the grading card of `cards` (patient-view: the card with the grades,
/// present only when a CAR-T infusion is on record); other cards stay without links.
pub fn attach_app_links(hook: Hook, cards: &mut [Card], links: &[Link]) {
    if hook != Hook::PatientView || links.is_empty() {
        return;
    }
    for c in cards.iter_mut() {
        if c.source.topic.code == GRADING_TOPIC {
            c.links = links.to_vec();
        }
    }
}

/// The response body: `{"cards": [...]}`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CdsResponse {
    /// The cards.
    pub cards: Vec<Card>,
}

/// Everything card construction needs.
#[derive(Clone, Copy, Debug)]
pub struct CardInput<'a> {
    /// The hook being answered.
    pub hook: Hook,
    /// The patient (a FHIR id).
    pub patient_id: &'a str,
    /// The assessment.
    pub assessment: &'a Assessment,
    /// The checked draft orders.
    pub orders: &'a [DoseOrder],
    /// Input problems in words ("vitals: Observation/x: unknown unit").
    pub data_issues: &'a [String],
    /// `context.draftOrders` (order hooks), to build update suggestions.
    pub draft_orders: Option<&'a Value>,
    /// The toxicity course (patient-view), for the card line and the `course` key.
    pub course: Option<&'a crate::domain::Course>,
}

fn topic(code: &'static str, display: &'static str) -> Source {
    Source {
        label: SOURCE_LABEL,
        url: SOURCE_URL,
        topic: Coding {
            system: TOPIC_SYSTEM,
            code,
            display,
        },
    }
}

fn override_reasons() -> Vec<Coding> {
    let hl7 = |code, display| Coding {
        system: NON_ADHERENCE_SYSTEM,
        code,
        display,
    };
    vec![
        hl7(
            "risk-benefit-ratio",
            "Recipient assessment of risk/benefit ratio",
        ),
        hl7(
            "action-completed",
            "Recommended action was already completed",
        ),
        hl7(
            "policy-contradicts",
            "Institutional policy/guideline contradicts the recommended action",
        ),
        hl7(
            "patient-contraindication",
            "Patient has contraindication to recommended action",
        ),
        // No HL7 reason says "the data the card rests on is wrong": our own code.
        Coding {
            system: OVERRIDE_SYSTEM,
            code: "data-incorrect",
            display: "The patient data shown is incorrect or out of date",
        },
    ]
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn ext(assessment: &Assessment, check: Option<&DoseCheck>) -> Value {
    json!({ EXTENSION_KEY: extension(assessment, check) })
}

/// Cuts a summary to fewer than 140 characters at a character boundary.
pub fn clip_summary(s: String) -> String {
    if s.chars().count() < 140 {
        return s;
    }
    let mut out: String = s.chars().take(136).collect();
    out.push_str("...");
    out
}

fn grade_text(g: Option<u8>, lower_bound: bool) -> String {
    match (g, lower_bound) {
        (Some(g), true) => format!("grade ≥ {g}"),
        (Some(g), false) => format!("grade {g}"),
        (None, _) => "not assessable".to_string(),
    }
}

/// Whether the ICANS grade is a lower bound (a domain could not be assessed).
fn icans_lower_bound(a: &Assessment) -> bool {
    a.icans.lower_bound && a.icans.grade.is_some()
}

fn icans_text(a: &Assessment) -> String {
    match (a.icans.grade, a.icans.state) {
        (Some(g), _) => grade_text(Some(g), icans_lower_bound(a)),
        (None, IcansState::NotAssessable) => "not assessable (sedated/intubated)".into(),
        (None, _) => "not assessed".into(),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The grading card summary: "CRS grade 3, ICANS grade 1 (ASTCT) - day 4 after axi-cel".
pub fn grading_summary(a: &Assessment) -> String {
    let product = a
        .infusion
        .as_ref()
        .and_then(|i| i.product)
        .map(|p| p.short_name())
        .unwrap_or("CAR-T");
    let day = match a.day {
        Some(d) if d >= 0 => format!(" - day {d} after {product}"),
        _ => String::new(),
    };
    clip_summary(format!(
        "CRS {}, ICANS {} (ASTCT){day}",
        grade_text(a.crs.grade, a.crs.lower_bound),
        icans_text(a)
    ))
}

fn opt_grade(g: Option<u8>) -> String {
    g.map_or_else(|| "not assessed".to_string(), |g| g.to_string())
}

/// "tocilizumab 8 mg/kg = 560 mg IV over 1 h; dose 2 of at most 4".
fn tocilizumab_dose_text(t: &crate::domain::TocilizumabDose) -> String {
    format!(
        "tocilizumab {} mg/kg = {} mg IV over 1 h; dose {} of at most {}",
        one_decimal(t.mg_per_kg),
        mg(t.mg),
        t.dose_number,
        t.max_doses
    )
}

fn grading_detail(a: &Assessment, issues: &[String]) -> String {
    let now = a.at;
    let mut d = String::new();
    if let Some(t) = &a.tocilizumab_dose {
        d.push_str(&format!(
            "**Indicated now: {}** _(tocilizumab label; ASCO 2021)_\n\n",
            tocilizumab_dose_text(t)
        ));
    }
    if let Some(m) = &a.crs.masking_drug {
        d.push_str(&format!(
            "**No documented fever; {} given on {} may mask one: assess for CRS vs another cause.**\n\n",
            m.drug.key(),
            text::date(m.at)
        ));
    }
    let worse = |now: Option<u8>, worst: Option<u8>| worst.filter(|w| now.is_none_or(|n| *w > n));
    let worst_crs = worse(a.crs.grade, a.crs_worst_24h);
    let worst_icans = worse(a.icans.grade, a.icans_worst_24h);
    if worst_crs.is_some() || worst_icans.is_some() {
        let mut parts = Vec::new();
        if let Some(w) = worst_crs {
            parts.push(format!("CRS {w}"));
        }
        if let Some(w) = worst_icans {
            parts.push(format!("ICANS {w}"));
        }
        d.push_str(&format!(
            "Worse earlier in the grading window: {} (the grades below are the current ones).\n\n",
            parts.join(", ")
        ));
    }
    d.push_str(&format!(
        "**CRS {}**",
        grade_text(a.crs.grade, a.crs.lower_bound)
    ));
    if a.crs.lower_bound {
        d.push_str(" (a domain could not be assessed: the grade is a lower bound)");
    }
    d.push_str("\n\n");
    let gate = match &a.crs.fever_gate {
        FeverGate::Fever(t) => format!(
            "fever {} °C ({})",
            one_decimal(t.value.value()),
            when(t.at, now)
        ),
        FeverGate::Waived(m) => format!(
            "fever requirement waived: {} given {}",
            m.drug.key(),
            when(m.at, now)
        ),
        FeverGate::Closed(t) => format!(
            "afebrile (maximum {} °C): CRS grade 0",
            one_decimal(t.value.value())
        ),
        FeverGate::Unknown => {
            "no temperature and no antipyretic/anticytokine therapy: fever not assessable".into()
        }
    };
    d.push_str(&format!("- Fever: {gate}\n"));
    let pressors: Vec<&str> = a
        .crs
        .hypotension
        .vasopressors
        .iter()
        .map(|v| v.key())
        .collect();
    d.push_str(&format!(
        "- Hypotension: {}{}\n",
        opt_grade(a.crs.hypotension.grade),
        if pressors.is_empty() {
            String::new()
        } else {
            format!(" (vasopressors: {})", pressors.join(", "))
        }
    ));
    d.push_str(&format!(
        "- Hypoxia: {}{}{}\n\n",
        opt_grade(a.crs.hypoxia.grade),
        a.crs
            .hypoxia
            .support
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default(),
        if a.crs.hypoxia.indeterminate {
            " - intubated for airway protection only: indeterminate"
        } else {
            ""
        }
    ));
    d.push_str(&format!("**ICANS {}**\n\n", icans_text(a)));
    d.push_str(&format!(
        "- Encephalopathy (ICE/CAPD): {}\n- Depressed consciousness: {}\n- Seizure: {}\n- Motor: {}\n- Cerebral edema: {}\n\n",
        opt_grade(a.icans.encephalopathy),
        opt_grade(a.icans.consciousness),
        a.icans.seizure,
        a.icans.motor,
        a.icans.cerebral_edema
    ));
    if !a.icans.sedation.is_empty() {
        d.push_str("Sedation (consciousness and ICE/CAPD not graded):\n");
        for e in &a.icans.sedation {
            d.push_str(&format!(
                "- {} ({})\n",
                for_clinician(&e.finding),
                when(e.at, now)
            ));
        }
        d.push('\n');
    }
    d.push_str(&recommendations_section(a));
    d.push_str(&evidence_section(&a.report.evidence, now));
    d.push_str(&missing_section(a));
    if !issues.is_empty() {
        d.push_str(&format!(
            "{} input problem(s): see the data-quality card.\n\n",
            issues.len()
        ));
    }
    d.push_str(REFERENCES);
    d
}

/// A finding, note or issue as a clinician reads it: clinician units, and no internal
/// rule ids; those stay in the extension (RULES.md §7 S14).
fn for_clinician(s: &str) -> String {
    clinician_units(&without_rule_ids(s))
}

/// The evidence as clinicians read it: the finding in clinician units and when it was
/// recorded. Resource ids stay in the extension (RULES.md §7 S14).
fn evidence_section(evidence: &[Evidence], now: Timestamp) -> String {
    let mut d = String::from("### Evidence\n");
    if evidence.is_empty() {
        d.push_str("No findings in the grading window.\n\n");
        return d;
    }
    d.push_str("| Finding | When |\n|---|---|\n");
    for e in evidence {
        d.push_str(&format!(
            "| {} | {} |\n",
            cell(&for_clinician(&e.finding)),
            when(e.at, now)
        ));
    }
    d.push('\n');
    d
}

fn missing_section(a: &Assessment) -> String {
    if a.report.missing.is_empty() && a.report.notes.is_empty() {
        return String::new();
    }
    let mut d = String::from("### Missing data and notes\n");
    for m in &a.report.missing {
        d.push_str(&format!("- {}\n", for_clinician(&m.to_string())));
    }
    for n in &a.report.notes {
        d.push_str(&format!("- {}\n", for_clinician(&n.0)));
    }
    d.push('\n');
    d
}

/// The per-grade actions, each once, with its literature source (RULES.md §7 S14).
fn recommendations_section(a: &Assessment) -> String {
    if a.recommendations.is_empty() {
        return String::new();
    }
    let mut d = String::from("### Recommended actions\n");
    let mut seen: Vec<&str> = Vec::new();
    for r in a.recommendations.iter().filter(|r| r.scope == Scope::Grade) {
        if seen.contains(&r.text) {
            continue;
        }
        seen.push(r.text);
        let source = cite(r.source);
        if source.is_empty() {
            d.push_str(&format!("- {}\n", r.text));
        } else {
            d.push_str(&format!("- {} _({source})_\n", r.text));
        }
    }
    d.push('\n');
    d
}

fn dedup_refs<'a>(evidence: &'a [Evidence], prefixes: &[&str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for e in evidence {
        let r = e.source.0.as_str();
        if prefixes.iter().any(|p| r.starts_with(p)) && !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// A grade Observation conforming to `fhir-profiles/StructureDefinition-{crs,icans}-grade.json`:
/// valueInteger or dataAbsentReason, category exam, status preliminary (suggested),
/// derivedFrom the Observations, grade-evidence extensions for the rest.
pub fn grade_observation(
    code: &'static str,
    display: &'static str,
    grade: Option<u8>,
    absent_reason: &'static str,
    patient_id: &str,
    at: Timestamp,
    evidence: &[Evidence],
) -> Value {
    let mut obs = json!({
        "resourceType": "Observation",
        "meta": { "profile": [format!("https://w3id.org/crs-cds/fhir/StructureDefinition/{code}")] },
        "status": "preliminary",
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "exam",
            "display": "Exam"
        }] }],
        "code": { "coding": [{ "system": IEC, "code": code, "display": display }] },
        "subject": { "reference": format!("Patient/{patient_id}") },
        "effectiveDateTime": format_time(at),
        "method": { "text": "ASTCT 2019 consensus grading (Lee et al. 2019)" },
    });
    match grade {
        Some(g) => obs["valueInteger"] = json!(g),
        None => {
            obs["dataAbsentReason"] = json!({ "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                "code": absent_reason
            }] })
        }
    }
    let derived = dedup_refs(evidence, &["Observation/"]);
    if !derived.is_empty() {
        obs["derivedFrom"] = derived.iter().map(|r| json!({ "reference": r })).collect();
    }
    let other = dedup_refs(
        evidence,
        &[
            "MedicationAdministration/",
            "MedicationRequest/",
            "Procedure/",
        ],
    );
    if !other.is_empty() {
        obs["extension"] = other
            .iter()
            .map(|r| json!({ "url": GRADE_EVIDENCE_URL, "valueReference": { "reference": r } }))
            .collect();
    }
    obs
}

fn grading_card(input: &CardInput<'_>) -> Card {
    let a = input.assessment;
    // The grading card's indicator follows the grades alone (0-1 info, 2 warning, 3-4
    // critical); HLH suspicion has a card of its own.
    let indicator = Indicator::for_grade(a.crs.grade).max(Indicator::for_grade(a.icans.grade));
    let crs_absent = "unknown";
    let icans_absent = if a.icans.state == IcansState::NotAssessable {
        "not-performed"
    } else {
        "unknown"
    };
    let crs_obs = grade_observation(
        "crs-grade",
        "CRS grade (ASTCT 2019)",
        a.crs.grade,
        crs_absent,
        input.patient_id,
        a.at,
        a.crs_evidence(),
    );
    let icans_obs = grade_observation(
        "icans-grade",
        "ICANS grade (ASTCT 2019)",
        a.icans.grade,
        icans_absent,
        input.patient_id,
        a.at,
        a.icans_evidence(),
    );
    // RULES.md §7 S13: only a definite grade is offered for recording; a lower bound or a
    // grade that could not be assessed is never written down as if it were one.
    let crs_definite = a.crs.grade.filter(|_| !a.crs.lower_bound);
    let icans_definite = a.icans.grade.filter(|_| !icans_lower_bound(a));
    let mut actions = Vec::new();
    let mut recorded = Vec::new();
    if let Some(g) = crs_definite {
        recorded.push(format!("CRS grade {g}"));
        actions.push(Action {
            kind: "create",
            description: "Record the suggested CRS grade (ASTCT 2019)".into(),
            resource: Some(crs_obs),
            resource_id: None,
        });
    }
    if let Some(g) = icans_definite {
        recorded.push(format!("ICANS grade {g}"));
        actions.push(Action {
            kind: "create",
            description: "Record the suggested ICANS grade (ASTCT 2019)".into(),
            resource: Some(icans_obs),
            resource_id: None,
        });
    }
    let suggestions = if actions.is_empty() {
        Vec::new()
    } else {
        vec![Suggestion {
            label: format!("Record {} (preliminary)", recorded.join(" and ")),
            uuid: uuid(),
            is_recommended: false,
            actions,
        }]
    };
    let mut suggestions = suggestions;
    if let Some(t) = &a.tocilizumab_dose {
        suggestions.insert(
            0,
            Suggestion {
                label: format!("Order {}", tocilizumab_dose_text(t)),
                uuid: uuid(),
                is_recommended: true,
                actions: vec![Action {
                    kind: "create",
                    description: format!("Order {}", tocilizumab_dose_text(t)),
                    resource: Some(tocilizumab_order(input.patient_id, a.at, t.mg)),
                    resource_id: None,
                }],
            },
        );
    }
    let selection_behavior = (!suggestions.is_empty()).then_some("at-most-one");
    Card {
        uuid: uuid(),
        summary: grading_summary(a),
        detail: super::course::with_course_line(input.course, grading_detail(a, input.data_issues)),
        indicator,
        source: topic(GRADING_TOPIC, "CRS/ICANS grade"),
        suggestions,
        selection_behavior,
        override_reasons: Vec::new(),
        links: Vec::new(),
        extension: super::course::with_course_extension(input.course, ext(a, None)),
    }
}

fn plain_card(
    a: &Assessment,
    summary: String,
    detail: String,
    indicator: Indicator,
    source: Source,
    check: Option<&DoseCheck>,
) -> Card {
    Card {
        uuid: uuid(),
        summary: clip_summary(summary),
        detail,
        indicator,
        source,
        suggestions: Vec::new(),
        selection_behavior: None,
        override_reasons: if indicator >= Indicator::Warning {
            override_reasons()
        } else {
            Vec::new()
        },
        links: Vec::new(),
        extension: ext(a, check),
    }
}

fn hlh_card(a: &Assessment) -> Card {
    let h = &a.hlh;
    let mut d = String::from(
        "CARTOX criteria: peak ferritin > 10,000 ng/mL with at least two organ criteria.\n\n",
    );
    d.push_str(&format!(
        "- Peak ferritin: {}\n- Liver (bilirubin/AST/ALT grade ≥ 3): {}\n- Renal (oliguria or creatinine rise grade ≥ 3): {}\n- Pulmonary edema grade ≥ 3: {}\n- Hemophagocytosis: {}\n- HScore: {} (information only; not validated after CAR-T; cut-off {})\n\n",
        h.ferritin.map_or_else(|| "not measured".to_string(), |f| format!("{f} ng/mL")),
        criterion_text(h.liver),
        criterion_text(h.renal),
        criterion_text(h.pulmonary),
        criterion_text(h.hemophagocytosis),
        a.hscore.points,
        crate::domain::HScore::CUTOFF,
    ));
    d.push_str(&own_point(a, Scope::Hlh));
    d.push_str(SOURCE_LINE);
    plain_card(
        a,
        "Suspected HLH/MAS after CAR-T: ferritin > 10,000 ng/mL with organ toxicity (CARTOX)"
            .into(),
        d,
        Indicator::Critical,
        topic("hlh-suspected", "Suspected HLH/MAS"),
        None,
    )
}

/// The recommendation lines of one card, as a markdown list.
fn own_point(a: &Assessment, scope: Scope) -> String {
    let mut d = String::new();
    for r in a.recommendations.iter().filter(|r| r.scope == scope) {
        let source = cite(r.source);
        d.push_str(&format!("- {} _({source})_\n", r.text));
    }
    if !d.is_empty() {
        d.push('\n');
    }
    d
}

fn antifungal_card(a: &Assessment) -> Card {
    let d = format!(
        "Steroids are given, ordered or indicated for CRS/ICANS.\n\n{}{SOURCE_LINE}",
        own_point(a, Scope::Antifungal),
    );
    plain_card(
        a,
        "Steroids for CRS/ICANS: consider antifungal prophylaxis".into(),
        d,
        Indicator::Info,
        topic("antifungal-prophylaxis", "Antifungal prophylaxis"),
        None,
    )
}

fn gm_csf_card(a: &Assessment, ordered: bool) -> Card {
    let what = if ordered { "ordered" } else { "given" };
    let d = format!(
        "Sargramostim (GM-CSF) is {what} within the CAR-T toxicity window. GM-CSF is not recommended after CAR-T; G-CSF (filgrastim) is acceptable _(ASCO 2021; CARTOX 2018)_.\n\n{SOURCE_LINE}"
    );
    let mut c = plain_card(
        a,
        format!("Avoid GM-CSF (sargramostim) after CAR-T: {what} in the toxicity window"),
        d,
        Indicator::Warning,
        topic("gm-csf-avoid", "GM-CSF after CAR-T"),
        None,
    );
    c.override_reasons = override_reasons();
    c
}

/// Input problems (unusable data) have a card of their own; what is missing stays on the
/// grading card beside the grade it qualifies (RULES.md §7 S14: stated once).
fn data_card(a: &Assessment, issues: &[String]) -> Option<Card> {
    if issues.is_empty() {
        return None;
    }
    let mut d = String::from(
        "Data that could not be used is never read as normal: the affected domains are reported as not assessed.\n\n### Unusable data\n",
    );
    for i in issues {
        d.push_str(&format!("- {}\n", for_clinician(i)));
    }
    d.push('\n');
    d.push_str(SOURCE_LINE);
    Some(plain_card(
        a,
        format!("Grading data problems: {} input problem(s)", issues.len()),
        d,
        Indicator::Info,
        topic("data-quality", "Missing or unusable data"),
        None,
    ))
}

fn drug_name(d: Drug) -> String {
    let k = d.key();
    let mut c = k.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn mg(v: f64) -> String {
    one_decimal(v)
}

fn criterion_text(c: crate::domain::Criterion) -> &'static str {
    match c {
        crate::domain::Criterion::Met => "met",
        crate::domain::Criterion::NotMet => "not met",
        crate::domain::Criterion::NotAssessed => "not assessed",
    }
}

fn issue_text(i: DoseIssue) -> &'static str {
    match i {
        DoseIssue::ExceedsMax => "dose above the maximum",
        DoseIssue::IntervalTooShort => "less than 8 h since the last dose",
        DoseIssue::Max24hReached => "3 doses already given in 24 h",
        DoseIssue::MaxTotalReached => "4 doses already given in this episode",
        DoseIssue::BelowLabelAge => "patient younger than the labelled 2 years",
        DoseIssue::WeightUnavailable => "weight-based limit not checked: no usable body weight",
        DoseIssue::DoseUnreadable => "the ordered dose could not be read",
    }
}

/// The indicator of a dose check: hard-rule violations of the dose, the interval, the
/// 24-h or the total count are critical (RULES.md B.1, §7 S8); other issues and an
/// unreadable dose are warnings.
pub fn dose_indicator(check: &DoseCheck) -> Indicator {
    let hard_stop = check.issues.iter().any(|i| {
        matches!(
            i,
            DoseIssue::ExceedsMax
                | DoseIssue::IntervalTooShort
                | DoseIssue::Max24hReached
                | DoseIssue::MaxTotalReached
        )
    });
    if check.hard && hard_stop {
        Indicator::Critical
    } else if !check.issues.is_empty() || check.ordered_mg.is_none() {
        Indicator::Warning
    } else {
        Indicator::Info
    }
}

/// Whether the B.1 rules allow any further dose now: after `max-total-reached`,
/// `max-24h-reached` or `interval-too-short` no corrected dose is suggested
/// (RULES.md §7 S8).
fn further_dose_allowed(check: &DoseCheck) -> bool {
    !check.issues.iter().any(|i| i.forbids_dose())
}

/// The one-line summary of a dose-check card.
pub fn dose_summary(check: &DoseCheck) -> String {
    let name = drug_name(check.drug);
    let ordered = check
        .ordered_mg
        .map(|v| format!(" {} mg", mg(v)))
        .unwrap_or_default();
    if check.ordered_mg.is_none() {
        return match &check.unreadable_reason {
            Some(why) => format!("{name}: dose not checked: {why}"),
            None => format!("{name}: the ordered dose could not be read and was not checked"),
        };
    }
    if check.issues.contains(&DoseIssue::ExceedsMax)
        && let Some(max) = check.max_allowed_mg
    {
        return format!(
            "{name}{ordered} exceeds the maximum of {} mg per dose",
            mg(max)
        );
    }
    if check.issues.is_empty() {
        let max = check
            .max_allowed_mg
            .map(|m| format!(" (max {} mg)", mg(m)))
            .unwrap_or_default();
        return format!("{name}{ordered}: within the dose limits{max}");
    }
    let issues: Vec<&str> = check.issues.iter().map(|i| issue_text(*i)).collect();
    format!("{name}{ordered}: {}", issues.join("; "))
}

fn find_draft<'a>(draft_orders: Option<&'a Value>, reference: &str) -> Option<&'a Value> {
    let (rtype, id) = reference.split_once('/')?;
    let matches = |r: &Value| r["resourceType"] == rtype && r["id"] == id;
    let bundle = draft_orders?;
    if matches(bundle) {
        return Some(bundle);
    }
    bundle["entry"]
        .as_array()?
        .iter()
        .map(|e| &e["resource"])
        .find(|r| matches(r))
}

/// The draft order with its dose replaced by `max_mg` (the update suggestion).
pub fn corrected_order(draft: &Value, max_mg: f64) -> Value {
    let mut order = draft.clone();
    let quantity = json!({ "value": number(max_mg), "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg" });
    match order
        .get_mut("dosageInstruction")
        .and_then(Value::as_array_mut)
    {
        Some(list) if !list.is_empty() => {
            let first = &mut list[0];
            match first.get_mut("doseAndRate").and_then(Value::as_array_mut) {
                Some(dr) if !dr.is_empty() => dr[0]["doseQuantity"] = quantity,
                _ => first["doseAndRate"] = json!([{ "doseQuantity": quantity }]),
            }
        }
        _ => {
            order["dosageInstruction"] = json!([{ "doseAndRate": [{ "doseQuantity": quantity }] }])
        }
    }
    order
}

fn dose_card(input: &CardInput<'_>, check: &DoseCheck) -> Card {
    let a = input.assessment;
    let indicator = dose_indicator(check);
    let mut d = format!("{} order.\n\n", drug_name(check.drug));
    d.push_str(&format!(
        "- Ordered: {}\n- Maximum allowed per dose: {}\n",
        check
            .ordered_mg
            .map_or_else(|| "unreadable".to_string(), |v| format!("{} mg", mg(v))),
        check
            .max_allowed_mg
            .map_or_else(|| "not determined".to_string(), |v| format!("{} mg", mg(v)))
    ));
    if let Some(w) = &a.weight {
        d.push_str(&format!(
            "- Dosing weight: {} kg ({})\n",
            one_decimal(w.value.value()),
            when(w.at, a.at)
        ));
    }
    d.push_str(&format!(
        "- Rule: {}\n",
        if check.hard {
            "hard limit (tocilizumab label, ASCO 2021)"
        } else {
            "soft ceiling (warning only)"
        }
    ));
    for i in &check.issues {
        d.push_str(&format!("- Issue: {}\n", issue_text(*i)));
    }
    if !further_dose_allowed(check) {
        if check.issues.contains(&DoseIssue::MaxTotalReached) {
            d.push_str("- No further tocilizumab dose is allowed in this CRS episode (4 doses given); consider the refractory-CRS options.\n");
        } else if let Some(next) = check.next_dose_allowed_at {
            // RULES.md §7 S8: say when the next dose is allowed.
            d.push_str(&format!(
                "- No further dose now: next dose allowed {} ({}).\n",
                when(next, a.at),
                if check.issues.contains(&DoseIssue::Max24hReached) {
                    "3 doses in 24 h"
                } else {
                    "8 h after the last dose"
                }
            ));
        } else if check.issues.contains(&DoseIssue::Max24hReached) {
            d.push_str(
                "- No further dose is allowed until fewer than 3 doses fall in the last 24 h.\n",
            );
        } else {
            d.push_str("- The next dose is allowed 8 h after the last one.\n");
        }
    }
    for n in &check.notes {
        d.push_str(&format!("- Note: {}\n", for_clinician(n)));
    }
    d.push('\n');
    if check.drug == Drug::Tocilizumab {
        d.push_str("Tocilizumab: 8 mg/kg IV (12 mg/kg under 30 kg), max 800 mg per dose; at least 8 h apart; max 3 doses in 24 h and 4 in total.\n\n");
    }
    d.push_str(SOURCE_LINE);
    let mut card = plain_card(
        a,
        dose_summary(check),
        d,
        indicator,
        topic("dose-check", "Dose check"),
        Some(check),
    );
    if further_dose_allowed(check)
        && let Some(max) = check.suggest_dose_mg
        && let Some(draft) = find_draft(input.draft_orders, &check.source.0)
    {
        card.suggestions.push(Suggestion {
            label: format!("Change the dose to {} mg", mg(max)),
            uuid: uuid(),
            is_recommended: true,
            actions: vec![Action {
                kind: "update",
                description: format!(
                    "Set the {} dose to the maximum of {} mg",
                    check.drug.key(),
                    mg(max)
                ),
                resource: Some(corrected_order(draft, max)),
                resource_id: None,
            }],
        });
        card.selection_behavior = Some("at-most-one");
    }
    card
}

const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

/// A draft IV MedicationRequest of `dose_mg` every `interval_hours` (none: once).
fn iv_order(
    patient_id: &str,
    at: Timestamp,
    (rxcui, name): (&str, &str),
    dose_mg: f64,
    interval_hours: Option<f64>,
    text: &str,
) -> Value {
    let mut dosage = json!({
        "text": text,
        "route": { "coding": [{ "system": "http://snomed.info/sct", "code": "47625008", "display": "Intravenous route" }] },
        "doseAndRate": [{ "doseQuantity": { "value": number(dose_mg), "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg" } }]
    });
    if let Some(h) = interval_hours {
        dosage["timing"] =
            json!({ "repeat": { "frequency": 1, "period": number(h), "periodUnit": "h" } });
    }
    json!({
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{ "system": RXNORM, "code": rxcui, "display": name }],
            "text": name
        },
        "subject": { "reference": format!("Patient/{patient_id}") },
        "authoredOn": format_time(at),
        "dosageInstruction": [dosage]
    })
}

/// The suggested steroid (RULES.md §7 S9) as a draft MedicationRequest.
pub fn steroid_order(patient_id: &str, at: Timestamp, s: &SteroidSuggestion) -> Value {
    let drug = match s.drug {
        Drug::Methylprednisolone => ("6902", "methylprednisolone"),
        _ => ("3264", "dexamethasone"),
    };
    iv_order(
        patient_id,
        at,
        drug,
        s.dose_mg,
        Some(s.interval_hours),
        &s.text,
    )
}

/// Tocilizumab `mg` IV once, over 1 h, as a draft MedicationRequest.
pub fn tocilizumab_order(patient_id: &str, at: Timestamp, mg_dose: f64) -> Value {
    iv_order(
        patient_id,
        at,
        ("612865", "tocilizumab"),
        mg_dose,
        None,
        &format!("tocilizumab {} mg IV over 1 hour", mg(mg_dose)),
    )
}

fn tocilizumab_with_icans_card(input: &CardInput<'_>, order: &DoseOrder) -> Card {
    let a = input.assessment;
    let steroid = a.steroid_suggestion.as_ref();
    let instead = steroid.map_or_else(
        || "a corticosteroid (dose per protocol: no dose could be computed from the recorded age and weight)".to_string(),
        |s| s.text.clone(),
    );
    let d = format!(
        "ICANS {} with CRS {}: tocilizumab does not cross the blood-brain barrier and may worsen neurotoxicity; corticosteroids are preferred _(expert summary; ASCO 2021)_. This is a warning, not a hard stop.\n\nInstead: {instead}.\n\n{SOURCE_LINE}",
        icans_text(a),
        grade_text(a.crs.grade, a.crs.lower_bound),
    );
    let mut card = plain_card(
        a,
        format!(
            "Tocilizumab with ICANS {} and CRS {}: prefer a corticosteroid",
            icans_text(a),
            grade_text(a.crs.grade, a.crs.lower_bound)
        ),
        d,
        Indicator::Warning,
        topic("tocilizumab-with-icans", "Tocilizumab with ICANS"),
        None,
    );
    // RULES.md §7 S9: the suggested steroid is dosed by age, weight and grade and passes
    // the service's own dose check; `create` comes before `delete`, so a client that
    // applies only the first action is not left without an order.
    if let Some(s) = steroid {
        card.suggestions.push(Suggestion {
            label: format!("Replace tocilizumab with {}", s.text),
            uuid: uuid(),
            is_recommended: true,
            actions: vec![
                Action {
                    kind: "create",
                    description: format!("Order {}", s.text),
                    resource: Some(steroid_order(input.patient_id, a.at, s)),
                    resource_id: None,
                },
                Action {
                    kind: "delete",
                    description: "Remove the tocilizumab order".into(),
                    resource: None,
                    resource_id: Some(order.source.0.clone()),
                },
            ],
        });
        card.selection_behavior = Some("at-most-one");
    }
    card
}

/// Possible HLH/MAS (RULES.md §7 S10): ferritin above 10,000 ng/mL, fewer than two
/// criteria met, and criteria that could not be assessed; never silence.
fn hlh_possible_card(a: &Assessment) -> Card {
    let h = &a.hlh;
    let ferritin = h.ferritin.map_or_else(String::new, |f| format!("{f:.0}"));
    let not_assessed = h.not_assessed();
    let mut d = format!(
        "Peak ferritin {ferritin} ng/mL (> 10,000) with {} of the CARTOX organ criteria met; HLH/MAS can't be excluded because these were not assessed:\n\n",
        h.organ_count()
    );
    for c in &not_assessed {
        d.push_str(&format!("- {c}\n"));
    }
    d.push_str("\nObtain the missing results (with reference ranges and a pre-infusion creatinine baseline) and reassess.\n\n");
    d.push_str(&own_point(a, Scope::Hlh));
    d.push_str(SOURCE_LINE);
    plain_card(
        a,
        format!(
            "Possible HLH/MAS: ferritin {ferritin} ng/mL; {} criteria not assessed",
            not_assessed.len()
        ),
        d,
        Indicator::Warning,
        topic("hlh-possible", "Possible HLH/MAS"),
        None,
    )
}

/// The cards for an assessed CAR-T patient (callers answer `{"cards": []}` without
/// an infusion on record).
pub fn cards(input: &CardInput<'_>) -> Vec<Card> {
    let a = input.assessment;
    let mut out = Vec::new();
    match input.hook {
        Hook::PatientView => {
            out.push(grading_card(input));
            if a.flags.contains(&Flag::HlhSuspected) {
                out.push(hlh_card(a));
            } else if a.flags.contains(&Flag::HlhPossible) {
                out.push(hlh_possible_card(a));
            }
            if a.flags.contains(&Flag::GmCsfAvoid) {
                out.push(gm_csf_card(a, false));
            }
            if a.flags.contains(&Flag::AntifungalProphylaxis) {
                out.push(antifungal_card(a));
            }
            out.extend(data_card(a, input.data_issues));
        }
        Hook::OrderSelect | Hook::OrderSign => {
            for check in &a.dose_checks {
                out.push(dose_card(input, check));
            }
            if a.flags.contains(&Flag::TocilizumabWithIcans) {
                for order in input.orders.iter().filter(|o| o.drug == Drug::Tocilizumab) {
                    out.push(tocilizumab_with_icans_card(input, order));
                }
            }
            if a.flags.contains(&Flag::GmCsfAvoid)
                && input
                    .orders
                    .iter()
                    .any(|o| o.drug.class() == DrugClass::GmCsf)
            {
                out.push(gm_csf_card(a, true));
            }
            // RULES.md §7 S6 / FHIR-INPUTS "Units": a weight refused for its unit is said
            // so; the dose card alone would read "no usable body weight" with no reason.
            if a.weight.is_none() && !a.dose_checks.is_empty() {
                out.extend(data_card(a, input.data_issues));
            }
        }
    }
    out
}

pub mod text;

#[cfg(test)]
mod tests;

/// The one card when the record held more entries to check than
/// `server.max_parsed_entries` (issue 10): nothing was graded, and it says so, what was not
/// checked (the draft orders' doses included) and what to do. Grading on part of the record
/// could miss the finding that sets the grade, so no grade, flag or recommendation is
/// given (RULES.md §7: missing data is never turned into reassurance).
pub fn not_graded_card(entries: usize, limit: usize, unchecked_orders: &[Drug]) -> Card {
    let mut d = String::from(
        "CRS and ICANS were **not graded** and no recommendation was made: grading on part \
         of the record could miss the fever, low blood pressure, low oxygen or neurological \
         finding that sets the grade.\n\n\
         Not checked: the vital signs, oxygen support, neurological assessments, laboratory \
         results, medications and procedures in this record.\n\n",
    );
    let mut counts: Vec<(Drug, usize)> = Vec::new();
    for &drug in unchecked_orders {
        match counts.iter_mut().find(|(d, _)| *d == drug) {
            Some((_, n)) => *n += 1,
            None => counts.push((drug, 1)),
        }
    }
    if !counts.is_empty() {
        let listed: Vec<String> = counts
            .iter()
            .map(|(drug, n)| format!("{} ({n})", drug_name(*drug)))
            .collect();
        d.push_str(&format!(
            "**No dose check was done** on the draft orders: {}. Check each dose by hand \
             before signing.\n\n",
            listed.join(", ")
        ));
    }
    d.push_str(&format!(
        "What to do: grade CRS and ICANS by hand from the chart, or ask the service's \
         administrators to raise `server.max_parsed_entries` (now {limit}) above {entries}.\n\n"
    ));
    d.push_str(SOURCE_LINE);
    let drugs: Vec<&str> = unchecked_orders.iter().map(|d| d.key()).collect();
    Card {
        uuid: uuid(),
        summary: clip_summary(format!(
            "CAR-T toxicity not graded: the record holds {entries} entries to check, over this service's limit of {limit}"
        )),
        detail: d,
        indicator: Indicator::Warning,
        source: topic("data-quality", "Missing or unusable data"),
        suggestions: Vec::new(),
        selection_behavior: None,
        override_reasons: override_reasons(),
        links: Vec::new(),
        extension: json!({ EXTENSION_KEY: {
            "crsGrade": null,
            "icansGrade": null,
            "flags": [],
            "evidence": [],
            "missing": [format!(
                "not graded: {entries} entries to check, over server.max_parsed_entries ({limit})"
            )],
            "parsedEntriesLimit": limit,
            "entriesToParse": entries,
            "uncheckedOrders": drugs,
        }}),
    }
}
