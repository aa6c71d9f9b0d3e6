//! The real-world corpus (issue 9): every `tests/realworld/patients/<name>.json` (a
//! trimmed public patient Bundle: Synthea, Inferno's US Core patients; see
//! tests/realworld/README.md) is replayed twice through adapter → domain → protocol:
//! as sent, where it must give no CAR-T infusion (patient-view answers no cards), and
//! with an added CAR-T infusion Procedure (CPT 38228) at `infusionAt`, graded at `at`,
//! whose `org.crs-cds` extension is compared by subset with
//! `tests/realworld/expected/<name>.json` (`crsGrade`, `icansGrade`, `flags`,
//! `missing`). The expected values were derived from RULES.md by
//! tests/realworld/make_corpus.py (`derive`), not taken from the service.
//!
//! Also the triage prefilter's safety property: with the prefilter on or off, the
//! adapter finds the same infusion, over the real documents and generated ones.

use std::path::{Path, PathBuf};

use crs_cds::adapter::{Document, Mapped, Terminology, map_documents_for_patient};
use crs_cds::domain::{Policy, Timestamp, assess};
use crs_cds::protocol::extension;
use proptest::prelude::*;
use serde_json::{Value, json};

const COMPARED: [&str; 4] = ["crsGrade", "icansGrade", "flags", "missing"];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/realworld")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus().join("patients"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_suffix(".json")
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn time(text: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| Timestamp(t.timestamp_millis()))
        .unwrap_or_else(|e| panic!("bad time {text}: {e}"))
}

fn infusion_procedure(patient: &str, at: &str) -> String {
    json!({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
        "resourceType": "Procedure", "id": "realworld-cart-infusion", "status": "completed",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "38228",
            "display": "CAR-T cell administration, autologous"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "performedDateTime": at}}]})
    .to_string()
}

fn map(patient: &str, docs: &[(&str, &str)], now: Timestamp, t: &Terminology) -> Mapped {
    let documents: Vec<Document<'_>> = docs
        .iter()
        .map(|(origin, json)| Document { origin, json })
        .collect();
    map_documents_for_patient(Some(patient), &documents, None, &[], now, t, 24.0)
}

fn check(name: &str) -> Result<(), String> {
    let patient_json = read(&corpus().join("patients").join(format!("{name}.json")));
    let expected: Value = serde_json::from_str(&read(
        &corpus().join("expected").join(format!("{name}.json")),
    ))
    .map_err(|e| format!("expected file: {e}"))?;
    let patient = expected["patientId"].as_str().ok_or("no patientId")?;
    let t = Terminology::embedded();
    let now = expected["at"]
        .as_str()
        .map(time)
        .unwrap_or(Timestamp(1_795_435_200_000));

    let plain = map(patient, &[("everything", &patient_json)], now, &t);
    if plain.has_infusion() {
        return Err("a CAR-T infusion found in a patient without one".into());
    }
    let Some(infusion_at) = expected["infusionAt"].as_str() else {
        return Ok(());
    };
    let infusion = infusion_procedure(patient, infusion_at);
    let mapped = map(
        patient,
        &[("everything", &patient_json), ("procedures", &infusion)],
        now,
        &t,
    );
    if !mapped.has_infusion() {
        return Err(format!(
            "the added infusion was not found: {:?}",
            mapped.issues
        ));
    }
    let assessment = assess(&mapped.facts, &mapped.orders, now, &Policy::default());
    let actual = extension(&assessment, assessment.dose_checks.first());
    let diffs: Vec<String> = COMPARED
        .iter()
        .filter(|k| expected.get(**k).is_some())
        .filter(|k| actual.get(**k).unwrap_or(&Value::Null) != &expected[**k])
        .map(|k| format!("{k}: expected {}, got {}", expected[*k], actual[*k]))
        .collect();
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n    adapter issues: {:?}",
            diffs.join("\n    "),
            mapped.issues
        ))
    }
}

#[test]
fn every_real_world_patient_grades_as_its_expected_file_says() {
    let names = names();
    assert!(
        names.len() >= 30,
        "only {} patients in the corpus",
        names.len()
    );
    let graded = names
        .iter()
        .filter(|n| {
            read(&corpus().join("expected").join(format!("{n}.json"))).contains("infusionAt")
        })
        .count();
    assert!(graded >= 30, "only {graded} patients with a CAR-T variant");
    let failures: Vec<String> = names
        .iter()
        .filter_map(|n| check(n).err().map(|e| format!("{n}:\n    {e}")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_real_non_car_t_patients_pass_the_prefilter_without_being_read() {
    // Not a safety property (a false positive only costs time): the common case, a
    // real patient with no CAR-T infusion, is answered without JSON parsing.
    let t = Terminology::embedded();
    let read_anyway: Vec<String> = names()
        .into_iter()
        .filter(|n| {
            let json = read(&corpus().join("patients").join(format!("{n}.json")));
            !map("x", &[("everything", &json)], Timestamp(0), &t).prefiltered
        })
        .collect();
    assert!(read_anyway.len() <= 2, "read in full: {read_anyway:?}");
}

// --- The prefilter never hides an infusion -------------------------------------------

/// Ways a CAR-T infusion (or something close to one) can be written.
fn encodings() -> Vec<&'static str> {
    vec![
        r#"{"resourceType":"Procedure","id":"p1","status":"completed","subject":{"reference":"Patient/x"},"code":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"38228"}]},"performedDateTime":"2026-11-20T09:00:00Z"}"#,
        r#"{"resourceType":"Procedure","id":"p2","status":"completed","subject":{"reference":"Patient/x"},"code":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"0540T"}]},"performedDateTime":"2026-11-20T09:00:00Z"}"#,
        r#"{"resourceType":"Procedure","id":"p3","status":"completed","subject":{"reference":"Patient/x"},"code":{"text":"Infusion of KYMRIAH (tisagenlecleucel)"},"performedDateTime":"2026-11-20T09:00:00Z"}"#,
        r#"{"resourceType":"MedicationAdministration","id":"m1","status":"completed","subject":{"reference":"Patient/x"},"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"1987402"}]},"effectiveDateTime":"2026-11-20T09:00:00Z"}"#,
        r#"{"resourceType":"MedicationAdministration","id":"m2","status":"completed","subject":{"reference":"Patient/x"},"medicationCodeableConcept":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"00078-0846-15"}]},"effectiveDateTime":"2026-11-20T09:00:00Z"}"#,
        r#"{"resourceType":"MedicationAdministration","id":"m3","status":"completed","subject":{"reference":"Patient/x"},"medicationCodeableConcept":{"text":"Yescarta suspension"},"effectiveDateTime":"2026-11-20T09:00:00Z"}"#,
        r##"{"resourceType":"MedicationAdministration","id":"m4","status":"completed","subject":{"reference":"Patient/x"},"medicationReference":{"reference":"#c","display":"axi-cel"},"contained":[{"resourceType":"Medication","id":"c"}],"effectiveDateTime":"2026-11-20T09:00:00Z"}"##,
        r#"{"resourceType":"Procedure","id":"p4","status":"completed","subject":{"reference":"Patient/x"},"code":{"coding":[{"system":"urn:site","code":"LOCAL-CART"}]},"performedDateTime":"2026-11-20T09:00:00Z"}"#,
        r#"{"resourceType":"Procedure","id":"p5","status":"completed","subject":{"reference":"Patient/x"},"code":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"38225"}]},"performedDateTime":"2026-11-20T09:00:00Z"}"#,
    ]
}

/// Rewrites one character of `text` the way a sender may: changes its ASCII case,
/// writes it as a JSON `\u` escape, or puts a KELVIN SIGN / dotted capital I (whose
/// lowercase is ASCII-ish) in place of `k` / `i`. The character is taken, at `at`,
/// among the alphanumerics inside JSON strings, and with `targeted` among those of the
/// first string naming the infusion (a code or a product name), where a disguise can
/// hide it from a byte search.
fn disguise(text: &str, how: u8, at: usize, targeted: bool) -> String {
    let tokens = [
        "38228",
        "0540T",
        "KYMRIAH",
        "1987402",
        "00078-0846-15",
        "Yescarta",
        "axi-cel",
        "LOCAL-CART",
    ];
    let range = tokens
        .iter()
        .filter(|_| targeted)
        .find_map(|tok| text.find(tok).map(|s| s..s + tok.len()))
        .unwrap_or(0..text.len());
    let inside_strings: Vec<usize> = {
        let mut quoted = false;
        text.char_indices()
            .filter_map(|(i, c)| {
                if c == '"' {
                    quoted = !quoted;
                    None
                } else {
                    (quoted && c.is_ascii_alphanumeric() && range.contains(&i)).then_some(i)
                }
            })
            .collect()
    };
    if inside_strings.is_empty() {
        return text.to_string();
    }
    let pos = inside_strings[at % inside_strings.len()];
    let c = text[pos..].chars().next().unwrap_or('a');
    let replacement = match how % 4 {
        0 => c.to_ascii_uppercase().to_string(),
        1 => format!("\\u{:04X}", c as u32),
        2 if c.eq_ignore_ascii_case(&'k') => "\u{212A}".to_string(),
        2 if c.eq_ignore_ascii_case(&'i') => "\u{130}".to_string(),
        _ => c.to_ascii_lowercase().to_string(),
    };
    format!(
        "{}{}{}",
        &text[..pos],
        replacement,
        &text[pos + c.len_utf8()..]
    )
}

fn site_terminology() -> Terminology {
    let cm = json!({"resourceType": "ConceptMap", "status": "active", "group": [{
        "source": "urn:site", "target": "http://www.ama-assn.org/go/cpt",
        "element": [{"code": "LOCAL-CART", "target": [{"code": "38228", "equivalence": "equivalent"}]}]}]});
    Terminology::embedded()
        .with_concept_map(&cm.to_string())
        .unwrap_or_else(|e| panic!("{e:?}"))
}

fn small_real_patient() -> String {
    read(&corpus().join("patients/synthea-68cd1181.json"))
}

fn same_answer(docs: &[(&str, &str)], t: &Terminology) -> Result<(), TestCaseError> {
    let now = Timestamp(1_795_435_200_000);
    let with = map("x", docs, now, t);
    let without = map("x", docs, now, &t.clone().without_prefilter());
    prop_assert_eq!(with.has_infusion(), without.has_infusion());
    if with.prefiltered {
        prop_assert!(!without.has_infusion());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    #[test]
    fn prefilter_negative_means_no_infusion(
        which in 0usize..9,
        how in 0u8..4,
        at in 0usize..4000,
        times in 0usize..3,
        site in proptest::bool::ANY,
        targeted in proptest::bool::ANY,
    ) {
        let encodings = encodings();
        let mut resource = encodings[which % encodings.len()].to_string();
        for n in 0..times {
            resource = disguise(&resource, how.wrapping_add(n as u8), at.wrapping_mul(n + 7), targeted);
        }
        let doc = format!(r#"{{"resourceType":"Bundle","type":"searchset","entry":[{{"resource":{resource}}}]}}"#);
        let t = if site { site_terminology() } else { Terminology::embedded() };
        let real = small_real_patient();
        same_answer(&[("generated", &doc)], &t)?;
        same_answer(&[("real", &real), ("generated", &doc)], &t)?;
    }

    #[test]
    fn arbitrary_text_gets_the_same_answer_with_and_without_the_prefilter(text in "\\PC{0,300}") {
        let doc = format!(r#"{{"resourceType":"Procedure","id":"q","status":"completed","subject":{{"reference":"Patient/x"}},"code":{{"text":"{}"}},"performedDateTime":"2026-11-20T09:00:00Z"}}"#,
            text.replace('\\', "\\\\").replace('"', "\\\""));
        same_answer(&[("generated", &doc)], &Terminology::embedded())?;
    }
}

#[test]
fn every_real_document_gets_the_same_answer_with_and_without_the_prefilter() {
    let t = Terminology::embedded();
    for n in names() {
        let json = read(&corpus().join("patients").join(format!("{n}.json")));
        let result = same_answer(&[("everything", &json)], &t);
        assert!(result.is_ok(), "{n}: {result:?}");
    }
}
