//! Decision flags (RULES.md A.3) and the HScore (RULES.md B.4).

use super::facts::{Celsius, ClinicalFinding, Fact, LabKind, LabValue, PatientFacts};
use super::report::Report;
use super::time::{Timestamp, Window};

/// A decision flag on the assessment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flag {
    /// CRS grade ≥ 2 (RULES.md A.3).
    TocilizumabIndicated,
    /// CRS grade ≥ 3 or ICANS grade ≥ 2 (RULES.md A.3).
    SteroidsIndicated,
    /// Ferritin > 10,000 ng/mL and ≥ 2 CARTOX organ criteria (RULES.md A.3, B.4).
    HlhSuspected,
    /// A tocilizumab order now would be warned: ICANS ≥ 2 and CRS ≤ 1 (RULES.md A.3,
    /// §6-U6; a warning, never a hard stop).
    TocilizumabWithIcans,
    /// A GM-CSF (sargramostim) order or administration in the CAR-T window
    /// (RULES.md B.3 supportive rules).
    GmCsfAvoid,
    /// Steroids given or indicated: strongly consider antifungal prophylaxis
    /// (RULES.md B.3 supportive rules).
    AntifungalProphylaxis,
}

impl Flag {
    /// The wire name (CDS Hooks card extension).
    pub fn key(self) -> &'static str {
        match self {
            Flag::TocilizumabIndicated => "tocilizumab-indicated",
            Flag::SteroidsIndicated => "steroids-indicated",
            Flag::HlhSuspected => "hlh-suspected",
            Flag::TocilizumabWithIcans => "tocilizumab-with-icans",
            Flag::GmCsfAvoid => "gm-csf-avoid",
            Flag::AntifungalProphylaxis => "antifungal-prophylaxis",
        }
    }
}

/// The CARTOX HLH/MAS criteria (RULES.md A.3 `hlh_suspected`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HlhCriteria {
    /// Peak ferritin in the lab window, ng/mL.
    pub ferritin: Option<f64>,
    /// (a) grade ≥ 3 bilirubin (> 3 × ULN), AST or ALT (> 5 × ULN).
    pub liver: bool,
    /// (b) grade ≥ 3 oliguria or creatinine rise (> 3 × baseline or > 3 × ULN).
    pub renal: bool,
    /// (c) grade ≥ 3 pulmonary edema.
    pub pulmonary: bool,
    /// (d) hemophagocytosis in bone marrow or organs.
    pub hemophagocytosis: bool,
}

impl HlhCriteria {
    /// How many organ criteria are met.
    pub fn organ_count(&self) -> usize {
        [
            self.liver,
            self.renal,
            self.pulmonary,
            self.hemophagocytosis,
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }

    /// Ferritin > 10,000 ng/mL and ≥ 2 organ criteria.
    pub fn suspected(&self) -> bool {
        self.ferritin.is_some_and(|f| f > 10_000.0) && self.organ_count() >= 2
    }
}

fn latest_lab(facts: &PatientFacts, kind: LabKind, window: Window) -> Option<&Fact<LabValue>> {
    facts
        .labs
        .iter()
        .filter(|l| l.value.kind == kind && window.contains(l.at))
        .max_by_key(|l| l.at)
}

fn peak_lab(facts: &PatientFacts, kind: LabKind, window: Window) -> Option<&Fact<LabValue>> {
    facts
        .labs
        .iter()
        .filter(|l| l.value.kind == kind && window.contains(l.at))
        .max_by(|a, b| a.value.value.total_cmp(&b.value.value))
}

fn times_uln(lab: &Fact<LabValue>) -> Option<f64> {
    lab.value
        .uln
        .filter(|u| *u > 0.0)
        .map(|u| lab.value.value / u)
}

fn has_finding(
    facts: &PatientFacts,
    f: ClinicalFinding,
    window: Window,
) -> Option<&Fact<ClinicalFinding>> {
    facts
        .findings
        .iter()
        .find(|x| x.value == f && x.at <= window.end)
}

/// Evaluates the CARTOX HLH/MAS criteria over the lab window (RULES.md A.3).
/// Times-ULN comes from the result's own reference range; the creatinine rise is
/// against the latest value before the infusion (FHIR-INPUTS.md "Laboratory").
pub fn hlh_criteria(
    facts: &PatientFacts,
    now: Timestamp,
    lab_window_hours: f64,
    report: &mut Report,
) -> HlhCriteria {
    let window = Window::ending_at(now, lab_window_hours);
    let mut c = HlhCriteria::default();

    if let Some(f) = peak_lab(facts, LabKind::Ferritin, window) {
        c.ferritin = Some(f.value.value);
        report.evidence(
            format!("ferritin {:.0} ng/mL", f.value.value),
            &f.source,
            f.at,
        );
    }
    for (kind, limit, name) in [
        (LabKind::Ast, 5.0, "AST"),
        (LabKind::Alt, 5.0, "ALT"),
        (LabKind::Bilirubin, 3.0, "total bilirubin"),
    ] {
        if let Some(l) = latest_lab(facts, kind, window)
            && let Some(x) = times_uln(l)
            && x > limit
        {
            c.liver = true;
            report.evidence(format!("{name} {x:.1} × ULN (grade ≥ 3)"), &l.source, l.at);
        }
    }
    if let Some(cr) = latest_lab(facts, LabKind::Creatinine, window) {
        let baseline = facts.infusion.as_ref().and_then(|i| {
            facts
                .labs
                .iter()
                .filter(|l| l.value.kind == LabKind::Creatinine && l.at <= i.at)
                .max_by_key(|l| l.at)
        });
        let vs_baseline = baseline
            .filter(|b| b.value.value > 0.0)
            .map(|b| cr.value.value / b.value.value);
        if vs_baseline.is_some_and(|x| x > 3.0) || times_uln(cr).is_some_and(|x| x > 3.0) {
            c.renal = true;
            report.evidence(
                format!(
                    "creatinine {:.2} mg/dL, > 3 × baseline or ULN (grade ≥ 3)",
                    cr.value.value
                ),
                &cr.source,
                cr.at,
            );
        }
    }
    if let Some(f) = has_finding(facts, ClinicalFinding::OliguriaGrade3, window) {
        c.renal = true;
        report.evidence("grade ≥ 3 oliguria".into(), &f.source, f.at);
    }
    if let Some(f) = has_finding(facts, ClinicalFinding::PulmonaryEdemaGrade3, window) {
        c.pulmonary = true;
        report.evidence("grade ≥ 3 pulmonary edema".into(), &f.source, f.at);
    }
    if let Some(f) = has_finding(facts, ClinicalFinding::Hemophagocytosis, window) {
        c.hemophagocytosis = true;
        report.evidence("hemophagocytosis".into(), &f.source, f.at);
    }
    c
}

/// The HScore (Fardet 2014), information only: not validated for CAR-T, and CRS itself
/// scores high (RULES.md B.4). Components with no data score 0 and are listed.
#[derive(Clone, Debug, PartialEq)]
pub struct HScore {
    /// Points (0-337).
    pub points: u16,
    /// Components with no data.
    pub unknown: Vec<&'static str>,
}

impl HScore {
    /// The cut-off: ≥ 169 suggests HLH (sensitivity 93 %, specificity 86 %).
    pub const CUTOFF: u16 = 169;
}

/// Computes the HScore from the facts in the lab window (RULES.md B.4 table).
pub fn hscore(
    facts: &PatientFacts,
    max_temp: Option<Celsius>,
    now: Timestamp,
    lab_window_hours: f64,
) -> HScore {
    let window = Window::ending_at(now, lab_window_hours);
    let mut points = 0u16;
    let mut unknown = Vec::new();
    let lab = |k| latest_lab(facts, k, window).map(|l| l.value.value);
    let finding = |f| has_finding(facts, f, window).is_some();

    if finding(ClinicalFinding::Immunosuppression) {
        points += 18;
    }
    match max_temp.map(Celsius::value) {
        Some(t) if t > 39.4 => points += 49,
        Some(t) if t >= 38.4 => points += 33,
        Some(_) => {}
        None => unknown.push("temperature"),
    }
    match (
        finding(ClinicalFinding::Hepatomegaly),
        finding(ClinicalFinding::Splenomegaly),
    ) {
        (true, true) => points += 38,
        (true, false) | (false, true) => points += 23,
        _ => {}
    }
    let cytopenias = [
        lab(LabKind::Hemoglobin).map(|v| v <= 9.2),
        lab(LabKind::Wbc).map(|v| v <= 5.0),
        lab(LabKind::Platelets).map(|v| v <= 110.0),
    ];
    if cytopenias.iter().any(Option::is_none) {
        unknown.push("blood counts");
    }
    match cytopenias.iter().filter(|c| **c == Some(true)).count() {
        3 => points += 34,
        2 => points += 24,
        _ => {}
    }
    match peak_lab(facts, LabKind::Ferritin, window).map(|l| l.value.value) {
        Some(f) if f > 6000.0 => points += 50,
        Some(f) if f >= 2000.0 => points += 35,
        Some(_) => {}
        None => unknown.push("ferritin"),
    }
    match lab(LabKind::Triglycerides) {
        Some(t) if t > 4.0 => points += 64,
        Some(t) if t >= 1.5 => points += 44,
        Some(_) => {}
        None => unknown.push("triglycerides"),
    }
    match lab(LabKind::Fibrinogen) {
        Some(f) if f <= 2.5 => points += 30,
        Some(_) => {}
        None => unknown.push("fibrinogen"),
    }
    match lab(LabKind::Ast) {
        Some(a) if a >= 30.0 => points += 19,
        Some(_) => {}
        None => unknown.push("AST"),
    }
    if finding(ClinicalFinding::Hemophagocytosis) {
        points += 35;
    }
    HScore { points, unknown }
}
