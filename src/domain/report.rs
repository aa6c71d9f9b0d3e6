//! What a grade rests on: evidence, missing data and data-quality notes.

use std::fmt;

use super::facts::Source;
use super::time::Timestamp;

/// One finding a grade or flag rests on, with the resource and instant it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    /// The finding in words, with its value ("temperature 38.4 °C, the highest in 24 h").
    pub finding: String,
    /// The resource it was read from.
    pub source: Source,
    /// When it was observed.
    pub at: Timestamp,
}

/// Data the engine needed and did not have. Missing data is never read as normal
/// (FHIR-INPUTS.md introduction).
#[derive(Clone, Debug, PartialEq)]
pub enum Missing {
    /// No temperature in the grading window.
    Temperature { window_hours: f64 },
    /// No systolic pressure in the grading window and no vasopressor.
    BloodPressure { window_hours: f64 },
    /// No oxygen device, flow or ventilation record in the grading window.
    Oxygen { window_hours: f64 },
    /// No ICE, CAPD or level-of-consciousness assessment in the grading window.
    NeuroAssessment { window_hours: f64 },
    /// No body weight on record.
    Weight,
    /// No birth date: age-dependent rules used adult defaults.
    Age,
    /// Under 1 year hypotension cannot be derived from SBP (RULES.md A.1).
    InfantHypotension,
    /// A dose that could not be read.
    Dose { source: Source },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Temperature { window_hours } => {
                write!(f, "no temperature in the last {window_hours:.0} h")
            }
            Missing::BloodPressure { window_hours } => write!(
                f,
                "no systolic blood pressure in the last {window_hours:.0} h (hypotension not assessed)"
            ),
            Missing::Oxygen { window_hours } => write!(
                f,
                "no oxygen device, flow or ventilation record in the last {window_hours:.0} h (hypoxia not assessed)"
            ),
            Missing::NeuroAssessment { window_hours } => write!(
                f,
                "no ICE/CAPD score or level of consciousness in the last {window_hours:.0} h (ICANS not assessed)"
            ),
            Missing::Weight => f.write_str("no usable body weight (weight-based doses not checked)"),
            Missing::Age => f.write_str("no birth date (adult thresholds used)"),
            Missing::InfantHypotension => f.write_str(
                "under 1 year hypotension is not derived from SBP: a clinician hypotension assessment is needed",
            ),
            Missing::Dose { source } => write!(f, "the ordered dose in {source} could not be read"),
        }
    }
}

/// A data-quality or interpretation note shown beside the grade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note(pub String);

/// Collects evidence, missing data and notes while the rules run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Evidence, in the order the rules used it.
    pub evidence: Vec<Evidence>,
    /// Missing data.
    pub missing: Vec<Missing>,
    /// Notes.
    pub notes: Vec<Note>,
}

impl Report {
    pub(crate) fn evidence(&mut self, finding: String, source: &Source, at: Timestamp) {
        self.evidence.push(Evidence {
            finding,
            source: source.clone(),
            at,
        });
    }
    pub(crate) fn note(&mut self, text: impl Into<String>) {
        self.notes.push(Note(text.into()));
    }
}
