//! Dose checks: tocilizumab hard rules (RULES.md B.1) and soft, warning-level
//! ceilings for the other CRS/ICANS drugs (RULES.md B.2).

use super::facts::{Drug, Fact, Kg, PatientFacts, Source};
use super::policy::Policy;
use super::time::Timestamp;

/// How an order states its dose.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DoseAmount {
    /// An absolute dose in mg.
    Mg(f64),
    /// A weight-based dose in mg/kg, multiplied by the patient's weight.
    MgPerKg(f64),
    /// The dose could not be read; it is reported, never guessed.
    Unreadable,
}

/// A draft medication order to check.
#[derive(Clone, Debug, PartialEq)]
pub struct DoseOrder {
    /// The drug.
    pub drug: Drug,
    /// The dose per administration.
    pub amount: DoseAmount,
    /// Administrations per day, when the order's timing says (q6h → 4).
    pub per_day: Option<f64>,
    /// The route as written (tocilizumab is IV only, RULES.md B.1).
    pub route: Option<String>,
    /// The MedicationRequest it came from.
    pub source: Source,
}

/// A dose-check finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DoseIssue {
    /// The dose is above the maximum allowed (hard for tocilizumab, soft otherwise).
    ExceedsMax,
    /// Less than 8 h since the last tocilizumab dose.
    IntervalTooShort,
    /// 3 doses already given in the last 24 h.
    Max24hReached,
    /// 4 doses already given in this episode.
    MaxTotalReached,
    /// Patient younger than the label's 2 years.
    BelowLabelAge,
}

impl DoseIssue {
    /// The wire name.
    pub fn key(self) -> &'static str {
        match self {
            DoseIssue::ExceedsMax => "exceeds-max",
            DoseIssue::IntervalTooShort => "interval-too-short",
            DoseIssue::Max24hReached => "max-24h-reached",
            DoseIssue::MaxTotalReached => "max-total-reached",
            DoseIssue::BelowLabelAge => "below-label-age",
        }
    }
}

/// The result of checking one order.
#[derive(Clone, Debug, PartialEq)]
pub struct DoseCheck {
    /// The drug.
    pub drug: Drug,
    /// The order it checks.
    pub source: Source,
    /// The dose per administration in mg, when it could be worked out.
    pub ordered_mg: Option<f64>,
    /// The most allowed per dose, when it could be worked out.
    pub max_allowed_mg: Option<f64>,
    /// Findings; empty means the order passes.
    pub issues: Vec<DoseIssue>,
    /// Whether a violation is a hard rule (tocilizumab) or a soft ceiling.
    pub hard: bool,
    /// Explanations (what was counted, stale weight, missing data).
    pub notes: Vec<String>,
}

/// RULES.md B.1: `max = weight < 30 kg ? 12 mg/kg : min(8 mg/kg, 800 mg)`. Not
/// monotonic: 29 kg → 348 mg, 30 kg → 240 mg.
pub fn tocilizumab_max_dose_mg(weight_kg: f64) -> f64 {
    if weight_kg < 30.0 {
        12.0 * weight_kg
    } else {
        (8.0 * weight_kg).min(800.0)
    }
}

/// The weight to dose by: the latest in the last `weight_fresh_days`, else the latest
/// ever, with a note of its age (FHIR-INPUTS.md "Patient").
pub fn dosing_weight<'a>(
    facts: &'a PatientFacts,
    now: Timestamp,
    policy: &Policy,
    notes: &mut Vec<String>,
) -> Option<&'a Fact<Kg>> {
    let w = facts
        .weights
        .iter()
        .filter(|w| w.at <= now)
        .max_by_key(|w| w.at)?;
    let days = now.days_since(w.at);
    if days > policy.weight_fresh_days {
        notes.push(format!(
            "weight {} kg is {days} days old (older than {} days): confirm before dosing",
            super::crs::trim(w.value.value()),
            policy.weight_fresh_days
        ));
    }
    Some(w)
}

/// Checks one draft order against the patient's history at `now`.
pub fn check_dose(
    order: &DoseOrder,
    facts: &PatientFacts,
    now: Timestamp,
    policy: &Policy,
) -> DoseCheck {
    let mut notes = Vec::new();
    let weight = dosing_weight(facts, now, policy, &mut notes).map(|w| w.value.value());
    let ordered_mg = match order.amount {
        DoseAmount::Mg(mg) => Some(mg),
        DoseAmount::MgPerKg(per_kg) => {
            if weight.is_none() {
                notes.push("a mg/kg dose can't be converted without a body weight".into());
            }
            weight.map(|w| per_kg * w)
        }
        DoseAmount::Unreadable => {
            notes.push("the ordered dose could not be read: not checked".into());
            None
        }
    };
    let mut check = DoseCheck {
        drug: order.drug,
        source: order.source.clone(),
        ordered_mg,
        max_allowed_mg: None,
        issues: Vec::new(),
        hard: order.drug == Drug::Tocilizumab,
        notes,
    };
    match order.drug {
        Drug::Tocilizumab => tocilizumab(order, facts, weight, now, policy, &mut check),
        _ => soft(order, facts, weight, now, policy, &mut check),
    }
    check.issues.sort();
    check.issues.dedup();
    check
}

/// RULES.md B.1 hard rules for tocilizumab (and its biosimilars).
fn tocilizumab(
    order: &DoseOrder,
    facts: &PatientFacts,
    weight: Option<f64>,
    now: Timestamp,
    policy: &Policy,
    check: &mut DoseCheck,
) {
    match weight {
        Some(w) => check.max_allowed_mg = Some(tocilizumab_max_dose_mg(w)),
        None => check
            .notes
            .push("no body weight on record: maximum dose not computed".into()),
    }
    if let (Some(ordered), Some(max)) = (check.ordered_mg, check.max_allowed_mg)
        && ordered > max + policy.tocilizumab_rounding_tolerance_mg
    {
        check.issues.push(DoseIssue::ExceedsMax);
    }
    if let Some(route) = &order.route
        && !route.to_ascii_lowercase().contains("intravenous")
        && !route.eq_ignore_ascii_case("iv")
    {
        check.notes.push(format!(
            "route '{route}': tocilizumab for CRS is given IV over 60 min"
        ));
    }

    // Doses already given in this episode: since the latest CAR-T infusion.
    let episode_start = facts.infusion.as_ref().map(|i| i.at);
    let mut doses: Vec<Timestamp> = facts
        .medications_given
        .iter()
        .filter(|m| {
            m.drug == Drug::Tocilizumab && m.at <= now && episode_start.is_none_or(|s| m.at >= s)
        })
        .map(|m| m.at)
        .collect();
    doses.sort();
    doses.dedup();

    if let Some(last) = doses.last() {
        let since = now.hours_since(*last).0;
        check
            .notes
            .push(format!("last tocilizumab dose {since:.1} h ago"));
        if since < 8.0 {
            check.issues.push(DoseIssue::IntervalTooShort);
        }
    }
    let last_24h = doses
        .iter()
        .filter(|d| now.hours_since(**d).0 < 24.0)
        .count();
    if last_24h >= 3 {
        check.issues.push(DoseIssue::Max24hReached);
    }
    if doses.len() >= 4 {
        check.issues.push(DoseIssue::MaxTotalReached);
    }
    check.notes.push(format!(
        "{last_24h} dose(s) in the last 24 h, {} in this episode (limits 3 and 4)",
        doses.len()
    ));
    if let Some(age) = facts.age_years
        && age < 2.0
    {
        check.issues.push(DoseIssue::BelowLabelAge);
    }
}

/// RULES.md B.2 soft ceilings: a warning, never a block.
fn soft(
    order: &DoseOrder,
    facts: &PatientFacts,
    weight: Option<f64>,
    now: Timestamp,
    policy: &Policy,
    check: &mut DoseCheck,
) {
    let given_24h: f64 = facts
        .medications_given
        .iter()
        .filter(|m| m.drug == order.drug && m.at <= now && now.hours_since(m.at).0 < 24.0)
        .filter_map(|m| m.dose_mg)
        .sum();
    let daily = check.ordered_mg.map(|mg| match order.per_day {
        Some(n) => mg * n,
        None => given_24h + mg,
    });
    let child = facts
        .age_years
        .is_some_and(|a| a < policy.pediatric_below_age);
    let per_kg = |mg_per_kg: f64| weight.map(|w| mg_per_kg * w);

    let (per_dose, per_day): (Option<f64>, Option<f64>) = match order.drug {
        // Adults: > 20 mg/dose or > 80 mg/day. Children: > 0.5 mg/kg or > 10 mg
        // (unverified, §6-U9).
        Drug::Dexamethasone if child => (per_kg(0.5).map(|m| m.min(10.0)).or(Some(10.0)), None),
        Drug::Dexamethasone => (Some(20.0), Some(80.0)),
        // > 1000 mg/dose or > 2000 mg/day (the G4 pulse ceiling).
        Drug::Methylprednisolone => (Some(1000.0), Some(2000.0)),
        Drug::Hydrocortisone => (Some(100.0), None),
        Drug::Siltuximab => (per_kg(11.0), None),
        Drug::Anakinra => (None, per_kg(10.0)),
        _ => (None, None),
    };
    if matches!(order.drug, Drug::Siltuximab | Drug::Anakinra) && weight.is_none() {
        check
            .notes
            .push("no body weight on record: weight-based ceiling not computed".into());
    }
    check.max_allowed_mg = per_dose;
    if let (Some(mg), Some(max)) = (check.ordered_mg, per_dose)
        && mg > max
    {
        check.issues.push(DoseIssue::ExceedsMax);
    }
    if let (Some(d), Some(max)) = (daily, per_day)
        && d > max
    {
        check.issues.push(DoseIssue::ExceedsMax);
        check.notes.push(format!(
            "daily total {} mg is above the usual {} mg/day",
            super::crs::trim(d),
            super::crs::trim(max)
        ));
    }
    if order.drug == Drug::Methylprednisolone
        && let (Some(d), Some(w)) = (daily, weight)
        && d > 2.0 * w
    {
        check.notes.push(
            "above the standard 1 mg/kg q12h: appropriate only as the high-dose pulse for CRS or ICANS grade 4 (RULES.md B.2)".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testkit::*;

    fn order(drug: Drug, mg: f64) -> DoseOrder {
        DoseOrder {
            drug,
            amount: DoseAmount::Mg(mg),
            per_day: None,
            route: Some("IV".into()),
            source: Source("MedicationRequest/o".into()),
        }
    }

    fn with_weight(kg: f64) -> PatientFacts {
        let mut p = adult();
        p.weights = vec![Fact::new(
            Kg::new(kg).expect("valid"),
            ago(12.0),
            "Observation/w",
        )];
        p
    }

    #[test]
    fn tocilizumab_maximum_is_12_mg_per_kg_under_30_kg_and_8_mg_per_kg_from_30() {
        assert_eq!(tocilizumab_max_dose_mg(29.0), 348.0);
        assert_eq!(tocilizumab_max_dose_mg(30.0), 240.0);
        assert_eq!(tocilizumab_max_dose_mg(100.0), 800.0);
        assert_eq!(tocilizumab_max_dose_mg(120.0), 800.0);
    }

    #[test]
    fn a_348_mg_order_passes_at_29_kg_and_exceeds_at_30_kg() {
        let c = check_dose(
            &order(Drug::Tocilizumab, 348.0),
            &with_weight(29.0),
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.issues, vec![]);
        let c = check_dose(
            &order(Drug::Tocilizumab, 348.0),
            &with_weight(30.0),
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.max_allowed_mg, Some(240.0));
        assert_eq!(c.issues, vec![DoseIssue::ExceedsMax]);
    }

    #[test]
    fn an_order_of_960_mg_at_120_kg_exceeds_the_800_mg_cap() {
        let c = check_dose(
            &order(Drug::Tocilizumab, 960.0),
            &with_weight(120.0),
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.max_allowed_mg, Some(800.0));
        assert_eq!(c.issues, vec![DoseIssue::ExceedsMax]);
    }

    #[test]
    fn a_mg_per_kg_order_is_multiplied_by_the_weight() {
        let mut o = order(Drug::Tocilizumab, 0.0);
        o.amount = DoseAmount::MgPerKg(8.0);
        let c = check_dose(&o, &with_weight(70.0), NOW, &Policy::default());
        assert_eq!(c.ordered_mg, Some(560.0));
        assert_eq!(c.issues, vec![]);
    }

    #[test]
    fn a_dose_7_9_hours_after_the_last_is_too_soon_and_8_hours_is_not() {
        let mut p = with_weight(70.0);
        given(&mut p, Drug::Tocilizumab, 7.9, Some(560.0));
        let c = check_dose(
            &order(Drug::Tocilizumab, 560.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.issues, vec![DoseIssue::IntervalTooShort]);
        let mut p = with_weight(70.0);
        given(&mut p, Drug::Tocilizumab, 8.0, Some(560.0));
        let c = check_dose(
            &order(Drug::Tocilizumab, 560.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.issues, vec![]);
    }

    #[test]
    fn three_doses_in_24_hours_reach_the_daily_limit() {
        let mut p = with_weight(70.0);
        for h in [8.0, 16.0, 23.5] {
            given(&mut p, Drug::Tocilizumab, h, Some(560.0));
        }
        let c = check_dose(
            &order(Drug::Tocilizumab, 560.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.issues, vec![DoseIssue::Max24hReached]);
    }

    #[test]
    fn two_doses_in_24_hours_do_not_reach_the_daily_limit() {
        let mut p = with_weight(70.0);
        for h in [8.0, 16.0, 25.0] {
            given(&mut p, Drug::Tocilizumab, h, Some(560.0));
        }
        let c = check_dose(
            &order(Drug::Tocilizumab, 560.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.issues, vec![]);
    }

    #[test]
    fn four_doses_in_the_episode_reach_the_total_limit() {
        let mut p = with_weight(70.0);
        p.infusion.as_mut().expect("infused").at = ago(100.0);
        for h in [10.0, 30.0, 50.0, 70.0] {
            given(&mut p, Drug::Tocilizumab, h, Some(560.0));
        }
        let c = check_dose(
            &order(Drug::Tocilizumab, 560.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.issues, vec![DoseIssue::MaxTotalReached]);
    }

    #[test]
    fn doses_before_the_infusion_are_another_episode() {
        let mut p = with_weight(70.0);
        for h in [80.0, 90.0, 100.0, 110.0] {
            given(&mut p, Drug::Tocilizumab, h, Some(560.0));
        }
        let c = check_dose(
            &order(Drug::Tocilizumab, 560.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.issues, vec![]);
    }

    #[test]
    fn under_2_years_is_below_the_label_age() {
        let mut p = with_weight(10.0);
        p.age_years = Some(1.9);
        let c = check_dose(
            &order(Drug::Tocilizumab, 120.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.issues, vec![DoseIssue::BelowLabelAge]);
        p.age_years = Some(2.0);
        let c = check_dose(
            &order(Drug::Tocilizumab, 120.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.issues, vec![]);
    }

    #[test]
    fn no_weight_means_no_maximum_and_no_guess() {
        let mut p = adult();
        p.weights.clear();
        let c = check_dose(
            &order(Drug::Tocilizumab, 800.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.max_allowed_mg, None);
        assert_eq!(c.issues, vec![]);
    }

    #[test]
    fn a_stale_weight_is_used_with_a_note_of_its_age() {
        let mut p = adult();
        p.weights = vec![Fact::new(
            Kg::new(70.0).expect("valid"),
            ago(24.0 * 20.0),
            "Observation/w",
        )];
        let c = check_dose(
            &order(Drug::Tocilizumab, 560.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.max_allowed_mg, Some(560.0));
        assert!(
            c.notes.iter().any(|n| n.contains("20 days old")),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn dexamethasone_above_20_mg_per_dose_is_a_soft_warning() {
        let p = with_weight(70.0);
        let c = check_dose(
            &order(Drug::Dexamethasone, 20.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.issues, vec![]);
        let c = check_dose(
            &order(Drug::Dexamethasone, 25.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.issues, vec![DoseIssue::ExceedsMax]);
        assert!(!c.hard);
    }

    #[test]
    fn dexamethasone_20_mg_q6h_is_80_a_day_and_passes_but_q4h_does_not() {
        let p = with_weight(70.0);
        let mut o = order(Drug::Dexamethasone, 20.0);
        o.per_day = Some(4.0);
        assert_eq!(check_dose(&o, &p, NOW, &Policy::default()).issues, vec![]);
        o.per_day = Some(6.0);
        assert_eq!(
            check_dose(&o, &p, NOW, &Policy::default()).issues,
            vec![DoseIssue::ExceedsMax]
        );
    }

    #[test]
    fn pediatric_dexamethasone_is_capped_at_half_a_mg_per_kg_and_10_mg() {
        let mut p = with_weight(16.0);
        p.age_years = Some(5.0);
        let c = check_dose(
            &order(Drug::Dexamethasone, 10.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.max_allowed_mg, Some(8.0));
        assert_eq!(c.issues, vec![DoseIssue::ExceedsMax]);
    }

    #[test]
    fn siltuximab_above_11_mg_per_kg_and_methylprednisolone_above_1000_mg_warn() {
        let p = with_weight(70.0);
        assert_eq!(
            check_dose(&order(Drug::Siltuximab, 770.0), &p, NOW, &Policy::default()).issues,
            vec![]
        );
        assert_eq!(
            check_dose(&order(Drug::Siltuximab, 771.0), &p, NOW, &Policy::default()).issues,
            vec![DoseIssue::ExceedsMax]
        );
        assert_eq!(
            check_dose(
                &order(Drug::Methylprednisolone, 1000.0),
                &p,
                NOW,
                &Policy::default()
            )
            .issues,
            vec![]
        );
        assert_eq!(
            check_dose(
                &order(Drug::Methylprednisolone, 1001.0),
                &p,
                NOW,
                &Policy::default()
            )
            .issues,
            vec![DoseIssue::ExceedsMax]
        );
    }

    #[test]
    fn anakinra_above_10_mg_per_kg_per_day_warns() {
        let p = with_weight(40.0);
        let mut o = order(Drug::Anakinra, 100.0);
        o.per_day = Some(4.0);
        assert_eq!(check_dose(&o, &p, NOW, &Policy::default()).issues, vec![]);
        o.amount = DoseAmount::Mg(101.0);
        assert_eq!(
            check_dose(&o, &p, NOW, &Policy::default()).issues,
            vec![DoseIssue::ExceedsMax]
        );
    }
}
