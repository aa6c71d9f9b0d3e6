//! The grading engine: ASTCT 2019 consensus grading of CRS and ICANS, decision flags,
//! grade-based management and dose checks, as pure functions over timestamped facts.
//!
//! Architecture invariant: this module depends on `std` only. It never does IO, never
//! reads a clock (the evaluation instant is an argument), never logs and never
//! serializes. JSON and FHIR live at the edges (`adapter`, `protocol`).
//!
//! Every rule cites its section of `RULES.md` (shared clinical specification). The open
//! points of RULES.md section 6 are decided in one place: [`Policy`].

mod assess;
mod course;
mod crs;
mod dosing;
mod facts;
mod flags;
mod icans;
mod management;
mod policy;
mod report;
mod time;

#[cfg(test)]
mod safety_tests;
#[cfg(test)]
pub(crate) mod testkit;

pub use assess::{Assessment, LAB_WINDOW_HOURS, assess, assess_for_series};
pub use course::{
    Course, CourseParams, CoursePoint, DEXAMETHASONE_Q6H_DAILY_MG, Dose, Episode, GradeState,
    OXYGEN_CLASSES, Steroids, Stretch, Syndrome, SyndromeCourse, TOCILIZUMAB_MAX_PER_EPISODE,
    Treatment, course, course_from_series, course_naive, dexamethasone_factor, facts_known_at,
    instants, series, series_naive, syndrome_course, treatment,
};
pub use crs::{
    CrsAssessment, FeverGate, HypotensionFinding, HypoxiaFinding, grade_crs, one_decimal,
    sbp_threshold,
};
pub use dosing::{
    DoseAmount, DoseCheck, DoseIssue, DoseOrder, SteroidSuggestion, TOCILIZUMAB_CAP_MG,
    TOCILIZUMAB_MAX_PER_24H, TocilizumabDose, check_dose, dosing_weight, steroid_suggestion,
    tocilizumab_max_dose_mg, tocilizumab_suggestion,
};
pub use facts::{
    CapdScore, CarTProduct, Celsius, CerebralEdema, ClinicalFinding, Consciousness, DataError,
    Drug, DrugClass, DrugExposure, Fact, IceItems, IceScore, Infusion, Kg, Lab, LabKind, LabValue,
    LitersPerMinute, MedicationGiven, Motor, NeuroScore, OxygenDevice, PatientFacts, Seizure,
    Source, Systolic, Ventilation, VentilationMode,
};
pub use flags::{Criterion, Flag, HScore, HlhCriteria, hlh_criteria, hscore};
pub use icans::{
    IcansAssessment, IcansState, capd_grade, consciousness_grade, edema_grade, grade_icans,
    ice_grade, motor_grade, seizure_grade,
};
pub use management::{Recommendation, Scope, TOCILIZUMAB_NOT_RECOMMENDED, recommendations};
pub use policy::{MAX_WINDOW_HOURS, Policy};
pub use report::{Evidence, Missing, Note, Report};
pub use time::{Hours, Timestamp, Window};
