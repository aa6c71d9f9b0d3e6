//! The JSON of the toxicity course (issue 12): the card line, the `course` key of the
//! card extension, the CLI JSON with the series, and the FHIR output for registries (a
//! Bundle of one Condition and one worst-grade Observation per episode, and a registry
//! summary).
//!
//! Condition profile: `fhir-profiles/StructureDefinition-cart-toxicity-condition.json`.
//! ICD-10-CM codes (CODES.md §5, verified against the CMS code titles as published by
//! codelle.io and icd10.blog): CRS D89.831-D89.835 by grade 1-5, D89.839 grade
//! unspecified; ICANS G92.01-G92.05 by grade 1-5, G92.00 grade unspecified.

use serde_json::{Value, json};

use crate::domain::{
    CarTProduct, Course, Dose, Drug, Episode, Evidence, GradeState, Syndrome, SyndromeCourse,
    TOCILIZUMAB_MAX_PER_EPISODE, Timestamp,
};
use crate::protocol::cards::grade_observation;
use crate::protocol::extension::{format_time, number};

/// The ICD-10-CM system URI.
pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";

/// The profile of the registry Condition.
pub const CONDITION_PROFILE: &str =
    "https://w3id.org/crs-cds/fhir/StructureDefinition/cart-toxicity-condition";

/// The ICD-10-CM code and title for an episode: by worst grade, or "grade unspecified"
/// when the worst grade is only a lower bound (a domain could not be assessed: coding
/// the floor would under-report).
pub fn icd10(syndrome: Syndrome, worst: Option<u8>) -> (&'static str, &'static str) {
    match (syndrome, worst) {
        (Syndrome::Crs, Some(1)) => ("D89.831", "Cytokine release syndrome, grade 1"),
        (Syndrome::Crs, Some(2)) => ("D89.832", "Cytokine release syndrome, grade 2"),
        (Syndrome::Crs, Some(3)) => ("D89.833", "Cytokine release syndrome, grade 3"),
        (Syndrome::Crs, Some(4)) => ("D89.834", "Cytokine release syndrome, grade 4"),
        (Syndrome::Crs, Some(5)) => ("D89.835", "Cytokine release syndrome, grade 5"),
        (Syndrome::Crs, _) => ("D89.839", "Cytokine release syndrome, grade unspecified"),
        (Syndrome::Icans, Some(1)) => (
            "G92.01",
            "Immune effector cell-associated neurotoxicity syndrome, grade 1",
        ),
        (Syndrome::Icans, Some(2)) => (
            "G92.02",
            "Immune effector cell-associated neurotoxicity syndrome, grade 2",
        ),
        (Syndrome::Icans, Some(3)) => (
            "G92.03",
            "Immune effector cell-associated neurotoxicity syndrome, grade 3",
        ),
        (Syndrome::Icans, Some(4)) => (
            "G92.04",
            "Immune effector cell-associated neurotoxicity syndrome, grade 4",
        ),
        (Syndrome::Icans, Some(5)) => (
            "G92.05",
            "Immune effector cell-associated neurotoxicity syndrome, grade 5",
        ),
        (Syndrome::Icans, _) => (
            "G92.00",
            "Immune effector cell-associated neurotoxicity syndrome, grade unspecified",
        ),
    }
}

/// Every code [`icd10`] may emit (the allowed set of the Condition profile).
pub const ICD10_CODES: [&str; 12] = [
    "D89.831", "D89.832", "D89.833", "D89.834", "D89.835", "D89.839", "G92.00", "G92.01", "G92.02",
    "G92.03", "G92.04", "G92.05",
];

fn grade_json(s: GradeState) -> Value {
    match s {
        GradeState::Graded(g) | GradeState::AtLeast(g) => json!(g),
        GradeState::NotAssessable => Value::Null,
    }
}

fn grade_words(s: GradeState) -> String {
    match s {
        GradeState::Graded(g) => g.to_string(),
        GradeState::AtLeast(g) => format!("≥ {g}"),
        GradeState::NotAssessable => "not assessable".into(),
    }
}

fn hours(v: f64) -> Value {
    number((v * 10.0).round() / 10.0)
}

fn clock(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t.millis())
        .map(|d| d.format("%H:%M UTC").to_string())
        .unwrap_or_default()
}

fn date(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t.millis())
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn episode_json(c: &Course, e: &Episode) -> Value {
    json!({
        "syndrome": e.syndrome.name(),
        "onset": format_time(e.onset),
        "onsetDay": c.day(e.onset),
        "onsetCensored": e.onset_censored,
        "worstGrade": e.worst,
        "worstGradeLowerBound": e.worst_lower_bound,
        "worstAt": format_time(e.worst_at),
        "worstDay": c.day(e.worst_at),
        "resolution": e.resolution.map(format_time),
        "ongoing": e.resolution.is_none(),
        "tocilizumabDoses": (e.syndrome == Syndrome::Crs).then(|| c.treatment.tocilizumab_in(e, c.until)),
        "evidence": e.worst_evidence.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
    })
}

fn dose_json(d: &Dose) -> Value {
    json!({
        "drug": d.drug.key(),
        "time": format_time(d.at),
        "mg": d.mg.map(number),
        "reference": d.source.0,
    })
}

fn treatment_json(c: &Course, with_doses: bool) -> Value {
    let t = &c.treatment;
    let s = &t.steroids;
    let mut v = json!({
        "tocilizumabDoses": t.tocilizumab.len(),
        "tocilizumabMax24h": t.tocilizumab_max_24h,
        "steroidDoses": s.doses.len(),
        "dexamethasoneEquivalentMg": number((s.dexamethasone_equivalent_mg * 10.0).round() / 10.0),
        "steroidDosesWithoutMg": s.doses_without_mg,
        "steroidDays": s.days_on_steroids,
        "highDoseSteroidDays": s.high_dose_run_days,
        "prolongedHighDoseSteroids": s.prolonged_high_dose(),
        "anakinraDoses": t.anakinra.len(),
        "siltuximabDoses": t.siltuximab.len(),
        "vasopressorHours": hours(t.vasopressor_hours),
        "oxygenHours": t.oxygen_hours.iter().map(|(k, h)| json!({"deviceClass": k, "hours": hours(*h)})).collect::<Vec<_>>(),
    });
    if with_doses {
        v["doses"] = t
            .tocilizumab
            .iter()
            .chain(&s.doses)
            .chain(&t.anakinra)
            .chain(&t.siltuximab)
            .map(dose_json)
            .collect();
    }
    v
}

fn syndrome_json(c: &Course, s: &SyndromeCourse) -> Value {
    json!({
        "episodes": s.episodes.iter().map(|e| episode_json(c, e)).collect::<Vec<_>>(),
        "hoursAtGrade": s.hours_at_grade.iter().map(|h| hours(*h)).collect::<Vec<_>>(),
        "hoursAtLeastGrade": s.hours_at_least.iter().map(|h| hours(*h)).collect::<Vec<_>>(),
        "notAssessableHours": hours(s.not_assessable_hours()),
        "notAssessable": s.not_assessable.iter().map(|n| json!({"start": format_time(n.start), "end": format_time(n.end)})).collect::<Vec<_>>(),
    })
}

/// The `course` key of the grading card's extension: episodes and treatment counts
/// (the full series only in the CLI JSON).
pub fn course_extension(c: &Course) -> Value {
    json!({
        "from": format_time(c.start),
        "until": format_time(c.until),
        "dataFrom": c.data_from.map(format_time),
        "earlierDataNotSent": c.data_gap_day.is_some(),
        "episodes": c.crs.episodes.iter().chain(&c.icans.episodes).map(|e| episode_json(c, e)).collect::<Vec<_>>(),
        "notAssessableHours": {
            "crs": hours(c.crs.not_assessable_hours()),
            "icans": hours(c.icans.not_assessable_hours()),
        },
        "treatment": treatment_json(c, false),
    })
}

/// The whole course as JSON, with the series (CLI `course --json`).
pub fn course_json(c: &Course, patient_id: &str, product: Option<CarTProduct>) -> Value {
    json!({
        "infusion": format_time(c.infusion),
        "from": format_time(c.start),
        "until": format_time(c.until),
        "dataFrom": c.data_from.map(format_time),
        "earlierDataNotSent": c.data_gap_day.is_some(),
        "line": course_line(c),
        "crs": syndrome_json(c, &c.crs),
        "icans": syndrome_json(c, &c.icans),
        "treatment": treatment_json(c, true),
        "registry": registry_summary(c, patient_id, product),
        "series": c.series.iter().map(|p| json!({
            "time": format_time(p.at),
            "dayFraction": number((p.at.hours_since(c.infusion).0 / 24.0 * 1000.0).round() / 1000.0),
            "crs": grade_json(p.crs),
            "crsLowerBound": matches!(p.crs, GradeState::AtLeast(_)),
            "icans": grade_json(p.icans),
            "crsEvidence": p.crs_evidence.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
            "icansEvidence": p.icans_evidence.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn latest_episode(s: &SyndromeCourse) -> Option<&Episode> {
    s.episodes.last()
}

fn episode_words(c: &Course, e: &Episode, now: GradeState) -> String {
    let name = e.syndrome.name();
    let onset_day = c.day(e.onset);
    let since = if e.onset_censored {
        format!("{name} since day {onset_day} or earlier")
    } else {
        format!("{name} since day {onset_day} (onset {})", clock(e.onset))
    };
    let worst = format!(
        "worst grade {}{} on day {}",
        if e.worst_lower_bound { "≥ " } else { "" },
        e.worst,
        c.day(e.worst_at)
    );
    match e.resolution {
        None => format!("{since}, {worst}, now {}", grade_words(now)),
        Some(r) => format!(
            "{name} day {}-{} resolved, {worst}",
            if e.onset_censored {
                format!("{onset_day} or earlier")
            } else {
                onset_day.to_string()
            },
            c.day(r)
        ),
    }
}

fn drug_words(d: Drug) -> &'static str {
    d.key()
}

/// The card line, e.g. "CRS since day 2 (onset 14:00 UTC), worst grade 3 on day 3, now
/// 2 - tocilizumab 2 of 4 doses, last 9 h ago; dexamethasone since day 3". Says from
/// when when earlier data was not sent; never says "no CRS" over a course that was not
/// assessable.
pub fn course_line(c: &Course) -> Option<String> {
    let now = c.now()?;
    let mut parts: Vec<String> = Vec::new();
    for s in [Syndrome::Crs, Syndrome::Icans] {
        let sc = c.syndrome(s);
        if let Some(e) = latest_episode(sc) {
            parts.push(episode_words(c, e, now.state(s)));
        }
    }
    if parts.is_empty() {
        let unassessed: Vec<&str> = [&c.crs, &c.icans]
            .iter()
            .filter(|s| s.not_assessable_hours() >= 24.0)
            .map(|s| s.syndrome.name())
            .collect();
        parts.push(if unassessed.is_empty() {
            format!("no CRS or ICANS episode since day {}", c.day(c.start))
        } else {
            format!(
                "no CRS or ICANS episode recorded since day {}, but {} not assessable for ≥ 24 h",
                c.day(c.start),
                unassessed.join(" and ")
            )
        });
    }
    let mut line = parts.join("; ");
    let mut treatments: Vec<String> = Vec::new();
    let t = &c.treatment;
    if let Some(last) = t.tocilizumab.last() {
        let episode = latest_episode(&c.crs)
            .filter(|e| e.resolution.is_none())
            .map(|e| t.tocilizumab_in(e, c.until));
        let ago = c.until.hours_since(last.at).0;
        treatments.push(match episode {
            Some(n) => format!(
                "tocilizumab {n} of {TOCILIZUMAB_MAX_PER_EPISODE} doses this episode, last {ago:.0} h ago"
            ),
            None => format!(
                "tocilizumab {} dose{} since day {}, last {ago:.0} h ago",
                t.tocilizumab.len(),
                if t.tocilizumab.len() == 1 { "" } else { "s" },
                c.day(c.start)
            ),
        });
    }
    if let (Some(first), Some(last)) = (t.steroids.doses.first(), t.steroids.doses.last()) {
        let recent = c.until.hours_since(last.at).0 <= 24.0;
        treatments.push(if recent {
            format!("{} since day {}", drug_words(first.drug), c.day(first.at))
        } else {
            format!(
                "{} day {}-{}",
                drug_words(first.drug),
                c.day(first.at),
                c.day(last.at)
            )
        });
        if t.steroids.prolonged_high_dose() {
            treatments.push(format!(
                "{} days at dexamethasone 10 mg q6h-equivalent: prolonged high-dose steroids (antifungal prophylaxis, CMV monitoring, taper; RULES.md B.3, SEED-002)",
                t.steroids.high_dose_run_days
            ));
        }
    }
    for (doses, name) in [(&t.anakinra, "anakinra"), (&t.siltuximab, "siltuximab")] {
        if !doses.is_empty() {
            treatments.push(format!("{name} {} doses", doses.len()));
        }
    }
    if !treatments.is_empty() {
        line.push_str(" - ");
        line.push_str(&treatments.join("; "));
    }
    if let Some(day) = c.data_gap_day {
        line = format!("course from day {day}: earlier data not sent; {line}");
    }
    Some(line)
}

fn occurred(s: &SyndromeCourse) -> &'static str {
    if !s.episodes.is_empty() {
        "yes"
    } else if s.not_assessable_hours() >= 24.0 || s.hours_at_grade[0] == 0.0 {
        // Not assessable for a day or more is not "no toxicity".
        "unknown"
    } else {
        "no"
    }
}

fn registry_syndrome(c: &Course, s: &SyndromeCourse) -> Value {
    let first = s.episodes.first();
    let worst = s
        .episodes
        .iter()
        .max_by_key(|e| (e.worst, !e.worst_lower_bound));
    let last = s.episodes.last();
    json!({
        "occurred": if c.data_gap_day.is_some() && s.episodes.is_empty() { "unknown" } else { occurred(s) },
        "episodes": s.episodes.len(),
        "onsetDate": first.map(|e| date(e.onset)),
        "onsetDay": first.map(|e| c.day(e.onset)),
        "onsetMayBeEarlier": first.map(|e| e.onset_censored),
        "maxGrade": worst.map(|e| e.worst),
        "maxGradeLowerBound": worst.map(|e| e.worst_lower_bound),
        "maxGradeDate": worst.map(|e| date(e.worst_at)),
        "resolutionDate": last.and_then(|e| e.resolution).map(date),
        "ongoing": last.map(|e| e.resolution.is_none()),
        "notAssessableHours": hours(s.not_assessable_hours()),
    })
}

/// The registry summary: the fields a CAR-T registry form asks per toxicity (occurred
/// yes/no/unknown, onset date, maximum grade, resolution date) and the therapies given.
pub fn registry_summary(c: &Course, patient_id: &str, product: Option<CarTProduct>) -> Value {
    let t = &c.treatment;
    json!({
        "patient": format!("Patient/{patient_id}"),
        "infusionDate": date(c.infusion),
        "product": product.map(|p| p.key()),
        "courseFrom": date(c.start),
        "courseUntil": date(c.until),
        "earlierDataNotSent": c.data_gap_day.is_some(),
        "grading": "ASTCT 2019 consensus",
        "crs": registry_syndrome(c, &c.crs),
        "icans": registry_syndrome(c, &c.icans),
        "therapies": {
            "tocilizumab": { "given": !t.tocilizumab.is_empty(), "doses": t.tocilizumab.len() },
            "corticosteroids": {
                "given": !t.steroids.doses.is_empty(),
                "doses": t.steroids.doses.len(),
                "days": t.steroids.days_on_steroids,
                "dexamethasoneEquivalentMg": number((t.steroids.dexamethasone_equivalent_mg * 10.0).round() / 10.0),
            },
            "anakinra": { "given": !t.anakinra.is_empty(), "doses": t.anakinra.len() },
            "siltuximab": { "given": !t.siltuximab.is_empty(), "doses": t.siltuximab.len() },
            "vasopressors": { "given": t.vasopressor_hours > 0.0, "hours": hours(t.vasopressor_hours) },
            "oxygenHours": t.oxygen_hours.iter().map(|(k, h)| json!({"deviceClass": k, "hours": hours(*h)})).collect::<Vec<_>>(),
        },
    })
}

fn condition(e: &Episode, patient_id: &str, observation_url: &str) -> Value {
    let worst = (!e.worst_lower_bound).then_some(e.worst);
    let (code, display) = icd10(e.syndrome, worst);
    let stage_text = format!(
        "ASTCT 2019 grade {}{}",
        if e.worst_lower_bound { "≥ " } else { "" },
        e.worst
    );
    let mut v = json!({
        "resourceType": "Condition",
        "meta": { "profile": [CONDITION_PROFILE] },
        "clinicalStatus": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": if e.resolution.is_some() { "resolved" } else { "active" },
        }] },
        "verificationStatus": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": "provisional",
        }] },
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
            "code": "encounter-diagnosis",
        }] }],
        "code": {
            "coding": [{ "system": ICD10CM, "code": code, "display": display }],
            "text": display,
        },
        "subject": { "reference": format!("Patient/{patient_id}") },
        "onsetDateTime": format_time(e.onset),
        "stage": [{
            "summary": { "text": stage_text },
            "assessment": [{ "reference": observation_url }],
            "type": { "text": "maximum grade, ASTCT 2019 consensus (Lee et al. 2019)" },
        }],
        "note": [{ "text": format!(
            "Computed by crs-cds from the record (provisional, for review){}",
            if e.onset_censored { "; onset may be earlier: no grade-0 data before it" } else { "" }
        ) }],
    });
    if let Some(r) = e.resolution {
        v["abatementDateTime"] = json!(format_time(r));
    }
    if !e.worst_evidence.is_empty() {
        v["evidence"] = json!([{
            "detail": e.worst_evidence.iter().map(|s| json!({ "reference": s.0 })).collect::<Vec<_>>()
        }]);
    }
    v
}

/// The FHIR Bundle for registries: per episode a Condition (ICD-10-CM by worst grade,
/// onset, abatement, stage = worst ASTCT grade referencing the Observation, evidence
/// referencing the source resources) and the worst-grade Observation (the grade
/// profiles, built by `cards::grade_observation`). Entries are linked by `urn:uuid`.
pub fn registry_bundle(c: &Course, patient_id: &str) -> Value {
    let mut entries = Vec::new();
    for e in c.crs.episodes.iter().chain(&c.icans.episodes) {
        let (code, display) = match e.syndrome {
            Syndrome::Crs => ("crs-grade", "CRS grade (ASTCT 2019)"),
            Syndrome::Icans => ("icans-grade", "ICANS grade (ASTCT 2019)"),
        };
        let evidence: Vec<Evidence> = e
            .worst_evidence
            .iter()
            .map(|s| Evidence {
                finding: String::new(),
                source: s.clone(),
                at: e.worst_at,
            })
            .collect();
        let observation = grade_observation(
            code,
            display,
            Some(e.worst),
            "unknown",
            patient_id,
            e.worst_at,
            &evidence,
        );
        let mut observation = observation;
        if e.worst_lower_bound {
            observation["note"] = json!([{ "text": format!(
                "lower bound: at least grade {}; a domain could not be assessed",
                e.worst
            ) }]);
        }
        let obs_url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let cond_url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        entries
            .push(json!({ "fullUrl": cond_url, "resource": condition(e, patient_id, &obs_url) }));
        entries.push(json!({ "fullUrl": obs_url, "resource": observation }));
    }
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": format_time(c.until),
        "entry": entries,
    })
}

/// The grading card's detail with the course line on top (cards.rs calls this).
pub fn with_course_line(course: Option<&Course>, detail: String) -> String {
    match course.and_then(course_line) {
        Some(line) => format!("**Course:** {line}\n\n{detail}"),
        None => detail,
    }
}

/// The card extension with the `course` key added (cards.rs calls this).
pub fn with_course_extension(course: Option<&Course>, mut ext: Value) -> Value {
    if let Some(c) = course {
        ext[crate::protocol::extension::EXTENSION_KEY]["course"] = course_extension(c);
    }
    ext
}

/// The course for the patient-view grading card: from the infusion on record (at most 30
/// days back) to `now`, over the facts the request carried (order hooks get none).
pub fn for_card(
    hook: crate::protocol::discovery::Hook,
    facts: &crate::domain::PatientFacts,
    now: Timestamp,
    policy: &crate::domain::Policy,
) -> Option<Course> {
    if hook != crate::protocol::discovery::Hook::PatientView {
        return None;
    }
    let infused = facts.infusion.as_ref()?.at;
    // The card looks back 30 days at most (the prefetch holds recent data only; a longer
    // course is the CLI's job), which bounds the work per call.
    let params = crate::domain::CourseParams {
        max_days: 30,
        ..crate::domain::CourseParams::default()
    };
    (infused <= now).then(|| crate::domain::course(facts, infused, now, policy, &params))
}
