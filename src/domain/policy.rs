//! Every threshold and every decision on an open point of RULES.md section 6, in one
//! place. `Policy::default()` is the project's decision as RULES.md states it; a site
//! may change a value through configuration, never by editing a rule.

/// The longest grading window a site may configure (7 days). The adapter skips typed
/// parsing of vital-sign and neurological Observations older than the window in force,
/// and configuration refuses a longer one.
pub const MAX_WINDOW_HOURS: f64 = 168.0;

/// The grading policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Grading window in hours: the current grade uses findings from the last 24 h
    /// (FHIR-INPUTS.md "A grading window"; RULES.md D).
    pub window_hours: f64,
    /// Fever is a temperature ≥ 38.0 °C (RULES.md A.1 fever gate, rule 1).
    pub fever_celsius: f64,
    /// §6-U1: grade when the fever gate is open only because antipyretic or
    /// anticytokine therapy was given, and there is no hypotension and no hypoxia.
    /// The project picks 0.
    pub afebrile_treated_grade: u8,
    /// §6-U2: hypotension grade with vasopressin as the only vasopressor. Derived: 3.
    pub vasopressin_alone_grade: u8,
    /// §6-U3: angiotensin II counts as a vasopressor.
    pub angiotensin_ii_is_vasopressor: bool,
    /// §6-U3 / RULES.md A.1: inotropes (dobutamine, milrinone) do not count.
    pub inotropes_are_vasopressors: bool,
    /// §6-U8: adult hypotension is SBP < 90 mmHg (RULES.md A.1, Lee 2014 convention).
    pub adult_sbp_threshold: f64,
    /// §6-U5: CAPD is the encephalopathy tool below this age; ICE from it (ASTCT: 12).
    pub capd_below_age: f64,
    /// §6-U5: encephalopathy-domain grade for CAPD 1-8 (RULES.md A.2 table: 1).
    pub capd_subthreshold_grade: u8,
    /// §6-U6: warn on a tocilizumab order when ICANS ≥ 2 and CRS ≤ 1 (a warning,
    /// never a hard stop).
    pub warn_tocilizumab_with_icans: bool,
    /// RULES.md B.1: tolerance in mg before `exceeds-max` (vial rounding). Default 0.
    pub tocilizumab_rounding_tolerance_mg: f64,
    /// RULES.md B.3: days after infusion during which a GM-CSF order is flagged
    /// (\[PROJECT\] window).
    pub gm_csf_window_days: i64,
    /// FHIR-INPUTS.md "Patient": a weight older than this many days is stale and the
    /// card says how old it is.
    pub weight_fresh_days: i64,
    /// RULES.md B.2: patients younger than this get pediatric steroid limits.
    pub pediatric_below_age: f64,
    /// RULES.md §7 S11: a vasopressor whose last documented administration ended
    /// within this many hours of the evaluation instant still counts as current.
    pub pressor_current_hours: f64,
}

impl Policy {
    /// [`Policy::pressor_current_hours`] in milliseconds: how long after its last
    /// administration a vasopressor still counts (RULES.md §7 S11).
    pub(crate) fn pressor_grace_ms(&self) -> i64 {
        (self.pressor_current_hours * super::time::MS_PER_HOUR as f64).round() as i64
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            window_hours: 24.0,
            fever_celsius: 38.0,
            afebrile_treated_grade: 0,
            vasopressin_alone_grade: 3,
            angiotensin_ii_is_vasopressor: true,
            inotropes_are_vasopressors: false,
            adult_sbp_threshold: 90.0,
            capd_below_age: 12.0,
            capd_subthreshold_grade: 1,
            warn_tocilizumab_with_icans: true,
            tocilizumab_rounding_tolerance_mg: 0.0,
            gm_csf_window_days: 30,
            weight_fresh_days: 7,
            pediatric_below_age: 18.0,
            pressor_current_hours: 2.0,
        }
    }
}
