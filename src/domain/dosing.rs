//! Dose checks: tocilizumab hard rules (RULES.md B.1) and soft, warning-level
//! ceilings for the other CRS/ICANS drugs (RULES.md B.2), and the doses the service
//! itself suggests (RULES.md §7 S9).
//!
//! Arithmetic is exact (RULES.md §7 S7): weights and doses are read into integer
//! millionths (of a kg or a mg), limits are computed in integers and rounded to 0.1 mg
//! half up, and compared in integers, so 12 mg/kg × 29.9 kg is 358.8 mg, not
//! 358.79999999999995.

use super::facts::{Drug, Fact, Kg, PatientFacts, Source};
use super::policy::Policy;
use super::time::Timestamp;

/// How an order states its dose.
#[derive(Clone, Debug, PartialEq)]
pub enum DoseAmount {
    /// An absolute dose in mg.
    Mg(f64),
    /// A weight-based dose in mg/kg, multiplied by the patient's weight.
    MgPerKg(f64),
    /// The dose could not be read; it is reported with the reason ("unit 'pill' is not
    /// a mass"), never guessed.
    Unreadable(String),
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
    /// Less than 8 h since the last tocilizumab dose (a hard rule, RULES.md §7 S8).
    IntervalTooShort,
    /// 3 doses already given in the last 24 h.
    Max24hReached,
    /// 4 doses already given in this episode.
    MaxTotalReached,
    /// Patient younger than the label's 2 years.
    BelowLabelAge,
    /// No usable body weight: the weight-based limit was not checked (RULES.md §7 S6).
    WeightUnavailable,
    /// The ordered dose could not be read: not checked (issue 11).
    DoseUnreadable,
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
            DoseIssue::WeightUnavailable => "weight-unavailable",
            DoseIssue::DoseUnreadable => "dose-unreadable",
        }
    }

    /// Whether the issue forbids any further dose now, so no "change the dose"
    /// suggestion may be offered (RULES.md §7 S8).
    pub fn forbids_dose(self) -> bool {
        matches!(
            self,
            DoseIssue::IntervalTooShort | DoseIssue::Max24hReached | DoseIssue::MaxTotalReached
        )
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
    /// The most allowed per dose, when it could be worked out (rounded to 0.1 mg).
    pub max_allowed_mg: Option<f64>,
    /// Findings; empty means the order passes.
    pub issues: Vec<DoseIssue>,
    /// Whether a violation is a hard rule (tocilizumab) or a soft ceiling.
    pub hard: bool,
    /// Explanations (what was counted, stale weight, missing data).
    pub notes: Vec<String>,
    /// RULES.md §7 S8: when the next tocilizumab dose is allowed (interval or 24-h
    /// limit), unless no further dose is allowed at all.
    pub next_dose_allowed_at: Option<Timestamp>,
    /// RULES.md §7 S8: the total (4) or the 24-h (3) limit is reached.
    pub no_further_dose: bool,
    /// The corrected dose to suggest; `None` whenever RULES.md §7 S8 forbids a dose
    /// suggestion, or no safe dose can be computed (no weight, unreadable order).
    pub suggest_dose_mg: Option<f64>,
    /// Why the ordered dose could not be read (issue 11).
    pub unreadable_reason: Option<String>,
}

const MICRO: f64 = 1_000_000.0;

/// A value in integer millionths (of a kg or a mg). Inputs are decimals of at most a
/// few places, so this recovers them exactly.
fn micro(v: f64) -> i64 {
    (v * MICRO).round() as i64
}

/// Rounds millionths of a mg to tenths of a mg, half up (positive values).
fn tenths_half_up(micro_mg: i64) -> i64 {
    (micro_mg + 50_000).div_euclid(100_000)
}

/// Whether `ordered` mg is above `limit` mg plus `tolerance` mg, compared exactly.
fn exceeds(ordered: f64, limit: f64, tolerance: f64) -> bool {
    micro(ordered) > micro(limit) + micro(tolerance)
}

/// `mg_per_kg` × `weight_kg`, exact to a millionth of a mg, rounded to 0.1 mg half up.
fn per_kg_limit(mg_per_kg: f64, weight_kg: f64) -> f64 {
    let product = (mg_per_kg * micro(weight_kg) as f64).round() as i64;
    tenths_half_up(product) as f64 / 10.0
}

/// RULES.md B.1: `max = weight < 30 kg ? 12 mg/kg : min(8 mg/kg, 800 mg)`. Not
/// monotonic: 29 kg → 348 mg, 30 kg → 240 mg. Exact and rounded to 0.1 mg half up
/// (RULES.md §7 S7): 29.9 kg → 358.8 mg; 69.998 kg → 560.0 mg.
pub fn tocilizumab_max_dose_mg(weight_kg: f64) -> f64 {
    if micro(weight_kg) < micro(30.0) {
        per_kg_limit(12.0, weight_kg)
    } else {
        per_kg_limit(8.0, weight_kg).min(800.0)
    }
}

/// The tocilizumab per-dose cap that holds whatever the weight (RULES.md B.1, §7 S6).
pub const TOCILIZUMAB_CAP_MG: f64 = 800.0;

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
            super::crs::one_decimal(w.value.value()),
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
    let mut unreadable_reason = None;
    let ordered_mg = match &order.amount {
        DoseAmount::Mg(mg) => Some(*mg),
        DoseAmount::MgPerKg(per_kg) => {
            if weight.is_none() {
                notes.push("a mg/kg dose can't be converted without a body weight".into());
            }
            weight.map(|w| (per_kg * micro(w) as f64).round() / MICRO)
        }
        DoseAmount::Unreadable(reason) => {
            notes.push(format!(
                "the ordered dose could not be read ({reason}): not checked"
            ));
            unreadable_reason = Some(reason.clone());
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
        next_dose_allowed_at: None,
        no_further_dose: false,
        suggest_dose_mg: None,
        unreadable_reason,
    };
    if check.unreadable_reason.is_some() {
        check.issues.push(DoseIssue::DoseUnreadable);
    }
    match order.drug {
        Drug::Tocilizumab => tocilizumab(order, facts, weight, now, policy, &mut check),
        _ => soft(order, facts, weight, now, policy, &mut check),
    }
    check.issues.sort();
    check.issues.dedup();
    // RULES.md §7 S8: a corrected dose only when the dose is the only problem.
    check.suggest_dose_mg = match check.max_allowed_mg {
        Some(max)
            if check.issues == [DoseIssue::ExceedsMax]
                && (order.drug != Drug::Tocilizumab || weight.is_some()) =>
        {
            Some(max)
        }
        _ => None,
    };
    check
}

/// Tocilizumab doses given in this episode (since the latest CAR-T infusion), sorted.
fn tocilizumab_doses(facts: &PatientFacts, now: Timestamp) -> Vec<Timestamp> {
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
    doses
}

/// RULES.md B.1 hard rules for tocilizumab (and its biosimilars), with RULES.md §7
/// S6 (the 800 mg cap holds without a weight; below it the per-kg check is reported as
/// not done) and S8 (when the next dose is allowed).
fn tocilizumab(
    order: &DoseOrder,
    facts: &PatientFacts,
    weight: Option<f64>,
    now: Timestamp,
    policy: &Policy,
    check: &mut DoseCheck,
) {
    let tolerance = policy.tocilizumab_rounding_tolerance_mg;
    match weight {
        Some(w) => {
            let max = tocilizumab_max_dose_mg(w);
            check.max_allowed_mg = Some(max);
            if let Some(ordered) = check.ordered_mg
                && exceeds(ordered, max, tolerance)
            {
                check.issues.push(DoseIssue::ExceedsMax);
            }
        }
        None => {
            match check.ordered_mg {
                Some(ordered) if exceeds(ordered, TOCILIZUMAB_CAP_MG, tolerance) => {
                    check.max_allowed_mg = Some(TOCILIZUMAB_CAP_MG);
                    check.issues.push(DoseIssue::ExceedsMax);
                }
                _ => check.issues.push(DoseIssue::WeightUnavailable),
            }
            check.notes.push(
                "weight-based limit not checked: no usable body weight (the 800 mg cap still holds)"
                    .into(),
            );
        }
    }
    if let Some(route) = &order.route
        && !route.to_ascii_lowercase().contains("intravenous")
        && !route.eq_ignore_ascii_case("iv")
    {
        check.notes.push(format!(
            "route '{route}': tocilizumab for CRS is given IV over 60 min"
        ));
    }

    let doses = tocilizumab_doses(facts, now);
    let limits = dose_limits(&doses, now);
    if let Some(last) = doses.last() {
        check.notes.push(format!(
            "last tocilizumab dose {} ago",
            elapsed_text(now.millis() - last.millis())
        ));
    }
    if limits.interval_too_short {
        check.issues.push(DoseIssue::IntervalTooShort);
    }
    if limits.max_24h {
        check.issues.push(DoseIssue::Max24hReached);
    }
    if limits.max_total {
        check.issues.push(DoseIssue::MaxTotalReached);
    }
    check.no_further_dose = limits.max_total || limits.max_24h;
    check.next_dose_allowed_at = limits.next_allowed;
    check.notes.push(format!(
        "{} dose(s) in the last 24 h, {} in this episode (limits 3 and 4)",
        limits.last_24h,
        doses.len()
    ));
    if let Some(age) = facts.age_years
        && age < 2.0
    {
        check.issues.push(DoseIssue::BelowLabelAge);
    }
}

const HOUR_MS: i64 = 3_600_000;

/// The B.1 dose-count rules at `now`.
struct DoseLimits {
    last_24h: usize,
    interval_too_short: bool,
    max_24h: bool,
    max_total: bool,
    /// When the interval and 24-h rules next allow a dose (None when a dose is allowed
    /// now, or when the total is reached).
    next_allowed: Option<Timestamp>,
}

/// Elapsed time in whole hours and minutes, rounded down, so that a time just short of a
/// limit never reads as the limit (7 h 59 min, not "8.0 h", for the 8 h interval of
/// RULES.md B.1 / §7 S8).
fn elapsed_text(millis: i64) -> String {
    let minutes = millis.max(0) / 60_000;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// The most tocilizumab doses in any 24 h (RULES.md B.1).
pub const TOCILIZUMAB_MAX_PER_24H: usize = 3;

/// RULES.md B.1: ≥ 8 h between doses, at most 3 in 24 h and 4 in total.
fn dose_limits(doses: &[Timestamp], now: Timestamp) -> DoseLimits {
    let recent: Vec<Timestamp> = doses
        .iter()
        .copied()
        .filter(|d| now.millis() - d.millis() < 24 * HOUR_MS)
        .collect();
    let last = doses.last().copied();
    let interval_too_short = last.is_some_and(|l| now.millis() - l.millis() < 8 * HOUR_MS);
    let max_24h = recent.len() >= TOCILIZUMAB_MAX_PER_24H;
    let max_total = doses.len() >= 4;
    let mut next: Option<Timestamp> = None;
    if !max_total {
        if interval_too_short && let Some(l) = last {
            next = Some(Timestamp(l.millis() + 8 * HOUR_MS));
        }
        if max_24h && let Some(oldest) = recent.get(recent.len() - 3) {
            let t = Timestamp(oldest.millis() + 24 * HOUR_MS);
            next = Some(next.map_or(t, |n| n.max(t)));
        }
    }
    DoseLimits {
        last_24h: recent.len(),
        interval_too_short,
        max_24h,
        max_total,
        next_allowed: next,
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
    let per_kg = |mg_per_kg: f64| weight.map(|w| per_kg_limit(mg_per_kg, w));

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
        // RULES.md §7 S6: never "within the dose limits" without the weight.
        check.issues.push(DoseIssue::WeightUnavailable);
        check
            .notes
            .push("no usable body weight: weight-based ceiling not computed".into());
    }
    let per_dose = per_dose.map(|m| tenths_half_up(micro(m)) as f64 / 10.0);
    check.max_allowed_mg = per_dose;
    if let (Some(mg), Some(max)) = (check.ordered_mg, per_dose)
        && exceeds(mg, max, 0.0)
    {
        check.issues.push(DoseIssue::ExceedsMax);
    }
    if let (Some(d), Some(max)) = (daily, per_day)
        && exceeds(d, max, 0.0)
    {
        check.issues.push(DoseIssue::ExceedsMax);
        check.notes.push(format!(
            "daily total {} mg is above the usual {} mg/day",
            super::crs::one_decimal(d),
            super::crs::one_decimal(max)
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

/// A steroid order the service suggests (RULES.md §7 S9).
#[derive(Clone, Debug, PartialEq)]
pub struct SteroidSuggestion {
    /// Dexamethasone, or methylprednisolone at ICANS 4.
    pub drug: Drug,
    /// The dose per administration in mg.
    pub dose_mg: f64,
    /// Administrations per day (q6h → 4, daily → 1).
    pub per_day: f64,
    /// Hours between doses.
    pub interval_hours: f64,
    /// The route ("IV").
    pub route: &'static str,
    /// The dose is a weight-based pediatric dose (unverified, RULES.md B.2): the card
    /// says "verify pediatric dose".
    pub verify_pediatric: bool,
    /// The order in words ("dexamethasone 10 mg IV q6h").
    pub text: String,
}

/// A tocilizumab dose for this patient now (RULES.md B.1, §7 S9).
#[derive(Clone, Debug, PartialEq)]
pub struct TocilizumabDose {
    /// The dose in mg (the B.1 maximum for the weight, rounded to 0.1 mg).
    pub mg: f64,
    /// The mg/kg it is computed from (12 under 30 kg, else 8; capped at 800 mg).
    pub mg_per_kg: f64,
    /// Which dose of the episode this would be (1-based).
    pub dose_number: u32,
    /// The most doses allowed in the episode (4).
    pub max_doses: u32,
}

/// Rounds a dose down to 0.1 mg, so a weight-based dose never rounds above its cap.
fn tenths_down(mg: f64) -> f64 {
    micro(mg).div_euclid(100_000) as f64 / 10.0
}

/// The steroid order to suggest (RULES.md §7 S9, B.2, B.3): dexamethasone 10 mg IV q6h
/// for patients ≥ 12 years or ≥ 40 kg; below that 0.5 mg/kg per dose, at most 10 mg
/// (unverified: verify pediatric dose); at ICANS 4 methylprednisolone 1000 mg IV daily
/// (children 30 mg/kg/day, at most 1000 mg, unverified). `None` when no safe dose can
/// be computed (a child with no usable weight, or neither age nor weight known), or
/// when the suggestion would not pass [`check_dose`].
pub fn steroid_suggestion(
    facts: &PatientFacts,
    icans: Option<u8>,
    now: Timestamp,
    policy: &Policy,
) -> Option<SteroidSuggestion> {
    let mut notes = Vec::new();
    let weight = dosing_weight(facts, now, policy, &mut notes).map(|w| w.value.value());
    let age = facts.age_years;
    let child = age.is_some_and(|a| a < policy.pediatric_below_age);
    let suggestion = if icans == Some(4) {
        if child {
            let w = weight?;
            let dose = tenths_down((30.0 * w).min(1000.0));
            SteroidSuggestion {
                drug: Drug::Methylprednisolone,
                dose_mg: dose,
                per_day: 1.0,
                interval_hours: 24.0,
                route: "IV",
                verify_pediatric: true,
                text: format!(
                    "methylprednisolone {} mg IV daily (30 mg/kg/day, max 1000 mg; verify pediatric dose)",
                    super::crs::one_decimal(dose)
                ),
            }
        } else {
            if age.is_none() && weight.is_none() {
                return None;
            }
            SteroidSuggestion {
                drug: Drug::Methylprednisolone,
                dose_mg: 1000.0,
                per_day: 1.0,
                interval_hours: 24.0,
                route: "IV",
                verify_pediatric: false,
                text: "methylprednisolone 1000 mg IV daily".into(),
            }
        }
    } else {
        let big = age.is_some_and(|a| a >= 12.0) || weight.is_some_and(|w| w >= 40.0);
        // The pediatric soft ceiling (B.2) applies below `pediatric_below_age`: a small
        // 13-year-old still gets at most 0.5 mg/kg.
        let capped = child && weight.is_some_and(|w| per_kg_limit(0.5, w) < 10.0);
        if big && !capped {
            if age.is_none() && weight.is_none() {
                return None;
            }
            SteroidSuggestion {
                drug: Drug::Dexamethasone,
                dose_mg: 10.0,
                per_day: 4.0,
                interval_hours: 6.0,
                route: "IV",
                verify_pediatric: false,
                text: "dexamethasone 10 mg IV q6h".into(),
            }
        } else {
            let w = weight?;
            let dose = tenths_down((0.5 * w).min(10.0));
            SteroidSuggestion {
                drug: Drug::Dexamethasone,
                dose_mg: dose,
                per_day: 4.0,
                interval_hours: 6.0,
                route: "IV",
                verify_pediatric: true,
                text: format!(
                    "dexamethasone {} mg IV q6h (0.5 mg/kg, max 10 mg; verify pediatric dose)",
                    super::crs::one_decimal(dose)
                ),
            }
        }
    };
    let order = DoseOrder {
        drug: suggestion.drug,
        amount: DoseAmount::Mg(suggestion.dose_mg),
        per_day: Some(suggestion.per_day),
        route: Some(suggestion.route.into()),
        source: Source("suggestion".into()),
    };
    check_dose(&order, facts, now, policy)
        .issues
        .is_empty()
        .then_some(suggestion)
}

/// The tocilizumab dose to suggest now (RULES.md B.1, §7 S9): the weight-based dose
/// (12 mg/kg under 30 kg, else 8 mg/kg, at most 800 mg), when a weight is usable and no
/// B.1 rule forbids a dose now (interval, 24-h and total limits, label age). It passes
/// [`check_dose`] by construction, and is checked again.
pub fn tocilizumab_suggestion(
    facts: &PatientFacts,
    now: Timestamp,
    policy: &Policy,
) -> Option<TocilizumabDose> {
    let mut notes = Vec::new();
    let w = dosing_weight(facts, now, policy, &mut notes)?.value.value();
    if facts.age_years.is_some_and(|a| a < 2.0) {
        return None;
    }
    let doses = tocilizumab_doses(facts, now);
    let limits = dose_limits(&doses, now);
    if limits.interval_too_short || limits.max_24h || limits.max_total {
        return None;
    }
    let mg = tocilizumab_max_dose_mg(w);
    let dose = TocilizumabDose {
        mg,
        mg_per_kg: if micro(w) < micro(30.0) { 12.0 } else { 8.0 },
        dose_number: u32::try_from(doses.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1),
        max_doses: 4,
    };
    let order = DoseOrder {
        drug: Drug::Tocilizumab,
        amount: DoseAmount::Mg(mg),
        per_day: None,
        route: Some("IV".into()),
        source: Source("suggestion".into()),
    };
    check_dose(&order, facts, now, policy)
        .issues
        .is_empty()
        .then_some(dose)
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
    fn without_a_weight_an_800_mg_order_is_weight_unavailable_never_within_the_limits() {
        let mut p = adult();
        p.weights.clear();
        let c = check_dose(
            &order(Drug::Tocilizumab, 800.0),
            &p,
            NOW,
            &Policy::default(),
        );
        assert_eq!(c.max_allowed_mg, None);
        assert_eq!(c.issues, vec![DoseIssue::WeightUnavailable]);
        assert_eq!(c.suggest_dose_mg, None);
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
