//! The toxicity course: CRS and ICANS graded over the whole post-infusion period, the
//! episodes read from that series (onset, worst grade, resolution), and a treatment
//! summary (issue 12).
//!
//! The course never re-implements a grading rule: the grade at every instant `t` is
//! what [`assess`] gives on the facts known at `t` (facts whose time is ≤ `t`;
//! exposures started by `t`, still running as far as `t` knows when they end later).
//! [`course`] is fast because it slides a working set of facts along the timeline
//! instead of filtering every fact again at every instant; [`course_naive`] is the
//! from-scratch baseline, kept for the benchmark and as the oracle of the property
//! tests (both must give the same series).

use super::assess::{Assessment, LAB_WINDOW_HOURS, assess_for_series};
use super::facts::{
    Drug, DrugClass, DrugExposure, Fact, OxygenDevice, PatientFacts, Source, Ventilation,
    VentilationMode,
};
use super::policy::Policy;
use super::report::Evidence;
use super::time::{MS_PER_HOUR, Timestamp};

/// How the course is read from the series ([PROJECT] decisions, issue 12).
#[derive(Clone, Debug, PartialEq)]
pub struct CourseParams {
    /// An episode resolves at the start of the first run of at least this many hours
    /// graded 0 (issue 12: 24 h). Not-assessable or lower-bound instants break the run.
    pub resolution_hours: f64,
    /// The series grades at least this often (hours), besides every instant a fact
    /// changes.
    pub step_hours: f64,
    /// The course covers at most this many days before `until` (CIBMTR follows
    /// toxicities to day 100).
    pub max_days: i64,
}

impl Default for CourseParams {
    fn default() -> Self {
        CourseParams {
            resolution_hours: 24.0,
            step_hours: 1.0,
            max_days: 100,
        }
    }
}

/// One syndrome's state at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradeState {
    /// Graded.
    Graded(u8),
    /// At least this grade: a CRS domain could not be assessed (`lower_bound`).
    AtLeast(u8),
    /// Not assessable (never read as grade 0).
    NotAssessable,
}

impl GradeState {
    /// The grade a reader may rely on as a floor, if any.
    pub fn floor(self) -> Option<u8> {
        match self {
            GradeState::Graded(g) | GradeState::AtLeast(g) => Some(g),
            GradeState::NotAssessable => None,
        }
    }

    /// Whether this is a grade of 0 that is not a lower bound: the only state that
    /// counts toward resolution.
    pub fn is_zero(self) -> bool {
        self == GradeState::Graded(0)
    }
}

/// CRS or ICANS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Syndrome {
    /// Cytokine release syndrome.
    Crs,
    /// Immune effector cell-associated neurotoxicity syndrome.
    Icans,
}

impl Syndrome {
    /// Short name ("CRS").
    pub fn name(self) -> &'static str {
        match self {
            Syndrome::Crs => "CRS",
            Syndrome::Icans => "ICANS",
        }
    }
}

/// The grades at one instant, with the resources they rest on.
#[derive(Clone, Debug, PartialEq)]
pub struct CoursePoint {
    /// The instant.
    pub at: Timestamp,
    /// CRS.
    pub crs: GradeState,
    /// ICANS.
    pub icans: GradeState,
    /// The resources the CRS grade rests on (deduplicated, in evidence order).
    pub crs_evidence: Vec<Source>,
    /// The resources the ICANS grade rests on.
    pub icans_evidence: Vec<Source>,
    /// The findings the CRS grade rests on, in words with their times (the app page
    /// shows these, not resource ids: RULES.md §7 S14).
    pub crs_findings: Vec<Evidence>,
    /// The findings the ICANS grade rests on.
    pub icans_findings: Vec<Evidence>,
}

impl CoursePoint {
    /// The state of one syndrome.
    pub fn state(&self, s: Syndrome) -> GradeState {
        match s {
            Syndrome::Crs => self.crs,
            Syndrome::Icans => self.icans,
        }
    }

    /// The evidence of one syndrome.
    pub fn evidence(&self, s: Syndrome) -> &[Source] {
        match s {
            Syndrome::Crs => &self.crs_evidence,
            Syndrome::Icans => &self.icans_evidence,
        }
    }

    /// The findings of one syndrome, in words.
    pub fn findings(&self, s: Syndrome) -> &[Evidence] {
        match s {
            Syndrome::Crs => &self.crs_findings,
            Syndrome::Icans => &self.icans_findings,
        }
    }
}

/// One episode of a syndrome.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    /// CRS or ICANS.
    pub syndrome: Syndrome,
    /// The first instant graded ≥ 1.
    pub onset: Timestamp,
    /// The data before the onset never showed grade 0 (it was not sent, or not
    /// assessable): the episode may have begun earlier.
    pub onset_censored: bool,
    /// The worst grade.
    pub worst: u8,
    /// The worst grade was only ever a lower bound.
    pub worst_lower_bound: bool,
    /// When the worst grade was first reached.
    pub worst_at: Timestamp,
    /// The resources the worst grade rested on when first reached.
    pub worst_evidence: Vec<Source>,
    /// The start of the first run of `resolution_hours` at grade 0; `None` while
    /// ongoing.
    pub resolution: Option<Timestamp>,
    /// The state at the last instant of the episode (at `until` when ongoing).
    pub last: GradeState,
}

impl Episode {
    /// The episode's end, or `until` when ongoing.
    pub fn end_or(&self, until: Timestamp) -> Timestamp {
        self.resolution.unwrap_or(until)
    }
}

/// A stretch of time (start inclusive, end exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stretch {
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
}

impl Stretch {
    /// Its length in hours.
    pub fn hours(self) -> f64 {
        (self.end.0 - self.start.0) as f64 / MS_PER_HOUR as f64
    }
}

/// One syndrome over the course.
#[derive(Clone, Debug, PartialEq)]
pub struct SyndromeCourse {
    /// CRS or ICANS.
    pub syndrome: Syndrome,
    /// Episodes, in time order, never overlapping.
    pub episodes: Vec<Episode>,
    /// Hours at each exact grade 0-4 (lower bounds and not-assessable excluded).
    pub hours_at_grade: [f64; 5],
    /// Hours at "at least" each grade 0-4 (a domain could not be assessed).
    pub hours_at_least: [f64; 5],
    /// Stretches when the syndrome was not assessable (reported as such, never as 0).
    pub not_assessable: Vec<Stretch>,
}

impl SyndromeCourse {
    /// Total not-assessable hours.
    pub fn not_assessable_hours(&self) -> f64 {
        self.not_assessable.iter().fold(0.0, |a, s| a + s.hours())
    }
}

/// A dose given.
#[derive(Clone, Debug, PartialEq)]
pub struct Dose {
    /// The drug.
    pub drug: Drug,
    /// When.
    pub at: Timestamp,
    /// The dose in mg, when the record states one.
    pub mg: Option<f64>,
    /// The resource.
    pub source: Source,
}

/// Dexamethasone-equivalent factor of a systemic corticosteroid (mg dexamethasone per
/// mg of the drug), from the standard glucocorticoid potency equivalence
/// (dexamethasone 0.75 mg ≈ methylprednisolone 4 mg ≈ prednisone 5 mg ≈
/// hydrocortisone 20 mg; e.g. Liu et al., Allergy Asthma Clin Immunol 2013;9:30,
/// Table 1). [PROJECT]: RULES.md B.2 names "dexamethasone … (or equivalent)" without a
/// table.
pub fn dexamethasone_factor(drug: Drug) -> Option<f64> {
    match drug {
        Drug::Dexamethasone => Some(1.0),
        Drug::Methylprednisolone => Some(0.75 / 4.0),
        Drug::Prednisone => Some(0.75 / 5.0),
        Drug::Hydrocortisone => Some(0.75 / 20.0),
        _ => None,
    }
}

/// Dexamethasone 10 mg q6h as a daily dose (RULES.md B.2, B.3 CRS G3).
pub const DEXAMETHASONE_Q6H_DAILY_MG: f64 = 40.0;

/// The most tocilizumab doses per CRS episode (RULES.md B.1: 4).
pub const TOCILIZUMAB_MAX_PER_EPISODE: usize = 4;

/// The corticosteroids of the course.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Steroids {
    /// Every systemic corticosteroid dose since the infusion.
    pub doses: Vec<Dose>,
    /// Cumulative dexamethasone-equivalent mg of the doses with a stated dose.
    pub dexamethasone_equivalent_mg: f64,
    /// Doses without a readable mg amount (not in the cumulative figure).
    pub doses_without_mg: usize,
    /// Distinct days since infusion with at least one dose.
    pub days_on_steroids: usize,
    /// The longest run of consecutive days at ≥ dexamethasone 40 mg/day-equivalent
    /// (10 mg q6h).
    pub high_dose_run_days: usize,
}

impl Steroids {
    /// RULES.md B.3 / SEED-002: steroids at dexamethasone 10 mg q6h-equivalent for more
    /// than 3 days (prolonged high-dose exposure: infection risk, taper, CMV).
    pub fn prolonged_high_dose(&self) -> bool {
        self.high_dose_run_days > 3
    }
}

/// Treatment over the course.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Treatment {
    /// Tocilizumab doses since the infusion.
    pub tocilizumab: Vec<Dose>,
    /// The most tocilizumab doses in any rolling 24 h (RULES.md B.1 allows 3).
    pub tocilizumab_max_24h: usize,
    /// Corticosteroids.
    pub steroids: Steroids,
    /// Anakinra doses.
    pub anakinra: Vec<Dose>,
    /// Siltuximab doses.
    pub siltuximab: Vec<Dose>,
    /// Hours with at least one vasopressor running (union of exposures).
    pub vasopressor_hours: f64,
    /// Hours of oxygen support by device class, in a fixed order (see
    /// [`OXYGEN_CLASSES`]); zero-hour classes included.
    pub oxygen_hours: Vec<(&'static str, f64)>,
    /// Each vasopressor exposure within the course (start, end, drug key), for charts.
    pub vasopressor_spans: Vec<(Timestamp, Timestamp, &'static str)>,
    /// Each oxygen-support period (start, end, device class), for charts.
    pub oxygen_spans: Vec<(Timestamp, Timestamp, &'static str)>,
}

impl Treatment {
    /// Tocilizumab doses within an episode (onset to resolution or `until`).
    pub fn tocilizumab_in(&self, e: &Episode, until: Timestamp) -> usize {
        self.tocilizumab
            .iter()
            .filter(|d| d.at >= e.onset && d.at <= e.end_or(until))
            .count()
    }
}

/// Oxygen device classes, in report order.
pub const OXYGEN_CLASSES: [&str; 4] = [
    "low-flow (nasal cannula, blow-by)",
    "high-flow nasal cannula or mask",
    "non-invasive positive pressure (CPAP, BiPAP)",
    "mechanical ventilation",
];

fn oxygen_class(d: OxygenDevice) -> Option<usize> {
    match d {
        OxygenDevice::RoomAir => None,
        OxygenDevice::BlowBy | OxygenDevice::NasalCannula => Some(0),
        OxygenDevice::HighFlowNasalCannula
        | OxygenDevice::FaceMask
        | OxygenDevice::NonRebreather
        | OxygenDevice::VenturiMask => Some(1),
        OxygenDevice::Cpap | OxygenDevice::Bipap => Some(2),
        OxygenDevice::MechanicalVentilation => Some(3),
    }
}

/// The whole course.
#[derive(Clone, Debug, PartialEq)]
pub struct Course {
    /// The CAR-T infusion (day 0).
    pub infusion: Timestamp,
    /// The first instant of the series (the infusion, or `until - max_days`).
    pub start: Timestamp,
    /// The last instant of the series.
    pub until: Timestamp,
    /// The earliest vital-sign or neurological observation sent; `None` when none was.
    pub data_from: Option<Timestamp>,
    /// The day the data begins when earlier data was not sent: observations start more
    /// than one grading window after the series start (a prefetch holds recent data
    /// only), or there are none (the day of `until`). `None` when the data covers the
    /// course from its start.
    pub data_gap_day: Option<i64>,
    /// The grades at every instant, ascending.
    pub series: Vec<CoursePoint>,
    /// CRS.
    pub crs: SyndromeCourse,
    /// ICANS.
    pub icans: SyndromeCourse,
    /// Treatment.
    pub treatment: Treatment,
}

impl Course {
    /// One syndrome.
    pub fn syndrome(&self, s: Syndrome) -> &SyndromeCourse {
        match s {
            Syndrome::Crs => &self.crs,
            Syndrome::Icans => &self.icans,
        }
    }

    /// Whole days since the infusion at `t`.
    pub fn day(&self, t: Timestamp) -> i64 {
        t.days_since(self.infusion)
    }

    /// The latest point (at `until`).
    pub fn now(&self) -> Option<&CoursePoint> {
        self.series.last()
    }
}

/// The facts known at `t`: every fact observed at or before `t`; exposures and
/// ventilation started by `t`, with an end after `t` not yet known (still running).
/// The infusion counts once it has happened.
pub fn facts_known_at(facts: &PatientFacts, t: Timestamp) -> PatientFacts {
    fn upto<T: Clone>(v: &[Fact<T>], t: Timestamp) -> Vec<Fact<T>> {
        v.iter().filter(|f| f.at <= t).cloned().collect()
    }
    // Every field is listed (no `..`): a new kind of fact must decide how it is known.
    let PatientFacts {
        age_years,
        weights,
        infusion,
        temperatures,
        systolic,
        hypotension_asserted,
        vasoactive,
        oxygen_devices,
        oxygen_flows,
        fio2,
        ventilation,
        neuro_scores,
        consciousness,
        seizures,
        motor,
        cerebral_edema,
        labs,
        findings,
        medications_given,
        findings_absent,
        recorded_crs_grades,
        sedatives,
    } = facts;
    PatientFacts {
        age_years: *age_years,
        weights: upto(weights, t),
        infusion: infusion.clone().filter(|i| i.at <= t),
        temperatures: upto(temperatures, t),
        systolic: upto(systolic, t),
        hypotension_asserted: upto(hypotension_asserted, t),
        vasoactive: vasoactive
            .iter()
            .filter(|e| e.start <= t)
            .map(|e| clip_exposure(e, t))
            .collect(),
        oxygen_devices: upto(oxygen_devices, t),
        oxygen_flows: upto(oxygen_flows, t),
        fio2: upto(fio2, t),
        ventilation: ventilation
            .iter()
            .filter(|v| v.start <= t)
            .map(|v| clip_ventilation(v, t))
            .collect(),
        neuro_scores: upto(neuro_scores, t),
        consciousness: upto(consciousness, t),
        seizures: upto(seizures, t),
        motor: upto(motor, t),
        cerebral_edema: upto(cerebral_edema, t),
        labs: upto(labs, t),
        findings: upto(findings, t),
        medications_given: medications_given
            .iter()
            .filter(|m| m.at <= t)
            .cloned()
            .collect(),
        findings_absent: upto(findings_absent, t),
        recorded_crs_grades: upto(recorded_crs_grades, t),
        sedatives: sedatives
            .iter()
            .filter(|e| e.start <= t)
            .map(|e| clip_exposure(e, t))
            .collect(),
    }
}

fn known_end(end: Option<Timestamp>, t: Timestamp) -> Option<Timestamp> {
    end.filter(|e| *e <= t)
}

fn clip_exposure(e: &DrugExposure, t: Timestamp) -> DrugExposure {
    DrugExposure {
        end: known_end(e.end, t),
        ..e.clone()
    }
}

fn clip_ventilation(v: &Ventilation, t: Timestamp) -> Ventilation {
    Ventilation {
        end: known_end(v.end, t),
        ..v.clone()
    }
}

/// The instants the course grades at: the series start, every instant in
/// `(start, until]` at which a fact appears, ends, or leaves the grading window, every
/// `step_hours` from the start, and `until`.
pub fn instants(
    facts: &PatientFacts,
    start: Timestamp,
    until: Timestamp,
    policy: &Policy,
    params: &CourseParams,
) -> Vec<Timestamp> {
    let window_ms = (policy.window_hours * MS_PER_HOUR as f64).round() as i64;
    let mut out = Vec::new();
    let step = ((params.step_hours.max(1.0 / 60.0)) * MS_PER_HOUR as f64).round() as i64;
    let mut t = start.0;
    while t < until.0 {
        out.push(Timestamp(t));
        t += step;
    }
    out.push(until);
    facts.each_observation_time(|at| {
        out.push(at);
        out.push(Timestamp(at.0 + window_ms));
    });
    facts.each_treatment_time(policy.pressor_grace_ms(), |at| out.push(at));
    out.retain(|t| *t >= start && *t <= until);
    out.sort_unstable();
    out.dedup();
    out
}

fn series_start(infusion: Timestamp, until: Timestamp, params: &CourseParams) -> Timestamp {
    Timestamp(infusion.0.max(until.0 - params.max_days * 24 * MS_PER_HOUR))
}

fn point(a: Assessment) -> CoursePoint {
    fn sources(e: &[Evidence]) -> Vec<Source> {
        let mut out: Vec<Source> = Vec::with_capacity(e.len());
        for x in e {
            if !out.contains(&x.source) {
                out.push(x.source.clone());
            }
        }
        out
    }
    let crs = match a.crs.grade {
        None => GradeState::NotAssessable,
        Some(g) if a.crs.lower_bound => GradeState::AtLeast(g),
        Some(g) => GradeState::Graded(g),
    };
    let icans = match a.icans.grade {
        None => GradeState::NotAssessable,
        Some(g) => GradeState::Graded(g),
    };
    let at = a.at;
    let (crs_findings, icans_findings) = a.into_grade_evidence();
    CoursePoint {
        at,
        crs,
        icans,
        crs_evidence: sources(&crs_findings),
        icans_evidence: sources(&icans_findings),
        crs_findings,
        icans_findings,
    }
}

/// The naive series: at every instant, every fact filtered again by time and graded
/// from scratch. The baseline of the benchmark and the oracle of the tests.
pub fn series_naive(
    facts: &PatientFacts,
    infusion: Timestamp,
    until: Timestamp,
    policy: &Policy,
    params: &CourseParams,
) -> Vec<CoursePoint> {
    let start = series_start(infusion, until, params);
    instants(facts, start, until, policy, params)
        .into_iter()
        .map(|t| point(assess_for_series(&facts_known_at(facts, t), &[], t, policy)))
        .collect()
}

/// A sorted copy of one kind of observation and how far it has been consumed.
struct Slide<T> {
    sorted: Vec<Fact<T>>,
    next: usize,
}

impl<T: Clone> Slide<T> {
    fn new(v: &[Fact<T>]) -> Self {
        let mut sorted = v.to_vec();
        sorted.sort_by_key(|f| f.at);
        Slide { sorted, next: 0 }
    }

    /// Moves the facts observed by `t` into `work`; drops from `work` (past its first
    /// `kept` entries) the facts observed at or before `horizon`, except those `keep`
    /// retains, which join the kept prefix. `horizon: None` keeps everything.
    fn advance(
        &mut self,
        work: &mut Vec<Fact<T>>,
        kept: &mut usize,
        t: Timestamp,
        horizon: Option<Timestamp>,
        keep: impl Fn(&Fact<T>) -> bool,
    ) {
        while let Some(f) = self.sorted.get(self.next).filter(|f| f.at <= t) {
            work.push(f.clone());
            self.next += 1;
        }
        if let Some(h) = horizon {
            let mut end = *kept;
            while work.get(end).is_some_and(|f| f.at <= h) {
                end += 1;
            }
            if end > *kept {
                let retained: Vec<Fact<T>> = work.drain(*kept..end).filter(|f| keep(f)).collect();
                let n = retained.len();
                work.splice(*kept..*kept, retained);
                *kept += n;
            }
        }
    }
}

/// The series by a sliding working set: facts are sorted once; at each instant the
/// engine sees the observations of the last `max(window, 72 h)` plus every documented
/// fever since the infusion (RULES.md §7 S3: a fever before a later treatment dose opens
/// the waiver), and the full history of weights, labs, findings, medications and
/// exposures. The property tests hold it equal to [`series_naive`].
pub fn series(
    facts: &PatientFacts,
    infusion: Timestamp,
    until: Timestamp,
    policy: &Policy,
    params: &CourseParams,
) -> Vec<CoursePoint> {
    let start = series_start(infusion, until, params);
    let ts = instants(facts, start, until, policy, params);
    let lookback = policy.window_hours.max(LAB_WINDOW_HOURS);

    let PatientFacts {
        age_years,
        weights,
        infusion: infusion_fact,
        temperatures,
        systolic,
        hypotension_asserted,
        vasoactive,
        oxygen_devices,
        oxygen_flows,
        fio2,
        ventilation,
        neuro_scores,
        consciousness,
        seizures,
        motor,
        cerebral_edema,
        labs,
        findings,
        medications_given,
        findings_absent,
        recorded_crs_grades,
        sedatives,
    } = facts;

    let mut s_weights = Slide::new(weights);
    let mut s_temps = Slide::new(temperatures);
    let mut s_sbp = Slide::new(systolic);
    let mut s_hypo = Slide::new(hypotension_asserted);
    let mut s_dev = Slide::new(oxygen_devices);
    let mut s_flow = Slide::new(oxygen_flows);
    let mut s_fio2 = Slide::new(fio2);
    let mut s_neuro = Slide::new(neuro_scores);
    let mut s_loc = Slide::new(consciousness);
    let mut s_seiz = Slide::new(seizures);
    let mut s_motor = Slide::new(motor);
    let mut s_edema = Slide::new(cerebral_edema);
    let mut s_labs = Slide::new(labs);
    let mut s_find = Slide::new(findings);
    let mut s_absent = Slide::new(findings_absent);
    let mut s_recorded = Slide::new(recorded_crs_grades);
    let mut sedative_list = sedatives.clone();
    sedative_list.sort_by_key(|e| e.start);
    let mut meds = medications_given.clone();
    meds.sort_by_key(|m| m.at);
    let mut exposures = vasoactive.clone();
    exposures.sort_by_key(|e| e.start);
    let mut vents = ventilation.clone();
    vents.sort_by_key(|v| v.start);
    let mut next_med = 0;

    let mut w = PatientFacts {
        age_years: *age_years,
        ..PatientFacts::default()
    };
    // Kept prefixes (facts that stay past the lookback).
    let mut k = [0usize; 16];
    let mut k_absent = 0usize;
    let mut k_recorded = 0usize;
    let fever = policy.fever_celsius;
    let after_infusion = infusion_fact.as_ref().map(|i| i.at);
    let keep_fever = |f: &Fact<super::facts::Celsius>| {
        f.value.value() >= fever && after_infusion.is_none_or(|i| f.at >= i)
    };

    let mut out = Vec::with_capacity(ts.len());
    for t in ts {
        let h = Some(t.minus_hours(lookback));
        w.infusion = infusion_fact.clone().filter(|i| i.at <= t);
        s_weights.advance(&mut w.weights, &mut k[0], t, None, never);
        s_temps.advance(&mut w.temperatures, &mut k[1], t, h, keep_fever);
        s_sbp.advance(&mut w.systolic, &mut k[2], t, h, never);
        s_hypo.advance(&mut w.hypotension_asserted, &mut k[3], t, h, never);
        s_dev.advance(&mut w.oxygen_devices, &mut k[4], t, h, never);
        s_flow.advance(&mut w.oxygen_flows, &mut k[5], t, h, never);
        s_fio2.advance(&mut w.fio2, &mut k[6], t, h, never);
        s_neuro.advance(&mut w.neuro_scores, &mut k[7], t, h, never);
        s_loc.advance(&mut w.consciousness, &mut k[8], t, h, never);
        s_seiz.advance(&mut w.seizures, &mut k[9], t, h, never);
        s_motor.advance(&mut w.motor, &mut k[10], t, h, never);
        s_edema.advance(&mut w.cerebral_edema, &mut k[11], t, h, never);
        s_labs.advance(&mut w.labs, &mut k[12], t, None, never);
        s_find.advance(&mut w.findings, &mut k[13], t, None, never);
        // Full history: absent findings settle HLH criteria; a recorded CRS grade since
        // the infusion documents CRS for the fever waiver (RULES.md §7 S3, S10).
        s_absent.advance(&mut w.findings_absent, &mut k_absent, t, None, never);
        s_recorded.advance(&mut w.recorded_crs_grades, &mut k_recorded, t, None, never);
        while let Some(m) = meds.get(next_med).filter(|m| m.at <= t) {
            w.medications_given.push(m.clone());
            next_med += 1;
        }
        sync_started(&mut w.vasoactive, &exposures, t, |e| e.start, clip_exposure);
        sync_started(&mut w.ventilation, &vents, t, |v| v.start, clip_ventilation);
        sync_started(
            &mut w.sedatives,
            &sedative_list,
            t,
            |e| e.start,
            clip_exposure,
        );
        out.push(point(assess_for_series(&w, &[], t, policy)));
    }
    out
}

fn never<T>(_: &Fact<T>) -> bool {
    false
}

/// Keeps `work` equal to the entries of `sorted` started by `t`, clipped to `t`.
fn sync_started<T: PartialEq>(
    work: &mut Vec<T>,
    sorted: &[T],
    t: Timestamp,
    start: impl Fn(&T) -> Timestamp,
    clip: impl Fn(&T, Timestamp) -> T,
) {
    for (i, e) in sorted.iter().enumerate() {
        if start(e) > t {
            break;
        }
        let c = clip(e, t);
        match work.get_mut(i) {
            Some(slot) => {
                if *slot != c {
                    *slot = c;
                }
            }
            None => work.push(c),
        }
    }
}

/// The course from `infusion` to `until` (RULES.md A.1, A.2 at every instant; episodes
/// and treatment by issue 12).
pub fn course(
    facts: &PatientFacts,
    infusion: Timestamp,
    until: Timestamp,
    policy: &Policy,
    params: &CourseParams,
) -> Course {
    let series = series(facts, infusion, until, policy, params);
    course_from_series(facts, infusion, until, series, policy, params)
}

/// As [`course`], grading every instant from scratch (the benchmark baseline).
pub fn course_naive(
    facts: &PatientFacts,
    infusion: Timestamp,
    until: Timestamp,
    policy: &Policy,
    params: &CourseParams,
) -> Course {
    let series = series_naive(facts, infusion, until, policy, params);
    course_from_series(facts, infusion, until, series, policy, params)
}

/// Reads episodes, time at grade and the treatment summary from a series.
pub fn course_from_series(
    facts: &PatientFacts,
    infusion: Timestamp,
    until: Timestamp,
    series: Vec<CoursePoint>,
    policy: &Policy,
    params: &CourseParams,
) -> Course {
    let start = series.first().map_or(until, |p| p.at);
    let crs = syndrome_course(Syndrome::Crs, &series, until, params);
    let icans = syndrome_course(Syndrome::Icans, &series, until, params);
    let treatment = treatment(facts, infusion.max(start), until, policy);
    let mut data_from: Option<Timestamp> = None;
    {
        let mut note = |t: Timestamp| {
            if t <= until {
                data_from = Some(data_from.map_or(t, |d| d.min(t)));
            }
        };
        for f in &facts.temperatures {
            note(f.at);
        }
        for f in &facts.systolic {
            note(f.at);
        }
        for f in &facts.oxygen_devices {
            note(f.at);
        }
        for f in &facts.neuro_scores {
            note(f.at);
        }
        for f in &facts.consciousness {
            note(f.at);
        }
    }
    let data_gap_day = match data_from {
        Some(from) if from.hours_since(start).0 > policy.window_hours => {
            Some(from.days_since(infusion))
        }
        None => Some(until.days_since(infusion)),
        _ => None,
    };
    Course {
        infusion,
        start,
        until,
        data_from,
        data_gap_day,
        series,
        crs,
        icans,
        treatment,
    }
}

/// Episodes per syndrome (issue 12): onset = the first instant with a grade ≥ 1 (a
/// lower bound ≥ 1 counts); resolution = the start of the first run of at least
/// `resolution_hours` graded exactly 0; not-assessable and lower-bound-0 instants break
/// a run and never count as 0. A run still short of the resolution hours at `until`
/// leaves the episode ongoing.
pub fn syndrome_course(
    syndrome: Syndrome,
    series: &[CoursePoint],
    until: Timestamp,
    params: &CourseParams,
) -> SyndromeCourse {
    let resolution_ms = (params.resolution_hours * MS_PER_HOUR as f64).round() as i64;
    let mut out = SyndromeCourse {
        syndrome,
        episodes: Vec::new(),
        hours_at_grade: [0.0; 5],
        hours_at_least: [0.0; 5],
        not_assessable: Vec::new(),
    };
    let mut current: Option<Episode> = None;
    let mut zero_run: Option<Timestamp> = None;
    let mut seen_zero = false;
    let mut na_start: Option<Timestamp> = None;
    for (i, p) in series.iter().enumerate() {
        let st = p.state(syndrome);
        let step_end = series.get(i + 1).map_or(until.max(p.at), |n| n.at);
        let hours = (step_end.0 - p.at.0) as f64 / MS_PER_HOUR as f64;
        match st {
            GradeState::Graded(g) => out.hours_at_grade[usize::from(g.min(4))] += hours,
            GradeState::AtLeast(g) => out.hours_at_least[usize::from(g.min(4))] += hours,
            GradeState::NotAssessable => {}
        }
        match (st, na_start) {
            (GradeState::NotAssessable, None) => na_start = Some(p.at),
            (GradeState::NotAssessable, Some(_)) => {}
            (_, Some(s)) => {
                out.not_assessable.push(Stretch {
                    start: s,
                    end: p.at,
                });
                na_start = None;
            }
            (_, None) => {}
        }

        match current.as_mut() {
            None => {
                if let Some(g) = st.floor().filter(|g| *g >= 1) {
                    current = Some(Episode {
                        syndrome,
                        onset: p.at,
                        onset_censored: !seen_zero,
                        worst: g,
                        worst_lower_bound: matches!(st, GradeState::AtLeast(_)),
                        worst_at: p.at,
                        worst_evidence: p.evidence(syndrome).to_vec(),
                        resolution: None,
                        last: st,
                    });
                    zero_run = None;
                } else if st.is_zero() {
                    seen_zero = true;
                }
            }
            Some(e) => {
                e.last = st;
                if st.is_zero() {
                    let run_start = *zero_run.get_or_insert(p.at);
                    if step_end.0 - run_start.0 >= resolution_ms {
                        e.resolution = Some(run_start);
                        e.last = GradeState::Graded(0);
                        out.episodes.extend(current.take());
                        zero_run = None;
                        seen_zero = true;
                    }
                } else {
                    zero_run = None;
                    if let Some(g) = st.floor() {
                        let exact = matches!(st, GradeState::Graded(_));
                        if g > e.worst {
                            e.worst = g;
                            e.worst_lower_bound = !exact;
                            e.worst_at = p.at;
                            e.worst_evidence = p.evidence(syndrome).to_vec();
                        } else if g == e.worst && exact && e.worst_lower_bound {
                            e.worst_lower_bound = false;
                        }
                    }
                }
            }
        }
    }
    if let Some(s) = na_start {
        out.not_assessable.push(Stretch {
            start: s,
            end: until.max(s),
        });
    }
    out.episodes.extend(current);
    out
}

fn doses(facts: &PatientFacts, from: Timestamp, until: Timestamp, drug: Drug) -> Vec<Dose> {
    let mut v: Vec<Dose> = facts
        .medications_given
        .iter()
        .filter(|m| m.drug == drug && m.at >= from && m.at <= until)
        .map(|m| Dose {
            drug: m.drug,
            at: m.at,
            mg: m.dose_mg,
            source: m.source.clone(),
        })
        .collect();
    v.sort_by_key(|d| d.at);
    v
}

/// The treatment summary from `from` (the infusion or the series start) to `until`.
pub fn treatment(
    facts: &PatientFacts,
    from: Timestamp,
    until: Timestamp,
    policy: &Policy,
) -> Treatment {
    let tocilizumab = doses(facts, from, until, Drug::Tocilizumab);
    // RULES.md B.1: doses in any rolling 24 h.
    let tocilizumab_max_24h = tocilizumab
        .iter()
        .map(|d| {
            tocilizumab
                .iter()
                .filter(|x| x.at >= d.at && x.at.0 - d.at.0 < 24 * MS_PER_HOUR)
                .count()
        })
        .max()
        .unwrap_or(0);

    let mut steroid_doses: Vec<Dose> = [
        Drug::Dexamethasone,
        Drug::Methylprednisolone,
        Drug::Hydrocortisone,
        Drug::Prednisone,
    ]
    .into_iter()
    .flat_map(|d| doses(facts, from, until, d))
    .collect();
    steroid_doses.sort_by_key(|d| d.at);
    let mut per_day: std::collections::BTreeMap<i64, f64> = std::collections::BTreeMap::new();
    let mut steroids = Steroids::default();
    for d in &steroid_doses {
        let day = d.at.days_since(from);
        let eq = d.mg.zip(dexamethasone_factor(d.drug)).map(|(mg, f)| mg * f);
        *per_day.entry(day).or_default() += eq.unwrap_or(0.0);
        match eq {
            Some(x) => steroids.dexamethasone_equivalent_mg += x,
            None => steroids.doses_without_mg += 1,
        }
    }
    steroids.days_on_steroids = per_day.len();
    let (mut run, mut prev) = (0usize, None::<i64>);
    for (day, mg) in &per_day {
        if *mg + 1e-9 >= DEXAMETHASONE_Q6H_DAILY_MG {
            run = if prev == Some(day - 1) { run + 1 } else { 1 };
            prev = Some(*day);
            steroids.high_dose_run_days = steroids.high_dose_run_days.max(run);
        } else {
            prev = None;
        }
    }
    steroids.doses = steroid_doses;

    // Vasopressor hours: the union of the exposures of drugs that count (RULES.md A.1,
    // §6-U3), clipped to the course.
    let counts = |d: Drug| match d.class() {
        DrugClass::Vasopressor => d != Drug::AngiotensinII || policy.angiotensin_ii_is_vasopressor,
        DrugClass::Inotrope => policy.inotropes_are_vasopressors,
        _ => false,
    };
    let vasopressor_spans: Vec<(Timestamp, Timestamp, &'static str)> = facts
        .vasoactive
        .iter()
        .filter(|e| counts(e.drug))
        .map(|e| {
            (
                Timestamp(e.start.0.max(from.0)),
                Timestamp(e.end.unwrap_or(until).0.min(until.0)),
                e.drug.key(),
            )
        })
        .filter(|(a, b, _)| b > a)
        .collect();
    let mut spans: Vec<(i64, i64)> = vasopressor_spans
        .iter()
        .map(|(a, b, _)| (a.0, b.0))
        .collect();
    let vasopressor_hours = union_hours(&mut spans);
    let (oxygen_hours, oxygen_spans) = oxygen_hours(facts, from, until, policy);

    Treatment {
        tocilizumab,
        tocilizumab_max_24h,
        steroids,
        anakinra: doses(facts, from, until, Drug::Anakinra),
        siltuximab: doses(facts, from, until, Drug::Siltuximab),
        vasopressor_hours,
        oxygen_hours,
        vasopressor_spans,
        oxygen_spans,
    }
}

fn union_hours(spans: &mut [(i64, i64)]) -> f64 {
    spans.sort_unstable();
    let mut total = 0i64;
    let mut cur: Option<(i64, i64)> = None;
    for &(a, b) in spans.iter() {
        cur = match cur {
            Some((s, e)) if a <= e => Some((s, e.max(b))),
            Some((s, e)) => {
                total += e - s;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((s, e)) = cur {
        total += e - s;
    }
    total as f64 / MS_PER_HOUR as f64
}

/// Oxygen-support hours by device class: each device record stands until the next
/// record, for at most one grading window (a record older than the window no longer
/// describes the patient); ventilation procedures count over their period (running
/// ones to `until`). Overlaps within a class are counted once.
fn oxygen_hours(
    facts: &PatientFacts,
    from: Timestamp,
    until: Timestamp,
    policy: &Policy,
) -> OxygenSummary {
    let window_ms = (policy.window_hours * MS_PER_HOUR as f64).round() as i64;
    let mut devices: Vec<&Fact<OxygenDevice>> = facts
        .oxygen_devices
        .iter()
        .filter(|d| d.at <= until)
        .collect();
    devices.sort_by_key(|d| d.at);
    let mut spans: [Vec<(i64, i64)>; 4] = Default::default();
    for (i, d) in devices.iter().enumerate() {
        let Some(class) = oxygen_class(d.value) else {
            continue;
        };
        let next = devices.get(i + 1).map_or(until.0, |n| n.at.0);
        let end = next.min(d.at.0 + window_ms).min(until.0);
        let start = d.at.0.max(from.0);
        if end > start {
            spans[class].push((start, end));
        }
    }
    for v in &facts.ventilation {
        let class = match v.mode {
            VentilationMode::Cpap | VentilationMode::Bipap => 2,
            VentilationMode::Mechanical => 3,
        };
        let start = v.start.0.max(from.0);
        let end = v.end.unwrap_or(until).0.min(until.0);
        if end > start {
            spans[class].push((start, end));
        }
    }
    let listed = spans
        .iter()
        .zip(OXYGEN_CLASSES)
        .flat_map(|(s, name)| {
            s.iter()
                .map(move |(a, b)| (Timestamp(*a), Timestamp(*b), name))
        })
        .collect();
    let hours = OXYGEN_CLASSES
        .iter()
        .zip(spans.iter_mut())
        .map(|(name, s)| (*name, union_hours(s)))
        .collect();
    (hours, listed)
}

type OxygenSummary = (
    Vec<(&'static str, f64)>,
    Vec<(Timestamp, Timestamp, &'static str)>,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::facts::{Celsius, MedicationGiven};
    use crate::domain::testkit::*;

    fn p(at: Timestamp, crs: GradeState) -> CoursePoint {
        CoursePoint {
            at,
            crs,
            icans: GradeState::Graded(0),
            crs_evidence: Vec::new(),
            icans_evidence: Vec::new(),
            crs_findings: Vec::new(),
            icans_findings: Vec::new(),
        }
    }

    fn hourly(states: &[GradeState]) -> Vec<CoursePoint> {
        states
            .iter()
            .enumerate()
            .map(|(i, s)| p(NOW.plus_hours(i as f64), *s))
            .collect()
    }

    use GradeState::{AtLeast, Graded, NotAssessable};

    #[test]
    fn an_episode_resolves_at_the_start_of_24_hours_at_grade_0() {
        let mut s = vec![Graded(0), Graded(2), Graded(1)];
        s.extend(std::iter::repeat_n(Graded(0), 25));
        let series = hourly(&s);
        let until = series.last().map(|p| p.at).unwrap_or(NOW);
        let c = syndrome_course(Syndrome::Crs, &series, until, &CourseParams::default());
        assert_eq!(c.episodes.len(), 1);
        let e = &c.episodes[0];
        assert_eq!(e.onset, NOW.plus_hours(1.0));
        assert_eq!(e.worst, 2);
        assert!(!e.onset_censored);
        assert_eq!(e.resolution, Some(NOW.plus_hours(3.0)));
    }

    #[test]
    fn twenty_three_hours_at_grade_0_leave_the_episode_ongoing() {
        let mut s = vec![Graded(1)];
        s.extend(std::iter::repeat_n(Graded(0), 24));
        // 24 points at 0 starting at +1 h; until = +24 h: the run is 23 h long.
        let series = hourly(&s);
        let until = NOW.plus_hours(24.0);
        let c = syndrome_course(Syndrome::Crs, &series, until, &CourseParams::default());
        assert_eq!(c.episodes[0].resolution, None);
        assert!(c.episodes[0].onset_censored, "no grade 0 before the onset");
    }

    #[test]
    fn a_not_assessable_hour_breaks_the_grade_0_run() {
        let mut s = vec![Graded(0), Graded(3)];
        s.extend(std::iter::repeat_n(Graded(0), 12));
        s.push(NotAssessable);
        s.extend(std::iter::repeat_n(Graded(0), 20));
        let series = hourly(&s);
        let until = series.last().map(|p| p.at).unwrap_or(NOW);
        let c = syndrome_course(Syndrome::Crs, &series, until, &CourseParams::default());
        assert_eq!(c.episodes[0].resolution, None);
        assert_eq!(c.not_assessable.len(), 1);
        assert_eq!(c.not_assessable[0].hours(), 1.0);
        assert_eq!(c.hours_at_grade[0], 1.0 + 12.0 + 19.0);
    }

    #[test]
    fn a_lower_bound_of_0_does_not_count_toward_resolution() {
        let mut s = vec![Graded(0), Graded(2)];
        s.extend(std::iter::repeat_n(AtLeast(0), 30));
        let series = hourly(&s);
        let until = series.last().map(|p| p.at).unwrap_or(NOW);
        let c = syndrome_course(Syndrome::Crs, &series, until, &CourseParams::default());
        assert_eq!(c.episodes[0].resolution, None);
        assert_eq!(c.hours_at_least[0], 29.0);
    }

    #[test]
    fn a_recurrence_after_resolution_is_a_second_episode() {
        let mut s = vec![Graded(0), Graded(1)];
        s.extend(std::iter::repeat_n(Graded(0), 30));
        s.push(Graded(2));
        s.push(Graded(2));
        let series = hourly(&s);
        let until = series.last().map(|p| p.at).unwrap_or(NOW);
        let c = syndrome_course(Syndrome::Crs, &series, until, &CourseParams::default());
        assert_eq!(c.episodes.len(), 2);
        assert_eq!(c.episodes[0].resolution, Some(NOW.plus_hours(2.0)));
        assert_eq!(c.episodes[1].onset, NOW.plus_hours(32.0));
        assert_eq!(c.episodes[1].worst, 2);
        assert!(!c.episodes[1].onset_censored);
    }

    #[test]
    fn an_exposure_ending_after_t_is_still_running_at_t() {
        let mut f = adult();
        running(&mut f, Drug::Norepinephrine, 5.0);
        f.vasoactive[0].end = Some(ago(1.0));
        let known = facts_known_at(&f, ago(3.0));
        assert_eq!(known.vasoactive[0].end, None);
        let known = facts_known_at(&f, ago(0.5));
        assert_eq!(known.vasoactive[0].end, Some(ago(1.0)));
        assert!(facts_known_at(&f, ago(6.0)).vasoactive.is_empty());
    }

    #[test]
    fn steroid_days_at_dexamethasone_40_mg_per_day_equivalent_raise_the_caution_after_3() {
        let mut f = adult();
        let infused = ago(200.0);
        // Four consecutive days of methylprednisolone 2 × 106.7 mg ≈ dex 40.0 mg/day.
        for day in 0..4 {
            for dose in 0..2 {
                f.medications_given.push(MedicationGiven {
                    drug: Drug::Methylprednisolone,
                    at: infused.plus_hours(24.0 * f64::from(day) + 12.0 * f64::from(dose) + 1.0),
                    dose_mg: Some(320.0 / 3.0 / 1.0),
                    source: Source(format!("MedicationAdministration/mp{day}{dose}")),
                });
            }
        }
        let t = treatment(&f, infused, NOW, &Policy::default());
        assert_eq!(t.steroids.days_on_steroids, 4);
        assert_eq!(t.steroids.high_dose_run_days, 4);
        assert!(t.steroids.prolonged_high_dose());
        assert!((t.steroids.dexamethasone_equivalent_mg - 160.0).abs() < 1e-6);
        f.medications_given.pop();
        let t = treatment(&f, infused, NOW, &Policy::default());
        assert_eq!(t.steroids.high_dose_run_days, 3);
        assert!(!t.steroids.prolonged_high_dose());
    }

    #[test]
    fn vasopressor_hours_count_overlapping_drugs_once() {
        let mut f = adult();
        running(&mut f, Drug::Norepinephrine, 10.0);
        running(&mut f, Drug::Vasopressin, 6.0);
        f.vasoactive[0].end = Some(ago(2.0));
        let t = treatment(&f, ago(72.0), NOW, &Policy::default());
        assert!((t.vasopressor_hours - 10.0).abs() < 1e-9);
    }

    #[test]
    fn the_sliding_series_equals_the_naive_series_on_a_febrile_course() {
        let mut f = adult();
        let infused = f.infusion.as_ref().map(|i| i.at).unwrap_or(NOW);
        for h in 0..72 {
            let c = if (20..40).contains(&h) { 39.0 } else { 37.0 };
            f.temperatures.push(Fact::new(
                Celsius::new(c).expect("plausible"),
                infused.plus_hours(f64::from(h)),
                format!("Observation/t{h}"),
            ));
        }
        given(&mut f, Drug::Tocilizumab, 40.0, Some(560.0));
        let policy = Policy::default();
        let params = CourseParams::default();
        assert_eq!(
            series(&f, infused, NOW, &policy, &params),
            series_naive(&f, infused, NOW, &policy, &params)
        );
    }
}
