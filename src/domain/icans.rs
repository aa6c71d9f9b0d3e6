//! ICANS grade (RULES.md A.2, ASTCT 2019): the worst of the encephalopathy score (ICE,
//! or CAPD under 12), level of consciousness, seizure, motor findings and cerebral
//! edema.

use super::facts::{CerebralEdema, Consciousness, Fact, Motor, NeuroScore, PatientFacts, Seizure};
use super::policy::Policy;
use super::report::{Missing, Report};
use super::time::{Timestamp, Window};

/// Whether ICANS could be graded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcansState {
    /// Graded from the findings in the window.
    Graded,
    /// Sedated or intubated: ICE/CAPD recorded as not performed and nothing else to go
    /// on. A state of its own, never grade 0 (RULES.md A.2 "Exclusions").
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
    let mut not_assessable = false;
    let encephalopathy = score.and_then(|s| {
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
            NeuroScore::CapdUnable => (4, "unable to perform CAPD (unarousable) → grade 4".to_string()),
            NeuroScore::NotAssessable => {
                not_assessable = true;
                report.evidence(
                    "ICE/CAPD not performed (sedated or intubated): not assessable".into(),
                    &s.source,
                    s.at,
                );
                return None;
            }
        };
        report.evidence(text, &s.source, s.at);
        Some(grade)
    });

    let consciousness = latest(&facts.consciousness, window).map(|c| {
        let g = consciousness_grade(c.value);
        report.evidence(
            format!("level of consciousness: {} → grade {g}", loc_text(c.value)),
            &c.source,
            c.at,
        );
        g
    });

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
        // or edema still grades on its own.
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
