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
