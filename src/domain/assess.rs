//! One assessment: grades, flags, management and dose checks at an instant.

use super::crs::{CrsAssessment, FeverGate, grade_crs};
use super::dosing::{
    DoseCheck, DoseOrder, SteroidSuggestion, TocilizumabDose, check_dose, dosing_weight,
    steroid_suggestion, tocilizumab_suggestion,
};
use super::facts::{Drug, DrugClass, Fact, Infusion, Kg, LabKind, PatientFacts};
use super::flags::{Flag, HScore, HlhCriteria, hlh_criteria, hscore};
use super::icans::{IcansAssessment, grade_icans};
use super::management::{Recommendation, recommendations};
use super::policy::Policy;
pub use super::report::{Evidence, Missing, Report};
use super::time::{Timestamp, Window};

/// Labs are drawn daily or less often: the HLH rule looks back this far.
pub const LAB_WINDOW_HOURS: f64 = 72.0;

/// Everything the engine concludes about a patient at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// The evaluation instant.
    pub at: Timestamp,
    /// The CAR-T infusion that opened the toxicity window, if any.
    pub infusion: Option<Infusion>,
    /// Whole days since the infusion.
    pub day: Option<i64>,
    /// CRS.
    pub crs: CrsAssessment,
    /// ICANS.
    pub icans: IcansAssessment,
    /// RULES.md §7 S11: the worst CRS grade over the grading window (graded at each
    /// instant a fact in the window changes, with the facts known then, and now);
    /// reported beside the current grade, never in its place.
    pub crs_worst_24h: Option<u8>,
    /// RULES.md §7 S11: the worst ICANS grade over the grading window, as for CRS.
    pub icans_worst_24h: Option<u8>,
    /// Decision flags, in a stable order.
    pub flags: Vec<Flag>,
    /// The HLH/MAS criteria.
    pub hlh: HlhCriteria,
    /// The HScore (information only).
    pub hscore: HScore,
    /// The weight used for dosing.
    pub weight: Option<Fact<Kg>>,
    /// One check per draft order of a checked drug.
    pub dose_checks: Vec<DoseCheck>,
    /// Recommended actions.
    pub recommendations: Vec<Recommendation>,
    /// The tocilizumab dose to suggest when it is indicated and the B.1 rules allow a
    /// dose now (RULES.md §7 S9); `None` otherwise.
    pub tocilizumab_dose: Option<TocilizumabDose>,
    /// The steroid order to suggest for the ICANS grade (RULES.md §7 S9), when steroids
    /// are indicated and a dose that passes the dose check can be computed.
    pub steroid_suggestion: Option<SteroidSuggestion>,
    /// Evidence, missing data, notes.
    pub report: Report,
    /// Where the CRS evidence ends and the ICANS evidence ends in `report.evidence`
    /// (the rules add them in that order, then the lab evidence).
    evidence_ends: (usize, usize),
}

impl Assessment {
    /// The evidence the CRS grade rests on.
    pub fn crs_evidence(&self) -> &[Evidence] {
        self.report
            .evidence
            .get(..self.evidence_ends.0)
            .unwrap_or_default()
    }

    /// The evidence the ICANS grade rests on.
    pub fn icans_evidence(&self) -> &[Evidence] {
        let (crs_end, icans_end) = self.evidence_ends;
        self.report
            .evidence
            .get(crs_end..icans_end)
            .unwrap_or_default()
    }

    /// The CRS and the ICANS evidence ([`Assessment::crs_evidence`],
    /// [`Assessment::icans_evidence`]) moved out of the assessment, without copying (the
    /// course keeps them at every instant).
    pub fn into_grade_evidence(self) -> (Vec<Evidence>, Vec<Evidence>) {
        let (crs_end, icans_end) = self.evidence_ends;
        let mut all = self.report.evidence;
        if crs_end <= icans_end && icans_end <= all.len() {
            all.truncate(icans_end);
            let icans = all.split_off(crs_end);
            (all, icans)
        } else if crs_end <= all.len() {
            all.truncate(crs_end);
            (all, Vec::new())
        } else {
            (Vec::new(), Vec::new())
        }
    }
}

/// Assesses a patient at `now`, checking any draft `orders` (RULES.md A, B).
pub fn assess(
    facts: &PatientFacts,
    orders: &[DoseOrder],
    now: Timestamp,
    policy: &Policy,
) -> Assessment {
    assess_with(facts, orders, now, policy, true)
}

/// As [`assess`] without the worst grades over the window (`crs_worst_24h` and
/// `icans_worst_24h` are `None`): for the course (issue 12), which grades every instant
/// anyway, so re-grading the window at each of them would make its cost quadratic.
pub fn assess_for_series(
    facts: &PatientFacts,
    orders: &[DoseOrder],
    now: Timestamp,
    policy: &Policy,
) -> Assessment {
    assess_with(facts, orders, now, policy, false)
}

fn assess_with(
    facts: &PatientFacts,
    orders: &[DoseOrder],
    now: Timestamp,
    policy: &Policy,
    with_worst: bool,
) -> Assessment {
    let mut report = Report::default();
    let crs = grade_crs(facts, now, policy, &mut report);
    let crs_end = report.evidence.len();
    let icans = grade_icans(facts, now, policy, &mut report);
    let evidence_ends = (crs_end, report.evidence.len());
    let hlh = hlh_criteria(facts, now, LAB_WINDOW_HOURS, &mut report);
    let max_temp = match &crs.fever_gate {
        FeverGate::Fever(t) | FeverGate::Closed(t) => Some(t.value),
        _ => None,
    };
    let hscore = hscore(facts, max_temp, now, LAB_WINDOW_HOURS);

    let infusion = facts.infusion.clone();
    let day = infusion.as_ref().map(|i| now.days_since(i.at));

    let mut flags = Vec::new();
    // RULES.md A.3.
    if crs.grade.is_some_and(|g| g >= 2) {
        flags.push(Flag::TocilizumabIndicated);
    }
    if crs.grade.is_some_and(|g| g >= 3) || icans.grade.is_some_and(|g| g >= 2) {
        flags.push(Flag::SteroidsIndicated);
    }
    if hlh.suspected() {
        flags.push(Flag::HlhSuspected);
    } else if hlh.possible() {
        // RULES.md §7 S10: missing criteria are never silence.
        flags.push(Flag::HlhPossible);
    }
    // ICANS ≥ 2 and CRS ≤ 1. A CRS that could not be graded is not ≥ 2 either, so the
    // warning stands (§6-U6: a warning, never a hard stop).
    if policy.warn_tocilizumab_with_icans
        && icans.grade.is_some_and(|g| g >= 2)
        && crs.grade.is_none_or(|g| g < 2)
    {
        flags.push(Flag::TocilizumabWithIcans);
    }
    // RULES.md B.3: GM-CSF in the CAR-T window (ordered now, or given since infusion).
    let in_gm_window = |at: Timestamp| {
        infusion
            .as_ref()
            .is_some_and(|i| at >= i.at && at.days_since(i.at) <= policy.gm_csf_window_days)
    };
    if orders
        .iter()
        .any(|o| o.drug.class() == DrugClass::GmCsf && in_gm_window(now))
        || facts
            .medications_given
            .iter()
            .any(|m| m.drug == Drug::Sargramostim && in_gm_window(m.at))
    {
        flags.push(Flag::GmCsfAvoid);
    }
    // RULES.md B.3: anyone receiving steroids for CRS or ICANS.
    let steroids_given = facts.medications_given.iter().any(|m| {
        m.drug.class() == DrugClass::Corticosteroid
            && m.at <= now
            && infusion.as_ref().is_none_or(|i| m.at >= i.at)
    });
    let steroids_ordered = orders
        .iter()
        .any(|o| o.drug.class() == DrugClass::Corticosteroid);
    if steroids_given || steroids_ordered || flags.contains(&Flag::SteroidsIndicated) {
        flags.push(Flag::AntifungalProphylaxis);
    }
    flags.sort();

    let mut weight_notes = Vec::new();
    let weight = dosing_weight(facts, now, policy, &mut weight_notes).cloned();
    let dose_checks: Vec<DoseCheck> = orders
        .iter()
        .filter(|o| o.drug.class() != DrugClass::GmCsf)
        .map(|o| check_dose(o, facts, now, policy))
        .collect();
    if weight.is_none() && !dose_checks.is_empty() {
        report.missing.push(Missing::Weight);
    }

    lab_interpretation_notes(facts, &crs, now, &mut report);

    let product = infusion.as_ref().and_then(|i| i.product);
    let recommendations = recommendations(crs.grade, icans.grade, product, &flags);
    let tocilizumab_dose = (flags.contains(&Flag::TocilizumabIndicated)
        && !flags.contains(&Flag::TocilizumabWithIcans))
    .then(|| tocilizumab_suggestion(facts, now, policy))
    .flatten();
    let steroid_suggestion = flags
        .contains(&Flag::SteroidsIndicated)
        .then(|| steroid_suggestion(facts, icans.grade, now, policy))
        .flatten();
    let (crs_worst_24h, icans_worst_24h) = if with_worst {
        worst_over_window(facts, now, policy)
    } else {
        (None, None)
    };

    Assessment {
        at: now,
        infusion,
        day,
        crs,
        icans,
        crs_worst_24h,
        icans_worst_24h,
        flags,
        hlh,
        hscore,
        weight,
        dose_checks,
        recommendations,
        tocilizumab_dose,
        steroid_suggestion,
        report,
        evidence_ends,
    }
}

/// The instants in the grading window at which a fact starts, ends or stops counting
/// (RULES.md §7 S11), plus `now`.
fn change_instants(facts: &PatientFacts, now: Timestamp, policy: &Policy) -> Vec<Timestamp> {
    let window = Window::ending_at(now, policy.window_hours);
    let mut t: Vec<Timestamp> = Vec::new();
    facts.each_observation_time(|at| t.push(at));
    facts.each_treatment_time(policy.pressor_grace_ms(), |at| t.push(at));
    t.retain(|at| window.contains(*at));
    t.push(now);
    t.sort();
    t.dedup();
    t
}

fn worst_over_window(
    facts: &PatientFacts,
    now: Timestamp,
    policy: &Policy,
) -> (Option<u8>, Option<u8>) {
    let mut crs_worst: Option<u8> = None;
    let mut icans_worst: Option<u8> = None;
    for at in change_instants(facts, now, policy) {
        let mut scratch = Report::default();
        let c = grade_crs(facts, at, policy, &mut scratch).grade;
        let i = grade_icans(facts, at, policy, &mut scratch).grade;
        crs_worst = crs_worst.max(c);
        icans_worst = icans_worst.max(i);
    }
    (crs_worst, icans_worst)
}

/// Sepsis vs CRS information (RULES.md B.4): information only, never a rule.
fn lab_interpretation_notes(
    facts: &PatientFacts,
    crs: &CrsAssessment,
    now: Timestamp,
    report: &mut Report,
) {
    let first_tocilizumab = facts
        .medications_given
        .iter()
        .filter(|m| m.drug == Drug::Tocilizumab && m.at <= now)
        .map(|m| m.at)
        .min();
    let lab_window = super::time::Window::ending_at(now, LAB_WINDOW_HOURS);
    let recent = |kind: LabKind| {
        facts
            .labs
            .iter()
            .filter(move |l| l.value.kind == kind && lab_window.contains(l.at))
    };
    if let Some(t) = first_tocilizumab {
        if recent(LabKind::Il6).any(|l| l.at >= t) {
            report.note(
                "IL-6 measured after tocilizumab cannot be interpreted: receptor blockade raises IL-6 (RULES.md B.4)",
            );
        }
        if recent(LabKind::Crp).any(|l| l.at >= t) {
            report.note("CRP falls after IL-6 blockade and can mask infection (RULES.md B.4)");
        }
    }
    let neutropenic = recent(LabKind::Anc)
        .max_by_key(|l| l.at)
        .is_some_and(|l| l.value.value < 0.5);
    if neutropenic && matches!(crs.fever_gate, FeverGate::Fever(_)) {
        report.note(
            "febrile neutropenia: fever cannot tell CRS from sepsis; obtain cultures and start empiric antibiotics (ASCO, RULES.md B.4)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dosing::DoseAmount;
    use crate::domain::facts::{ClinicalFinding, Consciousness, LabKind, LabValue, Source};
    use crate::domain::testkit::*;

    fn flags(p: &PatientFacts) -> Vec<Flag> {
        assess(p, &[], NOW, &Policy::default()).flags
    }

    fn lab(p: &mut PatientFacts, kind: LabKind, value: f64, uln: Option<f64>) {
        let n = p.labs.len();
        p.labs.push(Fact::new(
            LabValue { kind, value, uln },
            ago(6.0),
            format!("Observation/lab{n}"),
        ));
    }

    #[test]
    fn crs_grade_2_indicates_tocilizumab_but_not_steroids() {
        let mut p = febrile_adult(38.7);
        sbp(&mut p, 84.0, 1.0);
        assert_eq!(flags(&p), vec![Flag::TocilizumabIndicated]);
    }

    #[test]
    fn crs_grade_3_indicates_tocilizumab_steroids_and_antifungal_prophylaxis() {
        let mut p = febrile_adult(38.7);
        running(&mut p, Drug::Norepinephrine, 2.0);
        assert_eq!(
            flags(&p),
            vec![
                Flag::TocilizumabIndicated,
                Flag::SteroidsIndicated,
                Flag::AntifungalProphylaxis
            ]
        );
    }

    #[test]
    fn icans_2_without_crs_warns_against_tocilizumab() {
        let mut p = febrile_adult(37.0);
        p.neuro_scores.clear();
        ice(&mut p, 6, 1.0);
        let a = assess(&p, &[], NOW, &Policy::default());
        assert_eq!(a.crs.grade, Some(0));
        assert_eq!(a.icans.grade, Some(2));
        assert_eq!(
            a.flags,
            vec![
                Flag::SteroidsIndicated,
                Flag::TocilizumabWithIcans,
                Flag::AntifungalProphylaxis
            ]
        );
    }

    #[test]
    fn icans_2_with_crs_2_does_not_warn_against_tocilizumab() {
        let mut p = febrile_adult(38.7);
        sbp(&mut p, 84.0, 1.0);
        loc(&mut p, Consciousness::AwakensToVoice, 1.0);
        assert!(!flags(&p).contains(&Flag::TocilizumabWithIcans));
    }

    #[test]
    fn hlh_needs_ferritin_above_10000_and_two_organ_criteria() {
        let mut p = febrile_adult(38.5);
        lab(&mut p, LabKind::Ferritin, 14_000.0, None);
        lab(&mut p, LabKind::Ast, 240.0, Some(40.0));
        assert!(
            !flags(&p).contains(&Flag::HlhSuspected),
            "one organ criterion only"
        );
        p.findings.push(Fact::new(
            ClinicalFinding::PulmonaryEdemaGrade3,
            ago(3.0),
            "Condition/pe",
        ));
        assert!(flags(&p).contains(&Flag::HlhSuspected));
    }

    #[test]
    fn ferritin_of_exactly_10000_is_not_above_the_hlh_threshold() {
        let mut p = febrile_adult(38.5);
        lab(&mut p, LabKind::Ferritin, 10_000.0, None);
        lab(&mut p, LabKind::Ast, 240.0, Some(40.0));
        lab(&mut p, LabKind::Bilirubin, 4.0, Some(1.2));
        p.findings.push(Fact::new(
            ClinicalFinding::Hemophagocytosis,
            ago(3.0),
            "Observation/bm",
        ));
        assert!(!flags(&p).contains(&Flag::HlhSuspected));
    }

    #[test]
    fn creatinine_above_three_times_the_pre_infusion_baseline_is_a_renal_criterion() {
        let mut p = febrile_adult(38.5);
        p.labs.push(Fact::new(
            LabValue {
                kind: LabKind::Creatinine,
                value: 0.8,
                uln: None,
            },
            ago(100.0),
            "Observation/cr0",
        ));
        lab(&mut p, LabKind::Creatinine, 2.5, None);
        let a = assess(&p, &[], NOW, &Policy::default());
        assert_eq!(a.hlh.renal, crate::domain::Criterion::Met);
    }

    #[test]
    fn steroids_given_after_infusion_prompt_antifungal_prophylaxis() {
        let mut p = febrile_adult(38.5);
        given(&mut p, Drug::Dexamethasone, 5.0, Some(10.0));
        assert!(flags(&p).contains(&Flag::AntifungalProphylaxis));
    }

    #[test]
    fn a_sargramostim_order_in_the_car_t_window_is_flagged() {
        let p = febrile_adult(38.5);
        let order = DoseOrder {
            drug: Drug::Sargramostim,
            amount: DoseAmount::Mg(0.25),
            per_day: None,
            route: None,
            source: Source("MedicationRequest/gm".into()),
        };
        let a = assess(&p, &[order], NOW, &Policy::default());
        assert!(a.flags.contains(&Flag::GmCsfAvoid));
        assert!(a.dose_checks.is_empty());
    }

    #[test]
    fn hscore_adds_the_fardet_points() {
        let mut p = febrile_adult(39.5);
        lab(&mut p, LabKind::Ferritin, 7000.0, None);
        lab(&mut p, LabKind::Triglycerides, 4.5, None);
        lab(&mut p, LabKind::Fibrinogen, 2.0, None);
        lab(&mut p, LabKind::Ast, 45.0, None);
        lab(&mut p, LabKind::Hemoglobin, 8.0, None);
        lab(&mut p, LabKind::Wbc, 1.0, None);
        lab(&mut p, LabKind::Platelets, 50.0, None);
        let a = assess(&p, &[], NOW, &Policy::default());
        // 49 (temp > 39.4) + 34 (3 lineages) + 50 + 64 + 30 + 19.
        assert_eq!(a.hscore.points, 246);
        assert!(a.hscore.unknown.is_empty());
    }

    #[test]
    fn recommendations_follow_the_grade() {
        let mut p = febrile_adult(38.7);
        running(&mut p, Drug::Norepinephrine, 2.0);
        let a = assess(&p, &[], NOW, &Policy::default());
        assert!(
            a.recommendations
                .iter()
                .any(|r| r.text.contains("dexamethasone 10 mg IV q6h"))
        );
        assert!(
            a.recommendations
                .iter()
                .any(|r| r.text.contains("antifungal prophylaxis"))
        );
    }

    #[test]
    fn il6_after_tocilizumab_is_flagged_as_uninterpretable() {
        let mut p = febrile_adult(38.5);
        given(&mut p, Drug::Tocilizumab, 10.0, Some(560.0));
        lab(&mut p, LabKind::Il6, 900.0, None);
        let a = assess(&p, &[], NOW, &Policy::default());
        assert!(
            a.report
                .notes
                .iter()
                .any(|n| n.0.contains("IL-6 measured after tocilizumab"))
        );
    }

    #[test]
    fn fever_with_neutropenia_prompts_cultures_and_antibiotics() {
        let mut p = febrile_adult(38.5);
        lab(&mut p, LabKind::Anc, 0.3, None);
        let a = assess(&p, &[], NOW, &Policy::default());
        assert!(
            a.report
                .notes
                .iter()
                .any(|n| n.0.contains("febrile neutropenia"))
        );
    }

    #[test]
    fn crs_and_icans_evidence_are_told_apart_and_labs_belong_to_neither() {
        let mut p = febrile_adult(38.5);
        lab(&mut p, LabKind::Ferritin, 900.0, None);
        let a = assess(&p, &[], NOW, &Policy::default());
        let sources = |e: &[Evidence]| e.iter().map(|x| x.source.0.clone()).collect::<Vec<_>>();
        assert_eq!(
            sources(a.crs_evidence()),
            vec!["Observation/t0", "Observation/bp0", "Observation/dev0"]
        );
        assert_eq!(sources(a.icans_evidence()), vec!["Observation/ice0"]);
        assert_eq!(a.report.evidence.len(), 5, "plus the ferritin");
        let (crs, icans) = (a.crs_evidence().to_vec(), a.icans_evidence().to_vec());
        assert_eq!(a.into_grade_evidence(), (crs, icans), "moved out unchanged");
    }

    #[test]
    fn day_counts_whole_days_since_the_infusion() {
        let a = assess(&febrile_adult(38.0), &[], NOW, &Policy::default());
        assert_eq!(a.day, Some(3));
    }
}
