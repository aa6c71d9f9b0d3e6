//! One assessment: grades, flags, management and dose checks at an instant.

use super::crs::{CrsAssessment, FeverGate, grade_crs};
use super::dosing::{DoseCheck, DoseOrder, check_dose, dosing_weight};
use super::facts::{Drug, DrugClass, Fact, Infusion, Kg, PatientFacts};
use super::flags::{Flag, HScore, HlhCriteria, hlh_criteria, hscore};
use super::icans::{IcansAssessment, grade_icans};
use super::management::{Recommendation, recommendations};
use super::policy::Policy;
pub use super::report::{Missing, Report};
use super::time::Timestamp;

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
    /// Evidence, missing data, notes.
    pub report: Report,
}

/// Assesses a patient at `now`, checking any draft `orders` (RULES.md A, B).
pub fn assess(
    facts: &PatientFacts,
    orders: &[DoseOrder],
    now: Timestamp,
    policy: &Policy,
) -> Assessment {
    let mut report = Report::default();
    let crs = grade_crs(facts, now, policy, &mut report);
    let icans = grade_icans(facts, now, policy, &mut report);
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

    let product = infusion.as_ref().and_then(|i| i.product);
    let recommendations = recommendations(crs.grade, icans.grade, product, &flags);

    Assessment {
        at: now,
        infusion,
        day,
        crs,
        icans,
        flags,
        hlh,
        hscore,
        weight,
        dose_checks,
        recommendations,
        report,
    }
}
