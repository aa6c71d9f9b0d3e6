//! ICANS grade (RULES.md A.2, ASTCT 2019): the worst of the encephalopathy score (ICE,
//! or CAPD under 12), level of consciousness, seizure, motor findings and cerebral
//! edema.

use super::facts::{
    CerebralEdema, Consciousness, Fact, Motor, NeuroScore, OxygenDevice, PatientFacts, Seizure,
    VentilationMode,
};
use super::policy::Policy;
use super::report::{Evidence, Missing, Report};
use super::time::{Timestamp, Window};

/// Whether ICANS could be graded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcansState {
    /// Graded from the findings in the window.
    Graded,
    /// Sedated or intubated: ICE/CAPD recorded as not performed, a sedative infusion or
    /// invasive ventilation running, and nothing else to go on. A state of its own,
    /// never grade 0 (RULES.md A.2 "Exclusions", §7 S4).
    NotAssessable,
    /// No neurological assessment in the window.
    NotAssessed,
}

/// The ICANS assessment.
#[derive(Clone, Debug, PartialEq)]
pub struct IcansAssessment {
    /// The grade 0-4, `None` when not assessable or not assessed.
    pub grade: Option<u8>,
    /// Why there is or isn't a grade.
    pub state: IcansState,
    /// Encephalopathy-domain grade (ICE or CAPD).
    pub encephalopathy: Option<u8>,
    /// Depressed-consciousness domain grade.
    pub consciousness: Option<u8>,
    /// Seizure domain grade.
    pub seizure: u8,
    /// Motor domain grade.
    pub motor: u8,
    /// Cerebral-edema domain grade.
    pub cerebral_edema: u8,
    /// True when a domain could not be assessed (sedation) but a grade was still given
    /// from the others, so the grade is a lower bound (RULES.md §7 S4, S13).
    pub lower_bound: bool,
    /// The sedation evidence that made domains not assessable; empty when none
    /// (RULES.md §7 S4: the card names it).
    pub sedation: Vec<Evidence>,
}

/// ICE total → domain grade: 10 → 0, 7-9 → 1, 3-6 → 2, 0-2 → 3 (RULES.md A.2). ICE 0
/// because unarousable is grade 4 through the consciousness domain.
pub fn ice_grade(total: u8) -> u8 {
    match total {
        10.. => 0,
        7..=9 => 1,
        3..=6 => 2,
        _ => 3,
    }
}

/// CAPD total → domain grade: 0 → 0, 1-8 → 1 (§6-U5 policy), ≥ 9 → 3 (RULES.md A.2,
/// ASCO "A CAPD score of ≥ 9 … should be considered Grade 3 ICANS").
pub fn capd_grade(total: u8, policy: &Policy) -> u8 {
    match total {
        0 => 0,
        1..=8 => policy.capd_subthreshold_grade,
        _ => 3,
    }
}

/// Level of consciousness → domain grade (RULES.md A.2).
pub fn consciousness_grade(c: Consciousness) -> u8 {
    match c {
        Consciousness::Alert => 0,
        Consciousness::AwakensSpontaneously => 1,
        Consciousness::AwakensToVoice => 2,
        Consciousness::AwakensToTactile => 3,
        Consciousness::Unarousable => 4,
    }
}

/// Seizure → domain grade (RULES.md A.2).
pub fn seizure_grade(s: Seizure) -> u8 {
    match s {
        Seizure::None => 0,
        Seizure::Resolved => 3,
        Seizure::ProlongedOrRepetitive => 4,
    }
}

/// Motor finding → domain grade (RULES.md A.2).
pub fn motor_grade(m: Motor) -> u8 {
    match m {
        Motor::None => 0,
        Motor::DeepFocalWeakness => 4,
    }
}

/// Cerebral edema → domain grade (RULES.md A.2).
pub fn edema_grade(e: CerebralEdema) -> u8 {
    match e {
        CerebralEdema::None => 0,
        CerebralEdema::Focal => 3,
        CerebralEdema::Diffuse => 4,
    }
}

fn latest<T>(facts: &[Fact<T>], window: Window) -> Option<&Fact<T>> {
    facts
        .iter()
        .filter(|f| window.contains(f.at))
        .max_by_key(|f| f.at)
}

fn worst<T: Ord>(facts: &[Fact<T>], window: Window) -> Option<&Fact<T>> {
    facts
        .iter()
        .filter(|f| window.contains(f.at))
        .max_by(|a, b| a.value.cmp(&b.value).then(a.at.cmp(&b.at)))
}

/// Grades ICANS at `now` (RULES.md A.2). Encephalopathy score and consciousness use
/// the latest assessment in the window (they describe a current state); seizures,
/// motor findings and edema use the worst event in the window.
pub fn grade_icans(
    facts: &PatientFacts,
    now: Timestamp,
    policy: &Policy,
    report: &mut Report,
) -> IcansAssessment {
    let window = Window::ending_at(now, policy.window_hours);

    let score = latest(&facts.neuro_scores, window);
    let sedation = sedation(facts, score, window);
    // RULES.md §7 S4: (a) or (b) → the ICE/CAPD and consciousness domains are not
    // assessable; (c) alone → ICE/CAPD only.
    let mental_blocked = sedation.ice_not_done || sedation.infusion;
    let score_blocked = mental_blocked || sedation.ventilated;
    let mut not_assessable = false;
    let encephalopathy = score.and_then(|s| {
        if score_blocked {
            not_assessable = true;
            if !matches!(s.value, NeuroScore::NotAssessable) {
                report.evidence(
                    "ICE/CAPD recorded during sedation or invasive ventilation: not assessable (RULES.md §7 S4)".into(),
                    &s.source,
                    s.at,
                );
            }
            return None;
        }
        let (grade, text) = match s.value {
            NeuroScore::Ice(ice) => {
                if facts.age_years.is_some_and(|a| a < policy.capd_below_age) {
                    report.note("ICE recorded for a child under 12: ASTCT uses CAPD below 12 (RULES.md A.2)");
                }
                let g = ice_grade(ice.total());
                let how = if ice.items().is_some() { " (sum of items)" } else { "" };
                (g, format!("ICE score {}/10{how} → encephalopathy grade {g}", ice.total()))
            }
            NeuroScore::Capd(capd) => {
                if facts.age_years.is_some_and(|a| a >= policy.capd_below_age) {
                    report.note("CAPD recorded at age 12 or over: ASTCT uses ICE from 12 unless developmentally delayed (RULES.md A.2)");
                }
                let g = capd_grade(capd.total(), policy);
                (g, format!("CAPD score {}/32 → encephalopathy grade {g}", capd.total()))
            }
            // RULES.md §7 S5: ICE G4 / CAPD table.
            NeuroScore::UnableUnarousable { capd } => (
                4,
                format!(
                    "unable to perform {} (unarousable) → grade 4",
                    if capd { "CAPD" } else { "ICE" }
                ),
            ),
            NeuroScore::NotAssessable => {
                not_assessable = true;
                return None;
            }
        };
        report.evidence(text, &s.source, s.at);
        Some(grade)
    });

    let consciousness = latest(&facts.consciousness, window).and_then(|c| {
        if mental_blocked {
            not_assessable = true;
            report.evidence(
                format!(
                    "level of consciousness '{}' during sedation: not graded (RULES.md §7 S4)",
                    loc_text(c.value)
                ),
                &c.source,
                c.at,
            );
            return None;
        }
        let g = consciousness_grade(c.value);
        report.evidence(
            format!("level of consciousness: {} → grade {g}", loc_text(c.value)),
            &c.source,
            c.at,
        );
        Some(g)
    });
    for e in &sedation.evidence {
        report.evidence.push(e.clone());
    }
    not_assessable |= score_blocked;

    let seizure = worst(&facts.seizures, window).map_or(0, |s| {
        let g = seizure_grade(s.value);
        if g > 0 {
            report.evidence(
                format!("seizure: {} → grade {g}", seizure_text(s.value)),
                &s.source,
                s.at,
            );
        }
        g
    });
    let motor = worst(&facts.motor, window).map_or(0, |m| {
        let g = motor_grade(m.value);
        if g > 0 {
            report.evidence(
                format!("deep focal motor weakness → grade {g}"),
                &m.source,
                m.at,
            );
        }
        g
    });
    let cerebral_edema = worst(&facts.cerebral_edema, window).map_or(0, |e| {
        let g = edema_grade(e.value);
        if g > 0 {
            let what = if e.value == CerebralEdema::Focal {
                "focal cerebral edema"
            } else {
                "diffuse cerebral edema, posturing, CN VI palsy, papilledema or Cushing's triad"
            };
            report.evidence(format!("{what} → grade {g}"), &e.source, e.at);
        }
        g
    });

    let events = seizure.max(motor).max(cerebral_edema);
    let mental = encephalopathy.into_iter().chain(consciousness).max();

    let (grade, state) = match mental {
        Some(m) => (Some(m.max(events)), IcansState::Graded),
        // Sedated with nothing else to go on: not assessable. A seizure, motor finding
        // or edema still grades on its own (RULES.md §7 S4).
        None if events > 0 => (Some(events), IcansState::Graded),
        None if not_assessable => (None, IcansState::NotAssessable),
        None => {
            report.missing.push(Missing::NeuroAssessment {
                window_hours: policy.window_hours,
            });
            (None, IcansState::NotAssessed)
        }
    };

    IcansAssessment {
        grade,
        state,
        encephalopathy,
        consciousness,
        seizure,
        motor,
        cerebral_edema,
        lower_bound: grade.is_some() && not_assessable,
        sedation: sedation.evidence,
    }
}

/// The sedation evidence of RULES.md §7 S4 at `now`.
struct Sedation {
    /// (a) the latest ICE/CAPD in the window was recorded as not performed.
    ice_not_done: bool,
    /// (b) a continuous sedative infusion is running.
    infusion: bool,
    /// (c) invasive mechanical ventilation is running.
    ventilated: bool,
    evidence: Vec<Evidence>,
}

/// RULES.md §7 S4: sedation evidence is (a) an ICE or CAPD Observation recorded as not
/// performed (the latest in the window: a later valid score means the patient was
/// assessable again), (b) a continuous sedative infusion running now, or (c) invasive
/// mechanical ventilation running now.
fn sedation(facts: &PatientFacts, score: Option<&Fact<NeuroScore>>, window: Window) -> Sedation {
    let now = window.end;
    let mut evidence = Vec::new();
    let ice_not_done = match score {
        Some(s) if s.value == NeuroScore::NotAssessable => {
            evidence.push(Evidence {
                finding: "ICE/CAPD recorded as not performed: not assessable".into(),
                source: s.source.clone(),
                at: s.at,
            });
            true
        }
        _ => false,
    };
    let mut infusion = false;
    for e in facts
        .sedatives
        .iter()
        .filter(|e| e.start <= now && e.end.is_none_or(|end| end >= now))
    {
        infusion = true;
        evidence.push(Evidence {
            finding: format!("{} infusion running (sedation)", e.drug.key()),
            source: e.source.clone(),
            at: e.start,
        });
    }
    let mut ventilated = false;
    for v in facts.ventilation.iter().filter(|v| {
        v.mode == VentilationMode::Mechanical
            && v.start <= now
            && v.end.is_none_or(|end| end >= now)
    }) {
        ventilated = true;
        evidence.push(Evidence {
            finding: "invasive mechanical ventilation running".into(),
            source: v.source.clone(),
            at: v.start,
        });
    }
    if !ventilated
        && let Some(d) = facts
            .oxygen_devices
            .iter()
            .filter(|d| window.contains(d.at))
            .max_by_key(|d| d.at)
            .filter(|d| d.value == OxygenDevice::MechanicalVentilation)
    {
        ventilated = true;
        evidence.push(Evidence {
            finding: "invasive mechanical ventilation recorded".into(),
            source: d.source.clone(),
            at: d.at,
        });
    }
    Sedation {
        ice_not_done,
        infusion,
        ventilated,
        evidence,
    }
}

fn loc_text(c: Consciousness) -> &'static str {
    match c {
        Consciousness::Alert => "alert",
        Consciousness::AwakensSpontaneously => "awakens spontaneously",
        Consciousness::AwakensToVoice => "awakens to voice",
        Consciousness::AwakensToTactile => "awakens only to tactile stimulus",
        Consciousness::Unarousable => "unarousable",
    }
}

fn seizure_text(s: Seizure) -> &'static str {
    match s {
        Seizure::None => "none",
        Seizure::Resolved => "resolved rapidly",
        Seizure::ProlongedOrRepetitive => "prolonged or repetitive without return to baseline",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::facts::{CapdScore, IceScore};
    use crate::domain::testkit::*;

    fn icans(p: &PatientFacts) -> IcansAssessment {
        grade_icans(p, NOW, &Policy::default(), &mut Report::default())
    }

    #[test]
    fn ice_score_bands_map_to_grades() {
        for (score, grade) in [(10, 0), (9, 1), (7, 1), (6, 2), (3, 2), (2, 3), (0, 3)] {
            assert_eq!(ice_grade(score), grade, "ICE {score}");
        }
    }

    #[test]
    fn ice_0_awake_with_global_aphasia_is_grade_3() {
        let mut p = adult();
        ice(&mut p, 0, 1.0);
        loc(&mut p, Consciousness::Alert, 1.0);
        assert_eq!(icans(&p).grade, Some(3));
    }

    #[test]
    fn ice_0_because_unarousable_is_grade_4() {
        let mut p = adult();
        ice(&mut p, 0, 1.0);
        loc(&mut p, Consciousness::Unarousable, 1.0);
        assert_eq!(icans(&p).grade, Some(4));
    }

    #[test]
    fn ice_items_are_summed_and_range_checked() {
        let s = IceScore::from_items(3, 2, 1, 0, 0).expect("valid items");
        assert_eq!(s.total(), 6);
        assert!(IceScore::from_items(5, 0, 0, 0, 0).is_err());
        assert!(IceScore::from_items(0, 4, 0, 0, 0).is_err());
        assert!(IceScore::from_items(0, 0, 2, 0, 0).is_err());
        assert!(IceScore::from_total(11).is_err());
        assert!(IceScore::from_total(-1).is_err());
    }

    #[test]
    fn level_of_consciousness_grades() {
        assert_eq!(consciousness_grade(Consciousness::Alert), 0);
        assert_eq!(consciousness_grade(Consciousness::AwakensSpontaneously), 1);
        assert_eq!(consciousness_grade(Consciousness::AwakensToVoice), 2);
        assert_eq!(consciousness_grade(Consciousness::AwakensToTactile), 3);
        assert_eq!(consciousness_grade(Consciousness::Unarousable), 4);
    }

    #[test]
    fn ice_3_with_a_resolved_seizure_is_grade_3() {
        let mut p = adult();
        ice(&mut p, 3, 1.0);
        p.seizures
            .push(Fact::new(Seizure::Resolved, ago(4.0), "Observation/sz"));
        assert_eq!(icans(&p).grade, Some(3));
    }

    #[test]
    fn a_prolonged_seizure_motor_weakness_or_diffuse_edema_is_grade_4() {
        let mut p = adult();
        ice(&mut p, 8, 1.0);
        p.seizures.push(Fact::new(
            Seizure::ProlongedOrRepetitive,
            ago(4.0),
            "Observation/sz",
        ));
        assert_eq!(icans(&p).grade, Some(4));
        let mut p = adult();
        ice(&mut p, 10, 1.0);
        p.motor.push(Fact::new(
            Motor::DeepFocalWeakness,
            ago(4.0),
            "Observation/m",
        ));
        assert_eq!(icans(&p).grade, Some(4));
        let mut p = adult();
        ice(&mut p, 10, 1.0);
        p.cerebral_edema
            .push(Fact::new(CerebralEdema::Focal, ago(4.0), "Observation/e"));
        assert_eq!(icans(&p).grade, Some(3));
        p.cerebral_edema.push(Fact::new(
            CerebralEdema::Diffuse,
            ago(2.0),
            "Observation/e2",
        ));
        assert_eq!(icans(&p).grade, Some(4));
    }

    #[test]
    fn capd_bands_for_children() {
        let policy = Policy::default();
        assert_eq!(capd_grade(0, &policy), 0);
        assert_eq!(capd_grade(8, &policy), 1);
        assert_eq!(capd_grade(9, &policy), 3);
        let mut p = adult();
        p.age_years = Some(6.0);
        p.neuro_scores.push(Fact::new(
            NeuroScore::Capd(CapdScore::new(12).expect("0-32")),
            ago(1.0),
            "Observation/capd",
        ));
        assert_eq!(icans(&p).grade, Some(3));
        assert!(CapdScore::new(33).is_err());
    }

    #[test]
    fn a_sedated_patient_is_not_assessable_never_grade_0() {
        let mut p = adult();
        p.neuro_scores.push(Fact::new(
            NeuroScore::NotAssessable,
            ago(1.0),
            "Observation/ice",
        ));
        let a = icans(&p);
        assert_eq!(a.grade, None);
        assert_eq!(a.state, IcansState::NotAssessable);
    }

    #[test]
    fn no_neuro_assessment_is_reported_missing() {
        let p = adult();
        let mut report = Report::default();
        let a = grade_icans(&p, NOW, &Policy::default(), &mut report);
        assert_eq!(a.grade, None);
        assert_eq!(a.state, IcansState::NotAssessed);
        assert!(
            report
                .missing
                .contains(&Missing::NeuroAssessment { window_hours: 24.0 })
        );
    }

    #[test]
    fn the_latest_ice_score_is_the_current_one() {
        let mut p = adult();
        ice(&mut p, 4, 10.0);
        ice(&mut p, 9, 1.0);
        assert_eq!(icans(&p).grade, Some(1));
    }
}
