//! CRS grade (RULES.md A.1, ASTCT 2019): the worse of the hypotension and hypoxia
//! grades, counted only when the fever gate is open.

use super::facts::{
    Celsius, Drug, DrugClass, DrugExposure, Fact, LitersPerMinute, MedicationGiven, OxygenDevice,
    PatientFacts, VentilationMode,
};

/// RULES.md §7 S11: a flow is paired with a device recorded within 1 h of it.
const PAIR_MS: i64 = 3_600_000;
use super::policy::Policy;
use super::report::{Missing, Report};
use super::time::{Timestamp, Window};

/// The fever gate (RULES.md A.1, "Fever gate").
#[derive(Clone, Debug, PartialEq)]
pub enum FeverGate {
    /// Fever ≥ 38.0 °C in the window.
    Fever(Fact<Celsius>),
    /// No fever in the window (or no temperature), but antipyretic or anticytokine
    /// therapy was given after the infusion to a patient with a documented fever or
    /// CRS, so fever is no longer required (RULES.md A.1 gate rule 2, §7 S3).
    Waived(MedicationGiven),
    /// Afebrile and untreated: CRS grade 0 whatever the hemodynamics.
    Closed(Fact<Celsius>),
    /// No temperature in the window and no treatment: the gate can't be decided.
    Unknown,
}

impl FeverGate {
    /// Whether CRS can be graded above 0.
    pub fn is_open(&self) -> bool {
        matches!(self, FeverGate::Fever(_) | FeverGate::Waived(_))
    }
}

/// The hypotension domain (RULES.md A.1, "Hypotension grade").
#[derive(Clone, Debug, PartialEq)]
pub struct HypotensionFinding {
    /// 0, 2, 3 or 4; `None` when it could not be assessed.
    pub grade: Option<u8>,
    /// Distinct vasopressors running in the window (vasopressin included).
    pub vasopressors: Vec<Drug>,
}

/// The hypoxia domain (RULES.md A.1, "Hypoxia grade").
#[derive(Clone, Debug, PartialEq)]
pub struct HypoxiaFinding {
    /// 0, 2, 3 or 4; `None` when not assessed or indeterminate.
    pub grade: Option<u8>,
    /// The support the grade rests on.
    pub support: Option<String>,
    /// Intubation only for airway protection: hypoxia indeterminate (§6-U4).
    pub indeterminate: bool,
}

/// The CRS assessment.
#[derive(Clone, Debug, PartialEq)]
pub struct CrsAssessment {
    /// The grade 0-4; `None` when CRS can't be assessed (fever gate unknown).
    pub grade: Option<u8>,
    /// True when a domain could not be assessed, so the grade is a lower bound.
    pub lower_bound: bool,
    /// The fever gate.
    pub fever_gate: FeverGate,
    /// The hypotension domain.
    pub hypotension: HypotensionFinding,
    /// The hypoxia domain.
    pub hypoxia: HypoxiaFinding,
    /// RULES.md §7 S3: an antipyretic or anticytokine given after the infusion to a
    /// patient with no documented fever, while hypotension or hypoxia is present. It
    /// did not open the gate; the card says "no documented fever; <drug> given on
    /// <date> may mask one: assess for CRS vs another cause".
    pub masking_drug: Option<MedicationGiven>,
}

/// Grades CRS at `now` (RULES.md A.1).
///
/// CRS grade = max(hypotension grade, hypoxia grade) when the fever gate is open;
/// 0 when it is closed; not assessable when no temperature is known and no
/// antipyretic or anticytokine was given.
pub fn grade_crs(
    facts: &PatientFacts,
    now: Timestamp,
    policy: &Policy,
    report: &mut Report,
) -> CrsAssessment {
    let window = Window::ending_at(now, policy.window_hours);
    let (fever_gate, undocumented) = fever_gate(facts, window, policy, report);
    let hypotension = hypotension(facts, window, policy, report);
    let hypoxia = hypoxia(facts, window, policy, report);

    let organ = [hypotension.grade, hypoxia.grade];
    let worst = organ.iter().flatten().copied().max().unwrap_or(0);
    let any_unknown = organ.iter().any(Option::is_none);
    let masking_drug = undocumented.filter(|_| worst > 0);

    let (grade, lower_bound) = match &fever_gate {
        FeverGate::Unknown => (None, false),
        FeverGate::Closed(_) => {
            if worst > 0 && masking_drug.is_none() {
                report.note(
                    "hypotension or hypoxia without fever in an untreated patient is not CRS under ASTCT: look for another cause (RULES.md A.1)",
                );
            }
            (Some(0), false)
        }
        // Fever present: at least grade 1 (RULES.md A.1, gate rule 4).
        FeverGate::Fever(_) => (Some(worst.max(1)), any_unknown),
        // Afebrile only because of treatment: §6-U1 decides the floor.
        FeverGate::Waived(_) => {
            let floor = if worst == 0 {
                policy.afebrile_treated_grade
            } else {
                0
            };
            (Some(worst.max(floor)), any_unknown)
        }
    };

    CrsAssessment {
        grade,
        lower_bound,
        fever_gate,
        hypotension,
        hypoxia,
        masking_drug,
    }
}

/// RULES.md A.1 fever gate: fever ≥ 38.0 °C (37.9 is not fever), or antipyretic or
/// anticytokine therapy given after the CAR-T infusion to a patient who *has CRS*
/// (RULES.md §7 S3): a temperature ≥ 38.0 °C recorded after the infusion and before
/// that dose, or a recorded CRS grade ≥ 1 after the infusion. ASTCT sets no time
/// limit, so the waiver lasts from that dose on. Also returns the latest such drug
/// given to a patient with no documented fever (it may mask one).
fn fever_gate(
    facts: &PatientFacts,
    window: Window,
    policy: &Policy,
    report: &mut Report,
) -> (FeverGate, Option<MedicationGiven>) {
    let max_temp = facts
        .temperatures
        .iter()
        .filter(|t| window.contains(t.at))
        .max_by(|a, b| {
            a.value
                .value()
                .total_cmp(&b.value.value())
                .then(a.at.cmp(&b.at))
        });

    if let Some(t) = max_temp {
        report.evidence(
            format!(
                "temperature {:.1} °C, the highest in {:.0} h{}",
                t.value.value(),
                policy.window_hours,
                if t.value.value() >= policy.fever_celsius {
                    " (fever)"
                } else {
                    " (no fever)"
                }
            ),
            &t.source,
            t.at,
        );
        if t.value.value() >= policy.fever_celsius {
            return (FeverGate::Fever(t.clone()), None);
        }
    }

    // "Source it from MedicationAdministration … given after the CAR-T infusion"
    // (RULES.md A.1, gate rule 2).
    let now = window.end;
    let infused_at = facts.infusion.as_ref().map(|i| i.at);
    let after_infusion = |at: Timestamp| at <= now && infused_at.is_none_or(|i| at >= i);
    let treatments = || {
        facts
            .medications_given
            .iter()
            .filter(|m| m.drug.waives_fever() && after_infusion(m.at))
    };
    // RULES.md §7 S3: CRS documented by a fever before the dose or a recorded grade.
    let crs_recorded = facts
        .recorded_crs_grades
        .iter()
        .any(|g| g.value >= 1 && after_infusion(g.at));
    let febrile_before = |m: &MedicationGiven| {
        facts.temperatures.iter().any(|t| {
            t.value.value() >= policy.fever_celsius && after_infusion(t.at) && t.at <= m.at
        })
    };
    let treatment = treatments()
        .filter(|m| crs_recorded || febrile_before(m))
        .max_by_key(|m| m.at);
    if let Some(m) = treatment {
        report.evidence(
            format!(
                "{} given after a documented fever or CRS: fever no longer required to grade CRS (ASTCT)",
                m.drug.key()
            ),
            &m.source,
            m.at,
        );
        return (FeverGate::Waived(m.clone()), None);
    }
    let undocumented = treatments().max_by_key(|m| m.at).cloned();

    let gate = match max_temp {
        Some(t) => FeverGate::Closed(t.clone()),
        None => {
            report.missing.push(Missing::Temperature {
                window_hours: policy.window_hours,
            });
            FeverGate::Unknown
        }
    };
    (gate, undocumented)
}

/// Whether a vasopressor exposure is current at `now` (RULES.md §7 S11): running then
/// (in progress, a period covering `now`, an active non-PRN infusion order), or its
/// last documented administration ended within `policy.pressor_current_hours`.
fn current_at(e: &DrugExposure, now: Timestamp, policy: &Policy) -> bool {
    e.start <= now
        && e.end
            .is_none_or(|end| end >= now || now.hours_since(end).0 <= policy.pressor_current_hours)
}

/// Whether a drug counts as a vasopressor under the policy (§6-U3).
fn counts_as_vasopressor(drug: Drug, policy: &Policy) -> bool {
    match drug.class() {
        DrugClass::Vasopressor => {
            drug != Drug::AngiotensinII || policy.angiotensin_ii_is_vasopressor
        }
        DrugClass::Inotrope => policy.inotropes_are_vasopressors,
        _ => false,
    }
}

/// RULES.md A.1 hypotension grade. `n` = distinct active vasopressors other than
/// vasopressin: n ≥ 2 → 4; n = 1 → 3 (norepinephrine + vasopressin included);
/// vasopressin alone → 3 (§6-U2); no vasopressor and hypotensive → 2. The dose never
/// matters. A patient on vasopressors is hypotensive whatever the current SBP.
fn hypotension(
    facts: &PatientFacts,
    window: Window,
    policy: &Policy,
    report: &mut Report,
) -> HypotensionFinding {
    let now = window.end;
    let mut running: Vec<&DrugExposure> = facts
        .vasoactive
        .iter()
        .filter(|e| counts_as_vasopressor(e.drug, policy) && current_at(e, now, policy))
        .collect();
    running.sort_by_key(|e| (e.drug, e.start));
    let mut drugs: Vec<Drug> = running.iter().map(|e| e.drug).collect();
    drugs.dedup();

    for e in facts
        .vasoactive
        .iter()
        .filter(|e| current_at(e, now, policy))
    {
        if e.drug.class() == DrugClass::Inotrope && !policy.inotropes_are_vasopressors {
            report.note(format!(
                "{} is an inotrope, not counted as a vasopressor (RULES.md A.1, 6-U3)",
                e.drug.key()
            ));
        }
    }

    let non_vasopressin = drugs.iter().filter(|d| **d != Drug::Vasopressin).count();
    let vasopressin = drugs.contains(&Drug::Vasopressin);
    let pressor_grade = match (non_vasopressin, vasopressin) {
        (n, _) if n >= 2 => Some(4),
        (1, _) => Some(3),
        (0, true) => Some(policy.vasopressin_alone_grade),
        _ => None,
    };
    if let Some(grade) = pressor_grade {
        let mut seen = Vec::new();
        for e in &running {
            if !seen.contains(&e.drug) {
                seen.push(e.drug);
                report.evidence(
                    format!(
                        "{} running (vasopressor; dose does not change the grade)",
                        e.drug.key()
                    ),
                    &e.source,
                    e.start,
                );
            }
        }
        return HypotensionFinding {
            grade: Some(grade),
            vasopressors: drugs,
        };
    }

    // No vasopressor: hypotension from a clinician assertion or from the lowest SBP.
    let asserted = facts
        .hypotension_asserted
        .iter()
        .filter(|h| window.contains(h.at))
        .max_by_key(|h| h.at);
    if let Some(h) = asserted.filter(|h| h.value) {
        report.evidence(
            "hypotension recorded by a clinician, no vasopressor".into(),
            &h.source,
            h.at,
        );
        return HypotensionFinding {
            grade: Some(2),
            vasopressors: drugs,
        };
    }

    let min_sbp = facts
        .systolic
        .iter()
        .filter(|s| window.contains(s.at))
        .min_by(|a, b| {
            a.value
                .value()
                .total_cmp(&b.value.value())
                .then(a.at.cmp(&b.at))
        });

    let threshold = match facts.age_years {
        Some(age) if age < 1.0 => {
            if let Some(h) = asserted {
                report.evidence(
                    "no hypotension recorded by a clinician".into(),
                    &h.source,
                    h.at,
                );
                return HypotensionFinding {
                    grade: Some(0),
                    vasopressors: drugs,
                };
            }
            report.missing.push(Missing::InfantHypotension);
            return HypotensionFinding {
                grade: None,
                vasopressors: drugs,
            };
        }
        Some(age) => sbp_threshold(age, policy),
        None => {
            report.missing.push(Missing::Age);
            policy.adult_sbp_threshold
        }
    };

    match min_sbp {
        Some(s) => {
            let low = s.value.value() < threshold;
            report.evidence(
                format!(
                    "systolic pressure {:.0} mmHg, the lowest in {:.0} h ({} {:.0})",
                    s.value.value(),
                    policy.window_hours,
                    if low {
                        "hypotension: below"
                    } else {
                        "not below"
                    },
                    threshold
                ),
                &s.source,
                s.at,
            );
            HypotensionFinding {
                grade: Some(if low { 2 } else { 0 }),
                vasopressors: drugs,
            }
        }
        None => match asserted {
            Some(h) => {
                report.evidence(
                    "no hypotension recorded by a clinician".into(),
                    &h.source,
                    h.at,
                );
                HypotensionFinding {
                    grade: Some(0),
                    vasopressors: drugs,
                }
            }
            None => {
                report.missing.push(Missing::BloodPressure {
                    window_hours: policy.window_hours,
                });
                HypotensionFinding {
                    grade: None,
                    vasopressors: drugs,
                }
            }
        },
    }
}

/// The SBP below which a patient of `age_years` (≥ 1) is hypotensive: children 1-10
/// years SBP < 70 + 2 × age; over 10 years and adults SBP < 90 (RULES.md A.1,
/// [PEDS], §6-U8). At exactly 10 the formulas agree (90). The age is in completed
/// years (RULES.md §7 S12, PALS convention): 4 y 11 mo → 78 mmHg.
pub fn sbp_threshold(age_years: f64, policy: &Policy) -> f64 {
    let completed = age_years.floor();
    if completed <= 10.0 {
        70.0 + 2.0 * completed
    } else {
        policy.adult_sbp_threshold
    }
}

/// RULES.md A.1 hypoxia grade: room air 0; nasal cannula ≤ 6 L/min or blow-by 2;
/// nasal cannula > 6 L/min, any face mask, non-rebreather or Venturi 3; CPAP, BiPAP or
/// mechanical ventilation 4. FiO2 is never graded.
fn hypoxia(
    facts: &PatientFacts,
    window: Window,
    policy: &Policy,
    report: &mut Report,
) -> HypoxiaFinding {
    // Positive pressure recorded as a procedure that overlaps the window.
    let vent = facts
        .ventilation
        .iter()
        .filter(|v| window.overlaps(v.start, v.end))
        .max_by_key(|v| (v.end.is_none(), v.start));
    let latest_device = facts
        .oxygen_devices
        .iter()
        .filter(|d| window.contains(d.at))
        .max_by_key(|d| d.at);
    let latest_flow = facts
        .oxygen_flows
        .iter()
        .filter(|f| window.contains(f.at))
        .max_by_key(|f| f.at);
    // RULES.md §7 S11: a flow pairs with a device only when recorded within 1 h of it
    // (or in the same Observation).
    let pairs = |f: &Fact<LitersPerMinute>, d: &Fact<OxygenDevice>| {
        f.source == d.source || (f.at.millis() - d.at.millis()).abs() <= PAIR_MS
    };
    // The latest support record wins: a later flow that pairs with no device is graded
    // on its own; a later device with no paired flow is graded by the device.
    let (device, flow) = match (latest_device, latest_flow) {
        (Some(d), Some(f)) if f.at > d.at && !pairs(f, d) => (None, Some(f)),
        (Some(d), _) => {
            let paired = facts
                .oxygen_flows
                .iter()
                .filter(|f| window.contains(f.at) && pairs(f, d))
                .max_by_key(|f| f.at);
            (Some(d), paired)
        }
        (None, f) => (None, f),
    };
    let latest_record = [latest_device.map(|d| d.at), latest_flow.map(|f| f.at)]
        .into_iter()
        .flatten()
        .max();

    // A ventilation procedure still running, or more recent than the latest device
    // or flow record, is the current support.
    if let Some(v) = vent {
        let current =
            v.end.is_none() || latest_record.is_none_or(|r| v.end.is_some_and(|e| e >= r));
        if current {
            let label = match v.mode {
                VentilationMode::Cpap => "CPAP",
                VentilationMode::Bipap => "BiPAP / non-invasive ventilation",
                VentilationMode::Mechanical => "mechanical ventilation",
            };
            if v.airway_protection_only {
                report.evidence(
                    format!(
                        "{label} for airway protection only: hypoxia indeterminate (RULES.md 6-U4)"
                    ),
                    &v.source,
                    v.start,
                );
                return HypoxiaFinding {
                    grade: None,
                    support: Some(label.into()),
                    indeterminate: true,
                };
            }
            report.evidence(format!("{label} (positive pressure)"), &v.source, v.start);
            return HypoxiaFinding {
                grade: Some(4),
                support: Some(label.into()),
                indeterminate: false,
            };
        }
    }

    let flow_value = flow.map(|f| f.value.value());
    let graded = match device.map(|d| d.value) {
        Some(OxygenDevice::RoomAir) => Some(0),
        Some(OxygenDevice::BlowBy) => Some(2),
        Some(OxygenDevice::NasalCannula | OxygenDevice::HighFlowNasalCannula) => match flow_value {
            Some(f) => Some(if f <= 6.0 { 2 } else { 3 }),
            None => {
                // "Nasal cannula with unknown flow: use the device code (HFNC → 3,
                // standard NC → 2) and attach a data-quality warning."
                report.note("nasal cannula flow not recorded: graded by device type");
                Some(
                    if device.is_some_and(|d| d.value == OxygenDevice::HighFlowNasalCannula) {
                        3
                    } else {
                        2
                    },
                )
            }
        },
        Some(OxygenDevice::FaceMask | OxygenDevice::NonRebreather | OxygenDevice::VenturiMask) => {
            Some(3)
        }
        Some(OxygenDevice::Cpap | OxygenDevice::Bipap | OxygenDevice::MechanicalVentilation) => {
            Some(4)
        }
        // RULES.md D: "With no device code but flow ≤ 6, assume nasal cannula."
        None => match flow_value {
            Some(0.0) => Some(0),
            Some(f) if f <= 6.0 => {
                report.note("oxygen flow without a device: nasal cannula assumed (RULES.md D)");
                Some(2)
            }
            Some(_) => {
                report.note("oxygen flow above 6 L/min without a device: graded as high flow");
                Some(3)
            }
            None => None,
        },
    };

    let Some(grade) = graded else {
        report.missing.push(Missing::Oxygen {
            window_hours: policy.window_hours,
        });
        return HypoxiaFinding {
            grade: None,
            support: None,
            indeterminate: false,
        };
    };

    let mut support = String::new();
    if let Some(d) = device {
        support.push_str(d.value.label());
        let uses_flow = matches!(
            d.value,
            OxygenDevice::NasalCannula | OxygenDevice::HighFlowNasalCannula
        );
        let flow_text = match (uses_flow, flow) {
            (true, Some(f)) => format!(" at {} L/min", trim(f.value.value())),
            _ => String::new(),
        };
        support.push_str(&flow_text);
        report.evidence(
            format!("oxygen: {}{}", d.value.label(), flow_text),
            &d.source,
            d.at,
        );
    }
    if let Some(f) = flow {
        if device.is_none() {
            support = format!("oxygen {} L/min", trim(f.value.value()));
        }
        report.evidence(
            format!("oxygen flow {} L/min", trim(f.value.value())),
            &f.source,
            f.at,
        );
    }
    if let Some(fi) = facts
        .fio2
        .iter()
        .filter(|f| window.contains(f.at))
        .max_by_key(|f| f.at)
    {
        report.evidence(
            format!(
                "FiO2 {:.0} % (recorded, not graded under ASTCT)",
                fi.value * 100.0
            ),
            &fi.source,
            fi.at,
        );
    }
    HypoxiaFinding {
        grade: Some(grade),
        support: Some(support),
        indeterminate: false,
    }
}

/// Formats a dose, weight or rate with at most one decimal, rounded half up, without a
/// trailing ".0" ("358.8", "800", never "358.79999999999995"; RULES.md §7 S7: "show doses
/// and weights with at most one decimal"). The one formatting of the engine's notes and
/// the cards, so a weight never reads two ways.
pub fn one_decimal(v: f64) -> String {
    let tenths = (v * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{tenths:.0}")
    } else {
        format!("{tenths:.1}")
    }
}

/// Formats a number without a trailing ".0".
pub(crate) fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::facts::Ventilation;
    use crate::domain::testkit::*;

    fn crs(p: &PatientFacts) -> CrsAssessment {
        grade_crs(p, NOW, &Policy::default(), &mut Report::default())
    }

    #[test]
    fn fever_of_exactly_38_0_opens_the_gate_and_grades_1() {
        assert_eq!(crs(&febrile_adult(38.0)).grade, Some(1));
    }

    #[test]
    fn temperature_of_37_9_is_not_fever_and_grades_0_even_with_hypotension() {
        let mut p = febrile_adult(37.9);
        sbp(&mut p, 80.0, 1.0);
        let a = crs(&p);
        assert_eq!(a.grade, Some(0));
        assert!(matches!(a.fever_gate, FeverGate::Closed(_)));
        assert_eq!(a.hypotension.grade, Some(2));
    }

    #[test]
    fn fever_outside_the_24_hour_window_does_not_count() {
        let mut p = febrile_adult(37.0);
        temp(&mut p, 39.0, 25.0);
        assert_eq!(crs(&p).grade, Some(0));
    }

    #[test]
    fn no_temperature_and_no_treatment_makes_crs_not_assessable() {
        let mut p = adult();
        sbp(&mut p, 120.0, 1.0);
        device(&mut p, OxygenDevice::RoomAir, 1.0);
        let mut report = Report::default();
        let a = grade_crs(&p, NOW, &Policy::default(), &mut report);
        assert_eq!(a.grade, None);
        assert!(
            report
                .missing
                .contains(&Missing::Temperature { window_hours: 24.0 })
        );
    }

    #[test]
    fn afebrile_after_tocilizumab_for_a_documented_fever_is_graded_by_hypoxia() {
        let mut p = febrile_adult(37.2);
        temp(&mut p, 38.6, 30.0);
        given(&mut p, Drug::Tocilizumab, 6.0, Some(560.0));
        p.oxygen_devices.clear();
        device(&mut p, OxygenDevice::NasalCannula, 1.0);
        flow(&mut p, 4.0, 1.0);
        assert_eq!(crs(&p).grade, Some(2));
    }

    #[test]
    fn afebrile_after_antipyretic_without_organ_findings_is_grade_0_by_policy_u1() {
        let mut p = febrile_adult(37.2);
        temp(&mut p, 38.6, 30.0);
        given(&mut p, Drug::Acetaminophen, 3.0, Some(1000.0));
        let a = crs(&p);
        assert!(matches!(a.fever_gate, FeverGate::Waived(_)));
        assert_eq!(a.grade, Some(0));
    }

    #[test]
    fn antipyretic_given_before_the_infusion_does_not_open_the_gate() {
        let mut p = febrile_adult(37.2);
        given(&mut p, Drug::Acetaminophen, 80.0, Some(650.0));
        sbp(&mut p, 80.0, 1.0);
        assert_eq!(crs(&p).grade, Some(0));
    }

    #[test]
    fn fluid_responsive_hypotension_with_fever_is_grade_2() {
        let mut p = febrile_adult(38.7);
        sbp(&mut p, 84.0, 1.0);
        assert_eq!(crs(&p).grade, Some(2));
    }

    #[test]
    fn adult_sbp_of_90_is_not_hypotension_but_89_is() {
        let mut p = febrile_adult(38.5);
        sbp(&mut p, 90.0, 1.0);
        assert_eq!(crs(&p).grade, Some(1));
        sbp(&mut p, 89.0, 0.5);
        assert_eq!(crs(&p).grade, Some(2));
    }

    #[test]
    fn pediatric_hypotension_thresholds_follow_70_plus_2_times_age() {
        let policy = Policy::default();
        assert_eq!(sbp_threshold(4.0, &policy), 78.0);
        assert_eq!(sbp_threshold(10.0, &policy), 90.0);
        assert_eq!(sbp_threshold(11.0, &policy), 90.0);
        for (age, sbp_value, hypotensive) in [
            (4.0, 77.0, true),
            (4.0, 78.0, false),
            (10.0, 89.0, true),
            (10.0, 90.0, false),
            (11.0, 89.0, true),
            (11.0, 90.0, false),
        ] {
            let mut p = febrile_adult(38.5);
            p.age_years = Some(age);
            p.systolic.clear();
            sbp(&mut p, sbp_value, 1.0);
            let expected = if hypotensive { 2 } else { 1 };
            assert_eq!(crs(&p).grade, Some(expected), "age {age}, SBP {sbp_value}");
        }
    }

    #[test]
    fn infant_hypotension_is_not_derived_from_sbp() {
        let mut p = febrile_adult(38.5);
        p.age_years = Some(0.5);
        let mut report = Report::default();
        let a = grade_crs(&p, NOW, &Policy::default(), &mut report);
        assert_eq!(a.hypotension.grade, None);
        assert!(a.lower_bound);
        assert!(report.missing.contains(&Missing::InfantHypotension));
    }

    #[test]
    fn a_single_vasopressor_is_grade_3_whatever_the_pressure() {
        let mut p = febrile_adult(38.5);
        running(&mut p, Drug::Norepinephrine, 3.0);
        assert_eq!(crs(&p).grade, Some(3));
    }

    #[test]
    fn norepinephrine_with_vasopressin_is_grade_3() {
        let mut p = febrile_adult(38.5);
        running(&mut p, Drug::Norepinephrine, 3.0);
        running(&mut p, Drug::Vasopressin, 2.0);
        assert_eq!(crs(&p).grade, Some(3));
    }

    #[test]
    fn vasopressin_alone_is_grade_3_by_policy_u2() {
        let mut p = febrile_adult(38.5);
        running(&mut p, Drug::Vasopressin, 2.0);
        assert_eq!(crs(&p).grade, Some(3));
    }

    #[test]
    fn two_vasopressors_other_than_vasopressin_are_grade_4() {
        let mut p = febrile_adult(38.5);
        running(&mut p, Drug::Norepinephrine, 3.0);
        running(&mut p, Drug::Phenylephrine, 2.0);
        assert_eq!(crs(&p).grade, Some(4));
    }

    #[test]
    fn the_same_vasopressor_recorded_twice_counts_once() {
        let mut p = febrile_adult(38.5);
        running(&mut p, Drug::Norepinephrine, 3.0);
        running(&mut p, Drug::Norepinephrine, 1.0);
        assert_eq!(crs(&p).grade, Some(3));
    }

    #[test]
    fn inotropes_are_not_vasopressors() {
        let mut p = febrile_adult(38.5);
        running(&mut p, Drug::Norepinephrine, 3.0);
        running(&mut p, Drug::Dobutamine, 2.0);
        assert_eq!(crs(&p).grade, Some(3));
    }

    #[test]
    fn a_vasopressor_stopped_before_the_window_does_not_count() {
        let mut p = febrile_adult(38.5);
        p.vasoactive.push(DrugExposure {
            drug: Drug::Norepinephrine,
            start: ago(40.0),
            end: Some(ago(30.0)),
            source: crate::domain::Source("MedicationAdministration/old".into()),
        });
        assert_eq!(crs(&p).grade, Some(1));
    }

    #[test]
    fn nasal_cannula_at_6_0_l_min_is_grade_2_and_6_5_is_grade_3() {
        for (lpm, grade) in [(6.0, 2), (6.5, 3)] {
            let mut p = febrile_adult(38.4);
            p.oxygen_devices.clear();
            device(&mut p, OxygenDevice::NasalCannula, 1.0);
            flow(&mut p, lpm, 1.0);
            assert_eq!(crs(&p).grade, Some(grade), "{lpm} L/min");
        }
    }

    #[test]
    fn high_flow_labelled_cannula_at_low_flow_is_grade_2() {
        let mut p = febrile_adult(38.4);
        p.oxygen_devices.clear();
        device(&mut p, OxygenDevice::HighFlowNasalCannula, 1.0);
        flow(&mut p, 5.0, 1.0);
        assert_eq!(crs(&p).grade, Some(2));
    }

    #[test]
    fn any_face_mask_is_grade_3_whatever_the_flow() {
        for d in [
            OxygenDevice::FaceMask,
            OxygenDevice::NonRebreather,
            OxygenDevice::VenturiMask,
        ] {
            let mut p = febrile_adult(38.4);
            p.oxygen_devices.clear();
            device(&mut p, d, 1.0);
            flow(&mut p, 2.0, 1.0);
            assert_eq!(crs(&p).grade, Some(3), "{d:?}");
        }
    }

    #[test]
    fn positive_pressure_is_grade_4() {
        for d in [
            OxygenDevice::Cpap,
            OxygenDevice::Bipap,
            OxygenDevice::MechanicalVentilation,
        ] {
            let mut p = febrile_adult(38.4);
            p.oxygen_devices.clear();
            device(&mut p, d, 1.0);
            assert_eq!(crs(&p).grade, Some(4), "{d:?}");
        }
    }

    #[test]
    fn a_running_ventilation_procedure_is_grade_4() {
        let mut p = febrile_adult(38.4);
        p.ventilation.push(Ventilation {
            mode: VentilationMode::Mechanical,
            start: ago(5.0),
            end: None,
            airway_protection_only: false,
            source: crate::domain::Source("Procedure/vent".into()),
        });
        assert_eq!(crs(&p).grade, Some(4));
    }

    #[test]
    fn intubation_for_airway_protection_only_leaves_hypoxia_indeterminate() {
        let mut p = febrile_adult(38.4);
        p.oxygen_devices.clear();
        p.ventilation.push(Ventilation {
            mode: VentilationMode::Mechanical,
            start: ago(5.0),
            end: None,
            airway_protection_only: true,
            source: crate::domain::Source("Procedure/vent".into()),
        });
        let a = crs(&p);
        assert!(a.hypoxia.indeterminate);
        assert_eq!(a.grade, Some(1));
        assert!(a.lower_bound);
    }

    #[test]
    fn fio2_is_never_graded() {
        let mut p = febrile_adult(38.4);
        p.fio2.push(Fact::new(0.8, ago(1.0), "Observation/fio2"));
        assert_eq!(crs(&p).grade, Some(1));
    }

    #[test]
    fn flow_without_a_device_at_or_below_6_assumes_nasal_cannula() {
        let mut p = febrile_adult(38.4);
        p.oxygen_devices.clear();
        flow(&mut p, 3.0, 1.0);
        assert_eq!(crs(&p).grade, Some(2));
    }

    #[test]
    fn missing_oxygen_data_is_reported_and_the_grade_is_a_lower_bound() {
        let mut p = febrile_adult(38.4);
        p.oxygen_devices.clear();
        let mut report = Report::default();
        let a = grade_crs(&p, NOW, &Policy::default(), &mut report);
        assert_eq!(a.grade, Some(1));
        assert!(a.lower_bound);
        assert!(
            report
                .missing
                .contains(&Missing::Oxygen { window_hours: 24.0 })
        );
    }

    #[test]
    fn the_worse_domain_wins_pressor_and_low_flow_is_grade_3() {
        let mut p = febrile_adult(38.4);
        running(&mut p, Drug::Norepinephrine, 2.0);
        p.oxygen_devices.clear();
        device(&mut p, OxygenDevice::NasalCannula, 1.0);
        flow(&mut p, 2.0, 1.0);
        assert_eq!(crs(&p).grade, Some(3));
    }
}
