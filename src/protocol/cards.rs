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
    IcansState, Timestamp,
};

/// The project's code system (`fhir-profiles/CodeSystem-iec-toxicity.json`).
pub const IEC: &str = "https://w3id.org/crs-cds/fhir/CodeSystem/iec-toxicity";
/// Card topics.
pub const TOPIC_SYSTEM: &str = "https://w3id.org/crs-cds/fhir/CodeSystem/card-topic";
/// Override reasons offered on warning and critical order cards.
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
    /// `{"org.crs-cds": {...}}`.
    pub extension: Value,
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
    let r = |code, display| Coding {
        system: OVERRIDE_SYSTEM,
        code,
        display,
    };
    vec![
        r(
            "clinical-judgement",
            "Clinical judgement: benefit outweighs the risk",
        ),
        r("already-addressed", "Already addressed"),
        r(
            "data-incorrect",
            "The patient data shown is incorrect or out of date",
        ),
        r("protocol", "Per study or institutional protocol"),
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
        (Some(g), true) => format!("grade ≥{g}"),
        (Some(g), false) => format!("grade {g}"),
        (None, _) => "not assessable".to_string(),
    }
}

fn icans_text(a: &Assessment) -> String {
    match (a.icans.grade, a.icans.state) {
        (Some(g), _) => format!("grade {g}"),
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

fn grading_detail(a: &Assessment, issues: &[String]) -> String {
    let mut d = String::new();
    d.push_str(&format!(
        "**CRS {}**",
        grade_text(a.crs.grade, a.crs.lower_bound)
    ));
    if a.crs.lower_bound {
        d.push_str(" (a domain could not be assessed: the grade is a lower bound)");
    }
    d.push_str("\n\n");
    let gate = match &a.crs.fever_gate {
        FeverGate::Fever(t) => format!("fever {} Cel at {}", t.value.value(), format_time(t.at)),
        FeverGate::Waived(m) => {
            format!(
                "fever requirement waived: {} given at {}",
                m.drug.key(),
                format_time(m.at)
            )
        }
        FeverGate::Closed(t) => format!("afebrile (maximum {} Cel): CRS grade 0", t.value.value()),
        FeverGate::Unknown => {
            "no temperature and no antipyretic/anticytokine therapy: fever not assessable".into()
        }
    };
    d.push_str(&format!("- Fever gate: {gate}\n"));
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
    if !a.flags.is_empty() {
        d.push_str(&format!(
            "Flags: {}\n\n",
            a.flags
                .iter()
                .map(|f| format!("`{}`", f.key()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    d.push_str(&evidence_section(&a.report.evidence));
    d.push_str(&missing_section(a, issues));
    d.push_str(&recommendations_section(a));
    d.push_str(REFERENCES);
    d
}

fn evidence_section(evidence: &[Evidence]) -> String {
    let mut d = String::from("### Evidence\n");
    if evidence.is_empty() {
        d.push_str("No findings in the grading window.\n\n");
        return d;
    }
    d.push_str("| Finding | Time | Resource |\n|---|---|---|\n");
    for e in evidence {
        d.push_str(&format!(
            "| {} | {} | {} |\n",
            cell(&e.finding),
            format_time(e.at),
            cell(&e.source.0)
        ));
    }
    d.push('\n');
    d
}

fn missing_section(a: &Assessment, issues: &[String]) -> String {
    if a.report.missing.is_empty() && a.report.notes.is_empty() && issues.is_empty() {
        return String::new();
    }
    let mut d = String::from("### Missing or unusable data\n");
    for m in &a.report.missing {
        d.push_str(&format!("- {m}\n"));
    }
    for n in &a.report.notes {
        d.push_str(&format!("- {}\n", n.0));
    }
    for i in issues {
        d.push_str(&format!("- {i}\n"));
    }
    d.push('\n');
    d
}

fn recommendations_section(a: &Assessment) -> String {
    if a.recommendations.is_empty() {
        return String::new();
    }
    let mut d = String::from("### Recommended actions\n");
    for r in &a.recommendations {
        d.push_str(&format!("- {} _({})_\n", r.text, r.source));
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
    let suggestion = Suggestion {
        label: format!(
            "Record CRS {} and ICANS {} (preliminary)",
            grade_text(a.crs.grade, false),
            a.icans
                .grade
                .map_or_else(|| "not assessable".to_string(), |g| format!("grade {g}"))
        ),
        uuid: uuid(),
        is_recommended: false,
        actions: vec![
            Action {
                kind: "create",
                description: "Record the suggested CRS grade (ASTCT 2019)".into(),
                resource: Some(crs_obs),
                resource_id: None,
            },
            Action {
                kind: "create",
                description: "Record the suggested ICANS grade (ASTCT 2019)".into(),
                resource: Some(icans_obs),
                resource_id: None,
            },
        ],
    };
    Card {
        uuid: uuid(),
        summary: grading_summary(a),
        detail: super::course::with_course_line(input.course, grading_detail(a, input.data_issues)),
        indicator,
        source: topic("crs-icans-grade", "CRS/ICANS grade"),
        suggestions: vec![suggestion],
        selection_behavior: Some("at-most-one"),
        override_reasons: Vec::new(),
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
        yes(h.liver),
        yes(h.renal),
        yes(h.pulmonary),
        yes(h.hemophagocytosis),
        a.hscore.points,
        crate::domain::HScore::CUTOFF,
    ));
    d.push_str(&recommendations_section(a));
    d.push_str(REFERENCES);
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

fn yes(b: bool) -> &'static str {
    if b { "met" } else { "not met" }
}

fn antifungal_card(a: &Assessment) -> Card {
    let d = format!(
        "Steroids are given, ordered or indicated for CRS/ICANS.\n\n{}{}",
        recommendations_section(a),
        REFERENCES
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
        "Sargramostim (GM-CSF) is {what} within the CAR-T toxicity window. GM-CSF is not recommended after CAR-T; G-CSF (filgrastim) is acceptable.\n\n{REFERENCES}"
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

fn data_card(a: &Assessment, issues: &[String]) -> Option<Card> {
    if a.report.missing.is_empty() && issues.is_empty() {
        return None;
    }
    let d = format!(
        "Missing data is never read as normal: the affected domains are reported as not assessed.\n\n{}{}",
        missing_section(a, issues),
        REFERENCES
    );
    Some(plain_card(
        a,
        format!(
            "Grading data gaps: {} missing item(s), {} input problem(s)",
            a.report.missing.len(),
            issues.len()
        ),
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
    number(v).to_string()
}

fn issue_text(i: DoseIssue) -> &'static str {
    match i {
        DoseIssue::ExceedsMax => "dose above the maximum",
        DoseIssue::IntervalTooShort => "less than 8 h since the last dose",
        DoseIssue::Max24hReached => "3 doses already given in 24 h",
        DoseIssue::MaxTotalReached => "4 doses already given in this episode",
        DoseIssue::BelowLabelAge => "patient younger than the labelled 2 years",
    }
}

/// The indicator of a dose check: hard-rule violations of the dose, the 24-h or the
/// total count are critical; other issues and an unreadable dose are warnings.
pub fn dose_indicator(check: &DoseCheck) -> Indicator {
    let hard_stop = check.issues.iter().any(|i| {
        matches!(
            i,
            DoseIssue::ExceedsMax | DoseIssue::Max24hReached | DoseIssue::MaxTotalReached
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

fn dose_summary(check: &DoseCheck) -> String {
    let name = drug_name(check.drug);
    let ordered = check
        .ordered_mg
        .map(|v| format!(" {} mg", mg(v)))
        .unwrap_or_default();
    if check.ordered_mg.is_none() {
        return format!("{name}: the ordered dose could not be read and was not checked");
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
    let mut d = format!(
        "Order {} ({}).\n\n",
        cell(&check.source.0),
        drug_name(check.drug)
    );
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
            "- Dosing weight: {} kg ({}, {})\n",
            mg(w.value.value()),
            format_time(w.at),
            cell(&w.source.0)
        ));
    }
    d.push_str(&format!(
        "- Rule: {}\n",
        if check.hard {
            "hard limit (tocilizumab label, ASCO)"
        } else {
            "soft ceiling (warning only)"
        }
    ));
    for i in &check.issues {
        d.push_str(&format!("- Issue: {}\n", issue_text(*i)));
    }
    for n in &check.notes {
        d.push_str(&format!("- Note: {n}\n"));
    }
    d.push('\n');
    if check.drug == Drug::Tocilizumab {
        d.push_str("Tocilizumab: 8 mg/kg IV (12 mg/kg under 30 kg), max 800 mg per dose; at least 8 h apart; max 3 doses in 24 h and 4 in total.\n\n");
    }
    d.push_str(REFERENCES);
    let mut card = plain_card(
        a,
        dose_summary(check),
        d,
        indicator,
        topic("dose-check", "Dose check"),
        Some(check),
    );
    if check.issues.contains(&DoseIssue::ExceedsMax)
        && let Some(max) = check.max_allowed_mg
        && let Some(draft) = find_draft(input.draft_orders, &check.source.0)
    {
        card.suggestions.push(Suggestion {
            label: format!("Change the dose to {} mg", mg(max)),
            uuid: uuid(),
            is_recommended: true,
            actions: vec![Action {
                kind: "update",
                description: format!(
                    "Set the dose of {} to the maximum of {} mg",
                    check.source.0,
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

/// Dexamethasone 10 mg IV every 6 hours, as a draft MedicationRequest.
pub fn dexamethasone_order(patient_id: &str, at: Timestamp) -> Value {
    json!({
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{ "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "3264", "display": "dexamethasone" }],
            "text": "dexamethasone"
        },
        "subject": { "reference": format!("Patient/{patient_id}") },
        "authoredOn": format_time(at),
        "dosageInstruction": [{
            "text": "dexamethasone 10 mg IV every 6 hours",
            "timing": { "repeat": { "frequency": 1, "period": 6, "periodUnit": "h" } },
            "route": { "coding": [{ "system": "http://snomed.info/sct", "code": "47625008", "display": "Intravenous route" }] },
            "doseAndRate": [{ "doseQuantity": { "value": 10, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg" } }]
        }]
    })
}

fn tocilizumab_with_icans_card(input: &CardInput<'_>, order: &DoseOrder) -> Card {
    let a = input.assessment;
    let d = format!(
        "ICANS {} with CRS {}: tocilizumab does not cross the blood-brain barrier and may worsen neurotoxicity; corticosteroids are preferred. This is a warning, not a hard stop.\n\n{}{}",
        icans_text(a),
        grade_text(a.crs.grade, a.crs.lower_bound),
        recommendations_section(a),
        REFERENCES
    );
    let mut card = plain_card(
        a,
        format!(
            "Tocilizumab with ICANS {} and CRS {}: prefer dexamethasone",
            icans_text(a),
            grade_text(a.crs.grade, a.crs.lower_bound)
        ),
        d,
        Indicator::Warning,
        topic("tocilizumab-with-icans", "Tocilizumab with ICANS"),
        None,
    );
    card.suggestions.push(Suggestion {
        label: "Replace tocilizumab with dexamethasone 10 mg IV every 6 hours".into(),
        uuid: uuid(),
        is_recommended: true,
        actions: vec![
            Action {
                kind: "delete",
                description: format!("Remove the tocilizumab order {}", order.source.0),
                resource: None,
                resource_id: Some(order.source.0.clone()),
            },
            Action {
                kind: "create",
                description: "Order dexamethasone 10 mg IV every 6 hours".into(),
                resource: Some(dexamethasone_order(input.patient_id, a.at)),
                resource_id: None,
            },
        ],
    });
    card.selection_behavior = Some("at-most-one");
    card
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
        }
    }
    out
}

#[cfg(test)]
mod tests;
