//! The machine-readable part of every card: `extension: {"org.crs-cds": {...}}`.
//!
//! Shape (a contract other systems and the fixture tests rely on; README "Cards" lists it):
//! `crsGrade` 0-4 or null (not assessable), `crsGradeIsLowerBound`, `icansGrade` 0-4 or
//! null, `flags` (keys in the engine's fixed order), `evidence` `[{finding, reference,
//! time}]`, `missing` `[string]`, `recommendations` `[{text, source}]` (source: the rule
//! tag; rule ids appear here and never in the card text, RULES.md §7 S14), and on order cards
//! `doseCheck` {drug, orderedMg, maxAllowedMg, issues}.

use serde_json::{Value, json};

use crate::domain::{Assessment, DoseCheck, Timestamp};

/// The extension key under `Card.extension`.
pub const EXTENSION_KEY: &str = "org.crs-cds";

/// Formats an instant as an RFC 3339 UTC `dateTime` (FHIR instant form).
pub fn format_time(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t.millis())
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub(crate) fn number(v: f64) -> Value {
    // Whole numbers print without a fraction ("800", not "800.0").
    if v.fract() == 0.0 && v.abs() < 1e15 {
        json!(v as i64)
    } else {
        json!((v * 1000.0).round() / 1000.0)
    }
}

/// The `doseCheck` object of an order card.
pub fn dose_check_json(check: &DoseCheck) -> Value {
    json!({
        "drug": check.drug.key(),
        "orderedMg": check.ordered_mg.map(number),
        "maxAllowedMg": check.max_allowed_mg.map(number),
        "issues": check.issues.iter().map(|i| i.key()).collect::<Vec<_>>(),
    })
}

/// The `org.crs-cds` extension object for an assessment; `dose_check` is set on order
/// cards.
pub fn extension(assessment: &Assessment, dose_check: Option<&DoseCheck>) -> Value {
    let mut v = json!({
        "crsGrade": assessment.crs.grade,
        "crsGradeIsLowerBound": assessment.crs.lower_bound && assessment.crs.grade.is_some(),
        "crsWorst24h": assessment.crs_worst_24h,
        "icansGrade": assessment.icans.grade,
        "icansGradeIsLowerBound": assessment.icans.lower_bound && assessment.icans.grade.is_some(),
        "icansWorst24h": assessment.icans_worst_24h,
        "flags": assessment.flags.iter().map(|f| f.key()).collect::<Vec<_>>(),
        "evidence": assessment.report.evidence.iter().map(|e| json!({
            "finding": e.finding,
            "reference": e.source.0,
            "time": format_time(e.at),
        })).collect::<Vec<_>>(),
        "missing": assessment.report.missing.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        "recommendations": assessment.recommendations.iter().map(|r| json!({
            "text": r.text,
            "source": r.source,
        })).collect::<Vec<_>>(),
    });
    if let Some(check) = dose_check {
        v["doseCheck"] = dose_check_json(check);
    }
    v
}
