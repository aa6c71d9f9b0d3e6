//! A generated ICU searchset Bundle (synthetic, deterministic) for the adapter benchmark
//! and tests: hourly vitals, labs, pressor and tocilizumab administrations, and for a
//! CAR-T patient one CAR-T infusion Procedure. Not part of the service.

use serde_json::{Value, json};

const LOINC: &str = "http://loinc.org";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

fn hour(h: usize) -> String {
    // Hour `h` counted back from 2026-11-23T12:00:00Z.
    const BASE: i64 = 1_795_435_200;
    chrono::DateTime::from_timestamp(BASE - h as i64 * 3600, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn observation(id: String, code: &str, display: &str, at: &str, value: Value) -> Value {
    json!({
        "fullUrl": format!("urn:uuid:{id}"),
        "resource": {
            "resourceType": "Observation",
            "id": id,
            "meta": {"lastUpdated": at, "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-vital-signs"]},
            "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p><b>{display}</b> recorded at {at} for the ICU patient (synthetic record)</p></div>")},
            "identifier": [{"system": "https://ehr.example.org/flowsheet-row", "value": format!("{id}-{at}")}],
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
            "subject": {"reference": "Patient/synth"},
            "encounter": {"reference": "Encounter/icu-stay"},
            "effectiveDateTime": at,
            "issued": at,
            "performer": [{"reference": "Practitioner/nurse", "display": "ICU nurse"}],
            "valueQuantity": value,
            "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N", "display": "Normal"}]}],
            "note": [{"text": "Recorded from the bedside monitor, verified by the nurse at the time of charting."}]
        },
        "search": {"mode": "match"}
    })
}

fn quantity(v: f64, unit: &str) -> Value {
    json!({"value": v, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit})
}

/// A searchset Bundle of `entries` resources for one ICU patient; with `car_t` the
/// last entry is a CAR-T infusion Procedure (CPT 38228), else a non-CAR-T procedure.
pub fn icu_bundle(entries: usize, car_t: bool) -> String {
    let mut out = Vec::with_capacity(entries);
    out.push(json!({"resource": {"resourceType": "Patient", "id": "synth", "birthDate": "1970-05-01", "gender": "female"}}));
    let mut i = 0usize;
    while out.len() + 1 < entries {
        let h = i / 8;
        let at = hour(h);
        let e = match i % 8 {
            0 => observation(
                format!("t{i}"),
                "8310-5",
                "Body temperature",
                &at,
                quantity(37.0 + (i % 20) as f64 / 10.0, "Cel"),
            ),
            1 => observation(
                format!("s{i}"),
                "8480-6",
                "Systolic blood pressure",
                &at,
                quantity(100.0 + (i % 15) as f64, "mm[Hg]"),
            ),
            2 => observation(
                format!("f{i}"),
                "3151-8",
                "Inhaled oxygen flow rate",
                &at,
                quantity(2.0, "L/min"),
            ),
            3 => observation(
                format!("c{i}"),
                "1988-5",
                "C reactive protein",
                &at,
                quantity(45.5, "mg/L"),
            ),
            4 => observation(
                format!("r{i}"),
                "9279-1",
                "Respiratory rate",
                &at,
                quantity(18.0, "/min"),
            ),
            5 => observation(
                format!("h{i}"),
                "8867-4",
                "Heart rate",
                &at,
                quantity(96.0, "/min"),
            ),
            6 => json!({"resource": {
                "resourceType": "MedicationAdministration", "id": format!("ma{i}"), "status": "completed",
                "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "161", "display": "acetaminophen"}], "text": "Acetaminophen 650 mg tablet"},
                "subject": {"reference": "Patient/synth"},
                "effectiveDateTime": at,
                "dosage": {"route": {"text": "oral"}, "dose": {"value": 650, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}
            }}),
            _ => json!({"resource": {
                "resourceType": "MedicationAdministration", "id": format!("ne{i}"), "status": "completed",
                "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "7512", "display": "norepinephrine"}]},
                "subject": {"reference": "Patient/synth"},
                "effectivePeriod": {"start": at, "end": at},
                "dosage": {"rateQuantity": {"value": 0.05, "unit": "ug/kg/min"}}
            }}),
        };
        out.push(e);
        i += 1;
    }
    out.push(if car_t {
        json!({"resource": {
            "resourceType": "Procedure", "id": "cart", "status": "completed",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "38228"}], "text": "Yescarta infusion"},
            "subject": {"reference": "Patient/synth"},
            "performedDateTime": hour(24 * 5)
        }})
    } else {
        json!({"resource": {
            "resourceType": "Procedure", "id": "line", "status": "completed",
            "code": {"text": "Central line placement"},
            "subject": {"reference": "Patient/synth"},
            "performedDateTime": hour(24 * 5)
        }})
    });
    json!({"resourceType": "Bundle", "type": "searchset", "total": out.len(), "entry": out})
        .to_string()
}
