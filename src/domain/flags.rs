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
    /// Ferritin > 10,000 ng/mL, fewer than 2 criteria met and at least one not
    /// assessed: possible HLH/MAS, obtain the missing data (RULES.md §7 S10).
    HlhPossible,
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
            Flag::HlhPossible => "hlh-possible",
            Flag::TocilizumabWithIcans => "tocilizumab-with-icans",
            Flag::GmCsfAvoid => "gm-csf-avoid",
            Flag::AntifungalProphylaxis => "antifungal-prophylaxis",
        }
    }
}

/// One HLH/MAS criterion: met, not met, or not assessed for want of data
/// (RULES.md §7 S10: missing data is never read as "not met").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Criterion {
    /// The data show the criterion.
    Met,
    /// The data were there and do not show it.
    NotMet,
    /// No usable data: no value in the window, no reference range, no baseline.
    #[default]
    NotAssessed,
}

impl Criterion {
    /// Whether it is met.
    pub fn is_met(self) -> bool {
        self == Criterion::Met
    }
}

/// The CARTOX HLH/MAS criteria (RULES.md A.3 `hlh_suspected`, §7 S10).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HlhCriteria {
    /// Peak ferritin in the lab window, ng/mL.
    pub ferritin: Option<f64>,
    /// (a) grade ≥ 3 bilirubin (> 3 × ULN), AST or ALT (> 5 × ULN).
    pub liver: Criterion,
    /// (b) grade ≥ 3 oliguria or creatinine rise (> 3 × baseline or > 3 × ULN).
    pub renal: Criterion,
    /// (c) grade ≥ 3 pulmonary edema.
    pub pulmonary: Criterion,
    /// (d) hemophagocytosis in bone marrow or organs.
    pub hemophagocytosis: Criterion,
}

impl HlhCriteria {
    fn all(&self) -> [(Criterion, &'static str); 4] {
        [
            (
                self.liver,
                "liver (AST, ALT and bilirubin with reference ranges)",
            ),
            (
                self.renal,
                "renal (creatinine with a pre-infusion baseline or reference range, or urine output)",
            ),
            (self.pulmonary, "grade ≥ 3 pulmonary edema"),
            (
                self.hemophagocytosis,
                "hemophagocytosis (bone marrow or organs)",
            ),
        ]
    }

    /// How many organ criteria are met.
    pub fn organ_count(&self) -> usize {
        self.all().iter().filter(|(c, _)| c.is_met()).count()
    }

    /// The criteria that could not be assessed, named for the card ("obtain …").
    pub fn not_assessed(&self) -> Vec<&'static str> {
        self.all()
            .iter()
            .filter(|(c, _)| *c == Criterion::NotAssessed)
            .map(|(_, name)| *name)
            .collect()
    }

    fn ferritin_high(&self) -> bool {
        self.ferritin.is_some_and(|f| f > 10_000.0)
    }

    /// Ferritin > 10,000 ng/mL and ≥ 2 organ criteria (RULES.md A.3).
    pub fn suspected(&self) -> bool {
        self.ferritin_high() && self.organ_count() >= 2
    }

    /// Ferritin > 10,000 ng/mL, fewer than 2 criteria met, at least one not assessed
    /// (RULES.md §7 S10).
    pub fn possible(&self) -> bool {
        self.ferritin_high() && self.organ_count() < 2 && !self.not_assessed().is_empty()
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

/// The latest recorded answer for a finding: `Some((true, fact))` present,
/// `Some((false, fact))` recorded absent, `None` never recorded.
fn finding_answer(
    facts: &PatientFacts,
    f: ClinicalFinding,
    window: Window,
) -> Option<(bool, &Fact<ClinicalFinding>)> {
    let present = facts
        .findings
        .iter()
        .filter(|x| x.value == f && x.at <= window.end)
        .map(|x| (true, x));
    let absent = facts
        .findings_absent
        .iter()
        .filter(|x| x.value == f && x.at <= window.end)
        .map(|x| (false, x));
    present.chain(absent).max_by_key(|(p, x)| (x.at, *p))
}

/// The creatinine baseline: the lowest value in the 30 days before the infusion
/// (RULES.md §7 S10).
fn creatinine_baseline(facts: &PatientFacts) -> Option<&Fact<LabValue>> {
    let infused = facts.infusion.as_ref()?.at;
    let from = infused.minus_hours(30.0 * 24.0);
    facts
        .labs
        .iter()
        .filter(|l| l.value.kind == LabKind::Creatinine && l.at <= infused && l.at >= from)
        .filter(|l| l.value.value > 0.0)
        .min_by(|a, b| a.value.value.total_cmp(&b.value.value))
}

/// Evaluates the CARTOX HLH/MAS criteria over the lab window (RULES.md A.3, §7 S10).
/// Times-ULN comes from the result's own reference range (no default ULN is
/// invented); the creatinine rise is against the lowest value in the 30 days before
/// the infusion (FHIR-INPUTS.md "Laboratory"). Each criterion is met, not met, or not
/// assessed.
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

    // (a) Liver: met when any one lab is above its limit; not met only when every liver
    // lab was assessable (a value with a reference range) and none is.
    let mut liver_assessed = 0;
    for (kind, limit, name) in [
        (LabKind::Ast, 5.0, "AST"),
        (LabKind::Alt, 5.0, "ALT"),
        (LabKind::Bilirubin, 3.0, "total bilirubin"),
    ] {
        if let Some(l) = latest_lab(facts, kind, window)
            && let Some(x) = times_uln(l)
        {
            liver_assessed += 1;
            if x > limit {
                c.liver = Criterion::Met;
                report.evidence(format!("{name} {x:.1} × ULN (grade ≥ 3)"), &l.source, l.at);
            }
        }
    }
    if c.liver != Criterion::Met && liver_assessed == 3 {
        c.liver = Criterion::NotMet;
    }

    // (b) Renal: oliguria, or creatinine > 3 × baseline or > 3 × ULN.
    let oliguria = finding_answer(facts, ClinicalFinding::OliguriaGrade3, window);
    if let Some((true, f)) = oliguria {
        c.renal = Criterion::Met;
        report.evidence("grade ≥ 3 oliguria".into(), &f.source, f.at);
    }
    if let Some(cr) = latest_lab(facts, LabKind::Creatinine, window) {
        let vs_baseline = creatinine_baseline(facts).map(|b| cr.value.value / b.value.value);
        let vs_uln = times_uln(cr);
        let met = vs_baseline.is_some_and(|x| x > 3.0) || vs_uln.is_some_and(|x| x > 3.0);
        if met {
            c.renal = Criterion::Met;
            report.evidence(
                format!(
                    "creatinine {:.2} mg/dL, > 3 × baseline or ULN (grade ≥ 3)",
                    cr.value.value
                ),
                &cr.source,
                cr.at,
            );
        } else if c.renal != Criterion::Met && (vs_baseline.is_some() || vs_uln.is_some()) {
            c.renal = Criterion::NotMet;
        }
    }

    for (finding, name, slot) in [
        (
            ClinicalFinding::PulmonaryEdemaGrade3,
            "grade ≥ 3 pulmonary edema",
            &mut c.pulmonary,
        ),
        (
            ClinicalFinding::Hemophagocytosis,
            "hemophagocytosis",
            &mut c.hemophagocytosis,
        ),
    ] {
        match finding_answer(facts, finding, window) {
            Some((true, f)) => {
                *slot = Criterion::Met;
                report.evidence(name.into(), &f.source, f.at);
            }
            Some((false, _)) => *slot = Criterion::NotMet,
            None => {}
        }
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
