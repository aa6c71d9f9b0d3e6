//! CRS grade (RULES.md A.1, ASTCT 2019): the worse of the hypotension and hypoxia
//! grades, counted only when the fever gate is open.

use super::facts::{
    Celsius, Drug, DrugClass, DrugExposure, Fact, MedicationGiven, OxygenDevice, PatientFacts,
    VentilationMode,
};
use super::policy::Policy;
use super::report::{Missing, Report};
use super::time::{Timestamp, Window};

/// The fever gate (RULES.md A.1, "Fever gate").
#[derive(Clone, Debug, PartialEq)]
pub enum FeverGate {
    /// Fever ≥ 38.0 °C in the window.
    Fever(Fact<Celsius>),
    /// No fever in the window (or no temperature), but antipyretic or anticytokine
    /// therapy was given after the infusion, so fever is no longer required.
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
    let fever_gate = fever_gate(facts, window, policy, report);
    let hypotension = hypotension(facts, window, policy, report);
    let hypoxia = hypoxia(facts, window, policy, report);

    let organ = [hypotension.grade, hypoxia.grade];
    let worst = organ.iter().flatten().copied().max().unwrap_or(0);
    let any_unknown = organ.iter().any(Option::is_none);

    let (grade, lower_bound) = match &fever_gate {
        FeverGate::Unknown => (None, false),
        FeverGate::Closed(_) => {
            if worst > 0 {
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
    }
}

/// RULES.md A.1 fever gate: fever ≥ 38.0 °C (37.9 is not fever), or antipyretic or
/// anticytokine therapy given after the CAR-T infusion.
fn fever_gate(
    facts: &PatientFacts,
    window: Window,
    policy: &Policy,
    report: &mut Report,
) -> FeverGate {
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
                "temperature {:.1} Cel, the highest in {:.0} h{}",
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
            return FeverGate::Fever(t.clone());
        }
    }

    // "Source it from MedicationAdministration … given after the CAR-T infusion"
    // (RULES.md A.1, gate rule 2).
    let infused_at = facts.infusion.as_ref().map(|i| i.at);
    let treatment = facts
        .medications_given
        .iter()
        .filter(|m| m.drug.waives_fever())
        .filter(|m| m.at <= window.end && infused_at.is_none_or(|i| m.at >= i))
        .max_by_key(|m| m.at);
    if let Some(m) = treatment {
        report.evidence(
            format!(
                "{} given: fever no longer required to grade CRS (ASTCT)",
                m.drug.key()
            ),
            &m.source,
            m.at,
        );
        return FeverGate::Waived(m.clone());
    }

    match max_temp {
        Some(t) => FeverGate::Closed(t.clone()),
        None => {
            report.missing.push(Missing::Temperature {
                window_hours: policy.window_hours,
            });
            FeverGate::Unknown
        }
    }
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
    let mut running: Vec<&DrugExposure> = facts
        .vasoactive
        .iter()
        .filter(|e| counts_as_vasopressor(e.drug, policy) && window.overlaps(e.start, e.end))
        .collect();
    running.sort_by_key(|e| (e.drug, e.start));
    let mut drugs: Vec<Drug> = running.iter().map(|e| e.drug).collect();
    drugs.dedup();

    for e in facts
        .vasoactive
        .iter()
        .filter(|e| window.overlaps(e.start, e.end))
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
                    "systolic pressure {:.0} mm[Hg], the lowest in {:.0} h ({} {:.0})",
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
/// \[PEDS\], §6-U8). At exactly 10 the formulas agree (90).
pub fn sbp_threshold(age_years: f64, policy: &Policy) -> f64 {
    if age_years <= 10.0 {
        70.0 + 2.0 * age_years
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
    let device = facts
        .oxygen_devices
        .iter()
        .filter(|d| window.contains(d.at))
        .max_by_key(|d| d.at);
    let flow = facts
        .oxygen_flows
        .iter()
        .filter(|f| window.contains(f.at))
        .max_by_key(|f| f.at);

    // A ventilation procedure still running, or more recent than the latest device
    // observation, is the current support.
    if let Some(v) = vent {
        let current = v.end.is_none() || device.is_none_or(|d| v.end.is_some_and(|e| e >= d.at));
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

/// Formats a number without a trailing ".0".
pub(crate) fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}
