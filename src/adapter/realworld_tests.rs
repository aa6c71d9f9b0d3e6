//! One test per item of FHIR-INPUTS.md "Real-world encodings" (issue 9), each built
//! from a small excerpt of a real public resource whose source is named in the test:
//! Synthea (smart-on-fhir/generated-sample-data `R4/SYNTHEA`), the HL7 R4 examples,
//! DICOM CID 3531 (the oxygen-administration procedure codes), and Epic's documented
//! empty-search OperationOutcome (code 4101). Ids and times are shortened; the codes,
//! units and shapes are as sent.

use serde_json::{Value, json};

use super::*;
use crate::domain::{Drug, LabKind, OxygenDevice};

const LOINC: &str = "http://loinc.org";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const SCT: &str = "http://snomed.info/sct";
const UCUM: &str = "http://unitsofmeasure.org";
/// Synthea's patient Alexis Toy (`Patient.id` is its `urn:uuid:` fullUrl).
const SYNTHEA_PATIENT: &str = "983561b3-02dd-4227-88a7-835827bd9566";

fn now() -> Timestamp {
    time::parse_time("2026-11-23T12:00:00Z").unwrap_or(Timestamp(0))
}

fn subject() -> Value {
    json!({"reference": format!("urn:uuid:{SYNTHEA_PATIENT}")})
}

fn infusion() -> Value {
    json!({"resourceType": "Procedure", "id": "cart", "status": "completed",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "38228"}]},
        "subject": subject(), "performedDateTime": "2026-11-18T09:00:00Z"})
}

/// A Synthea-style transaction Bundle: every entry with its `urn:uuid:` fullUrl.
fn synthea_bundle(resources: &[Value]) -> String {
    let mut entries = vec![json!({"fullUrl": format!("urn:uuid:{SYNTHEA_PATIENT}"),
        "resource": {"resourceType": "Patient", "id": SYNTHEA_PATIENT, "birthDate": "1961-04-02"}})];
    for r in resources {
        let id = r["id"].as_str().unwrap_or("x");
        entries.push(json!({"fullUrl": format!("urn:uuid:{id}"), "resource": r}));
    }
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}).to_string()
}

fn run_docs(docs: &[String], patient: Option<&str>, terminology: &Terminology) -> Mapped {
    let documents: Vec<Document<'_>> = docs
        .iter()
        .map(|json| Document {
            origin: "test",
            json,
        })
        .collect();
    map_documents_for_patient(
        patient,
        &documents,
        None,
        &[],
        now(),
        terminology,
        // The default grading window (RULES.md: 24 h).
        24.0,
    )
}

/// Maps `resources` plus a CAR-T infusion for the Synthea patient.
fn run(resources: &[Value]) -> Mapped {
    let mut all = vec![infusion()];
    all.extend_from_slice(resources);
    run_docs(
        &[synthea_bundle(&all)],
        Some(SYNTHEA_PATIENT),
        &Terminology::embedded(),
    )
}

fn issues(m: &Mapped) -> String {
    m.issues
        .iter()
        .map(|i| format!("{}: {}", i.location, i.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Synthea's Observation shape (`R4/SYNTHEA/Adolph_Smith_…json`): code with display
/// and text, `urn:uuid:` subject, UCUM quantity with `unit`, `system` and `code`.
fn synthea_obs(id: &str, code: &str, display: &str, value: Value, unit: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs", "display": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": subject(), "effectiveDateTime": "2026-11-23T08:00:00+00:00",
        "issued": "2026-11-23T08:00:00.317+00:00",
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}})
}

fn norepinephrine_order(id: &str, authored: &str, dosage: Value) -> Value {
    json!({"resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "7512", "display": "norepinephrine"}]},
        "subject": subject(), "authoredOn": authored, "dosageInstruction": [dosage]})
}

fn pressors(m: &Mapped) -> Vec<Drug> {
    m.facts.vasoactive.iter().map(|e| e.drug).collect()
}

// --- Codes -------------------------------------------------------------------------

#[test]
fn a_synthea_oral_temperature_8331_1_of_39_4_is_read_as_a_fever() {
    // Synthea Adolph_Smith: "8331-1" "Oral temperature", 37.46 Cel; value set to 39.4.
    let m = run(&[synthea_obs(
        "a931fd85",
        "8331-1",
        "Oral temperature",
        json!(39.4),
        "Cel",
    )]);
    let t: Vec<f64> = m
        .facts
        .temperatures
        .iter()
        .map(|t| t.value.value())
        .collect();
    assert_eq!(t, vec![39.4], "{}", issues(&m));
}

#[test]
fn rectal_axillary_and_tympanic_temperatures_are_temperatures() {
    let m = run(&[
        synthea_obs("r", "8332-9", "Rectal temperature", json!(38.1), "Cel"),
        synthea_obs("x", "8328-7", "Axillary temperature", json!(37.2), "Cel"),
        synthea_obs(
            "y",
            "8333-7",
            "Tympanic membrane temperature",
            json!(38.0),
            "Cel",
        ),
    ]);
    assert_eq!(m.facts.temperatures.len(), 3, "{}", issues(&m));
}

#[test]
fn a_synthea_bp_panel_55284_4_gives_its_systolic_component() {
    // Synthea Alexis_Toy: "55284-4" "Blood Pressure" with 8462-4 and 8480-6 components.
    let mut o = synthea_obs("f78f0a71", "55284-4", "Blood Pressure", json!(0), "mm[Hg]");
    if let Some(map) = o.as_object_mut() {
        map.remove("valueQuantity");
    }
    o["component"] = json!([
        {"code": {"coding": [{"system": LOINC, "code": "8462-4", "display": "Diastolic Blood Pressure"}]},
         "valueQuantity": {"value": 80.2376738990815, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic Blood Pressure"}]},
         "valueQuantity": {"value": 87.79682887583836, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}}]);
    let m = run(&[o]);
    let sbp: Vec<f64> = m.facts.systolic.iter().map(|s| s.value.value()).collect();
    assert_eq!(sbp.len(), 1, "{}", issues(&m));
    assert!(sbp.iter().all(|v| (v - 87.796829).abs() < 1e-6), "{sbp:?}");
}

fn labs(m: &Mapped, kind: LabKind) -> Vec<f64> {
    m.facts
        .labs
        .iter()
        .filter(|l| l.value.kind == kind)
        .map(|l| l.value.value)
        .collect()
}

#[test]
fn a_synthea_creatinine_38483_4_in_mg_dl_is_read() {
    // Synthea Adalberto_Hartmann: "38483-4" "Creatinine", 0.939 mg/dL.
    let m = run(&[synthea_obs(
        "0719c636",
        "38483-4",
        "Creatinine",
        json!(0.9390980444579311),
        "mg/dL",
    )]);
    assert_eq!(
        labs(&m, LabKind::Creatinine),
        vec![0.939098],
        "{}",
        issues(&m)
    );
}

#[test]
fn creatinine_14682_9_in_mmol_per_l_converts_at_113_12_g_per_mol() {
    let m = run(&[synthea_obs(
        "c",
        "14682-9",
        "Creatinine [Moles/volume]",
        json!(0.15),
        "mmol/L",
    )]);
    // 0.15 mmol/L × 113.12 g/mol = 16.968 mg/L = 1.6968 mg/dL.
    assert_eq!(
        labs(&m, LabKind::Creatinine),
        vec![1.6968],
        "{}",
        issues(&m)
    );
}

// --- Units -------------------------------------------------------------------------

#[test]
fn hemoglobin_in_lowercase_g_dl_is_the_same_ucum_unit() {
    let m = run(&[synthea_obs(
        "h",
        "718-7",
        "Hemoglobin [Mass/volume] in Blood",
        json!(7.9),
        "g/dl",
    )]);
    assert_eq!(labs(&m, LabKind::Hemoglobin), vec![7.9], "{}", issues(&m));
    assert!(!issues(&m).contains("unit"), "{}", issues(&m));
}

#[test]
fn platelets_in_k_ul_are_read_as_10_3_per_ul_and_the_card_says_so() {
    let m = run(&[synthea_obs(
        "p",
        "777-3",
        "Platelets [#/volume] in Blood",
        json!(41),
        "K/uL",
    )]);
    assert_eq!(labs(&m, LabKind::Platelets), vec![41.0], "{}", issues(&m));
    assert!(
        m.issues
            .iter()
            .any(|i| i.message == "unit 'K/uL' read as 10*3/uL"),
        "{}",
        issues(&m)
    );
}

#[test]
fn a_temperature_in_an_unknown_spelling_stays_refused() {
    let m = run(&[synthea_obs(
        "k",
        "8310-5",
        "Body temperature",
        json!(311.5),
        "degK",
    )]);
    assert!(m.facts.temperatures.is_empty());
    assert!(issues(&m).contains("unknown unit 'degK'"), "{}", issues(&m));
}

// --- Running vasopressor -----------------------------------------------------------

#[test]
fn the_synthea_epinephrine_auto_injector_as_needed_is_not_a_running_vasopressor() {
    // Synthea Alexis_Toy (57 of 615 Synthea patients): active, asNeededBoolean true.
    let mr = json!({"resourceType": "MedicationRequest", "id": "97841e2a", "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "1870230",
            "display": "NDA020800 0.3 ML Epinephrine 1 MG/ML Auto-Injector"}],
            "text": "NDA020800 0.3 ML Epinephrine 1 MG/ML Auto-Injector"},
        "subject": subject(), "authoredOn": "2026-11-23T03:19:07+00:00",
        "dosageInstruction": [{"sequence": 1, "asNeededBoolean": true}]});
    let m = run(&[mr]);
    assert!(pressors(&m).is_empty(), "{:?}", m.facts.vasoactive);
}

#[test]
fn an_order_as_needed_for_a_reason_is_not_running() {
    let mr = norepinephrine_order(
        "prn",
        "2026-11-23T10:00:00Z",
        json!({"asNeededCodeableConcept": {"text": "hypotension"}}),
    );
    assert!(pressors(&run(&[mr])).is_empty());
}

#[test]
fn an_active_order_with_a_rate_is_running_even_if_authored_days_ago() {
    let mr = norepinephrine_order(
        "rate",
        "2026-11-19T10:00:00Z",
        json!({"doseAndRate": [{"rateQuantity": {"value": 0.05, "unit": "ug/kg/min"}}]}),
    );
    assert_eq!(pressors(&run(&[mr])), vec![Drug::Norepinephrine]);
}

#[test]
fn an_iv_order_with_a_continuous_timing_is_running() {
    let mr = norepinephrine_order(
        "iv",
        "2026-11-19T10:00:00Z",
        json!({"route": {"coding": [{"system": SCT, "code": "47625008", "display": "Intravenous route"}]},
            "timing": {"code": {"text": "Continuous"}}}),
    );
    assert_eq!(pressors(&run(&[mr])), vec![Drug::Norepinephrine]);
}

#[test]
fn an_order_without_a_rate_counts_only_when_authored_within_the_window() {
    // The window is 24 h before now (12:00Z): authored 23 h ago counts, 25 h ago not.
    let recent = norepinephrine_order("recent", "2026-11-22T13:00:00Z", json!({"text": "titrate"}));
    assert_eq!(pressors(&run(&[recent])), vec![Drug::Norepinephrine]);
    let old = norepinephrine_order("old", "2026-11-22T11:00:00Z", json!({"text": "titrate"}));
    let m = run(&[old]);
    assert!(pressors(&m).is_empty());
    assert!(
        issues(&m).contains("not counted as running"),
        "{}",
        issues(&m)
    );
}

// --- Medication identity -----------------------------------------------------------

fn vaso_ma(id: &str, reference: Value) -> Value {
    json!({"resourceType": "MedicationAdministration", "id": id, "status": "in-progress",
        "medicationReference": reference, "subject": subject(),
        "effectivePeriod": {"start": "2026-11-23T06:00:00Z"}})
}

/// The HL7 R4 example `medicationexample1` shape: a Medication whose drug is named only
/// in `ingredient[].itemCodeableConcept` (here norepinephrine, RxNorm 7512).
fn ingredient_only_medication(id: &str) -> Value {
    json!({"resourceType": "Medication", "id": id,
        "code": {"text": "Premix bag 4 mg in 250 mL"},
        "ingredient": [{"itemCodeableConcept": {"coding": [{"system": RXNORM, "code": "7512",
            "display": "norepinephrine"}]}, "isActive": true}]})
}

#[test]
fn a_vasopressor_named_only_in_the_medication_ingredient_is_found() {
    let m = run(&[
        ingredient_only_medication("premix"),
        vaso_ma("a", json!({"reference": "Medication/premix"})),
    ]);
    assert_eq!(pressors(&m), vec![Drug::Norepinephrine], "{}", issues(&m));
}

#[test]
fn a_medication_referenced_by_its_urn_uuid_full_url_is_found() {
    // Synthea references every resource by its fullUrl `urn:uuid:…`.
    let m = run(&[
        ingredient_only_medication("5f0c3ab2"),
        vaso_ma("a", json!({"reference": "urn:uuid:5f0c3ab2"})),
    ]);
    assert_eq!(pressors(&m), vec![Drug::Norepinephrine], "{}", issues(&m));
}

#[test]
fn a_medication_referenced_by_an_absolute_url_is_found() {
    let m = run(&[
        ingredient_only_medication("m1"),
        vaso_ma(
            "a",
            json!({"reference": "https://fhir.example.org/r4/Medication/m1"}),
        ),
    ]);
    assert_eq!(pressors(&m), vec![Drug::Norepinephrine], "{}", issues(&m));
}

#[test]
fn a_contained_medication_with_an_ingredient_reference_display_is_found() {
    let mut r = vaso_ma("a", json!({"reference": "#c1"}));
    r["contained"] = json!([{"resourceType": "Medication", "id": "c1",
        "ingredient": [{"itemReference": {"reference": "Substance/x", "display": "Vasopressin 20 units"}}]}]);
    assert_eq!(pressors(&run(&[r])), vec![Drug::Vasopressin]);
}

#[test]
fn an_unresolved_medication_reference_is_reported_not_dropped() {
    let m = run(&[vaso_ma("ma-9", json!({"reference": "Medication/absent"}))]);
    assert!(pressors(&m).is_empty());
    assert!(
        m.issues
            .iter()
            .any(|i| i.message
                == "medication of MedicationAdministration/ma-9 could not be identified"),
        "{}",
        issues(&m)
    );
    // A display that names the drug identifies it.
    let m = run(&[vaso_ma(
        "ma-10",
        json!({"reference": "Medication/absent", "display": "Norepinephrine 4 mg in 250 mL"}),
    )]);
    assert_eq!(pressors(&m), vec![Drug::Norepinephrine]);
    assert!(!issues(&m).contains("could not be identified"));
}

#[test]
fn unresolved_medication_ids_lists_the_relative_references_not_sent() {
    let contained = {
        let mut r = vaso_ma("c", json!({"reference": "#c1"}));
        r["contained"] = json!([{"resourceType": "Medication", "id": "c1"}]);
        r
    };
    let doc = synthea_bundle(&[
        vaso_ma("a", json!({"reference": "Medication/b2"})),
        vaso_ma("b", json!({"reference": "Medication/a1"})),
        vaso_ma("d", json!({"reference": "Medication/a1"})),
        vaso_ma("e", json!({"reference": "Medication/here"})),
        vaso_ma("f", json!({"reference": "urn:uuid:not-fetchable"})),
        contained,
    ]);
    let other = json!({"resourceType": "Medication", "id": "here"}).to_string();
    let docs = [
        Document {
            origin: "meds",
            json: &doc,
        },
        Document {
            origin: "medications",
            json: &other,
        },
    ];
    assert_eq!(unresolved_medication_ids(&docs), vec!["a1", "b2"]);
    assert!(unresolved_medication_ids(&docs[1..]).is_empty());
}

// --- Oxygen by Procedure -----------------------------------------------------------

/// DICOM CID 3531 "Oxygen Administration": SNOMED CT 371908008 by mask, 371907003 by
/// nasal cannula; recorded as a Procedure (as Synthea's COVID-19 module does).
fn oxygen_procedure(id: &str, code: &str, status: &str, performed: Value) -> Value {
    let mut p = json!({"resourceType": "Procedure", "id": id, "status": status,
        "code": {"coding": [{"system": SCT, "code": code}]}, "subject": subject()});
    if let Some(map) = p.as_object_mut() {
        map.extend(performed.as_object().cloned().unwrap_or_default());
    }
    p
}

fn devices(m: &Mapped) -> Vec<OxygenDevice> {
    m.facts.oxygen_devices.iter().map(|d| d.value).collect()
}

#[test]
fn oxygen_by_mask_as_a_procedure_in_progress_is_face_mask_evidence_now() {
    let m = run(&[oxygen_procedure(
        "o2",
        "371908008",
        "in-progress",
        json!({"performedPeriod": {"start": "2026-11-23T09:00:00Z"}}),
    )]);
    assert_eq!(devices(&m), vec![OxygenDevice::FaceMask], "{}", issues(&m));
    assert_eq!(m.facts.oxygen_devices.first().map(|d| d.at), Some(now()));
}

#[test]
fn oxygen_by_nasal_cannula_and_oxygen_therapy_procedures_are_nasal_cannula_evidence() {
    let m = run(&[
        oxygen_procedure(
            "nc",
            "371907003",
            "completed",
            json!({"performedPeriod": {"start": "2026-11-23T06:00:00Z", "end": "2026-11-23T10:00:00Z"}}),
        ),
        oxygen_procedure(
            "ot",
            "57485005",
            "completed",
            json!({"performedDateTime": "2026-11-23T07:00:00Z"}),
        ),
    ]);
    assert_eq!(
        devices(&m),
        vec![OxygenDevice::NasalCannula, OxygenDevice::NasalCannula],
        "{}",
        issues(&m)
    );
    assert!(issues(&m).contains("oxygen therapy without a device type"));
}

#[test]
fn a_site_concept_map_applies_to_procedure_codes() {
    let cm = json!({"resourceType": "ConceptMap", "status": "active", "group": [{
        "source": "urn:oid:1.2.840.114350.1.13.0.1.7.2.768282", "target": SCT,
        "element": [{"code": "O2-MASK", "target": [{"code": "371908008", "equivalence": "equivalent"}]}]}]});
    let t = Terminology::embedded().with_concept_map(&cm.to_string());
    assert!(t.is_ok());
    let t = t.unwrap_or_else(|_| Terminology::embedded());
    let mut p = oxygen_procedure(
        "l",
        "x",
        "in-progress",
        json!({"performedDateTime": "2026-11-23T09:00:00Z"}),
    );
    p["code"] = json!({"coding": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.768282", "code": "O2-MASK"}]});
    let doc = synthea_bundle(&[infusion(), p]);
    let m = run_docs(std::slice::from_ref(&doc), Some(SYNTHEA_PATIENT), &t);
    assert_eq!(devices(&m), vec![OxygenDevice::FaceMask]);
    let m = run_docs(&[doc], Some(SYNTHEA_PATIENT), &Terminology::embedded());
    assert!(devices(&m).is_empty());
}

// --- Empty searches ----------------------------------------------------------------

/// Epic's empty search: an OperationOutcome entry, code 4101, severity warning,
/// `search.mode` outcome.
fn epic_4101(mode: Option<&str>, severity: &str) -> Value {
    let mut e = json!({"resource": {"resourceType": "OperationOutcome", "id": "eX",
        "issue": [{"severity": severity, "code": "processing",
            "details": {"coding": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.657369",
                "code": "4101", "display": "Resource request returns no results."}],
                "text": "Resource request returns no results."}}]}});
    if let Some(m) = mode {
        e["search"] = json!({"mode": m});
    }
    e
}

fn searchset(entries: Vec<Value>) -> String {
    json!({"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": entries}).to_string()
}

#[test]
fn an_epic_4101_warning_outcome_is_no_data_not_an_input_problem() {
    let infusion_doc = synthea_bundle(&[infusion()]);
    for entry in [
        epic_4101(Some("outcome"), "warning"),
        epic_4101(None, "warning"),
        epic_4101(None, "information"),
    ] {
        let m = run_docs(
            &[infusion_doc.clone(), searchset(vec![entry])],
            Some(SYNTHEA_PATIENT),
            &Terminology::embedded(),
        );
        assert!(!issues(&m).contains("OperationOutcome"), "{}", issues(&m));
    }
}

#[test]
fn an_error_outcome_is_still_an_input_problem_even_as_a_search_outcome() {
    let m = run_docs(
        &[
            synthea_bundle(&[infusion()]),
            searchset(vec![epic_4101(Some("outcome"), "error")]),
        ],
        Some(SYNTHEA_PATIENT),
        &Terminology::embedded(),
    );
    assert!(
        issues(&m).contains("the server returned an OperationOutcome instead of data"),
        "{}",
        issues(&m)
    );
}

// --- Subject -----------------------------------------------------------------------

#[test]
fn an_observation_about_another_patient_is_not_used_and_the_card_says_so() {
    let mut other = synthea_obs("other-t", "8310-5", "Body temperature", json!(39.9), "Cel");
    other["subject"] = json!({"reference": "Patient/someone-else"});
    let own = synthea_obs("own-t", "8310-5", "Body temperature", json!(37.0), "Cel");
    let m = run(&[other, own]);
    let t: Vec<f64> = m
        .facts
        .temperatures
        .iter()
        .map(|t| t.value.value())
        .collect();
    assert_eq!(t, vec![37.0]);
    assert!(
        issues(&m).contains("1 resource(s) about another patient than context.patientId not used: Observation/other-t"),
        "{}",
        issues(&m)
    );
}

#[test]
fn an_infusion_of_another_patient_is_no_infusion() {
    let mut p = infusion();
    p["subject"] = json!({"reference": "https://ehr.example.org/fhir/Patient/12724066"});
    let doc = json!({"resourceType": "Bundle", "type": "searchset",
        "entry": [{"resource": p}]})
    .to_string();
    let m = run_docs(
        std::slice::from_ref(&doc),
        Some(SYNTHEA_PATIENT),
        &Terminology::embedded(),
    );
    assert!(!m.has_infusion());
    // Without a patient id (a file given to the CLI) nothing is checked.
    assert!(run_docs(&[doc], None, &Terminology::embedded()).has_infusion());
}

#[test]
fn subject_references_resolve_through_full_urls_and_absolute_urls() {
    let full = HashMap::from([("urn:uuid:abc", "Patient/p1")]);
    assert_eq!(referenced_patient("urn:uuid:abc", &full), Some("p1"));
    // A urn:uuid no entry has names nobody known: not checked, the resource is kept.
    assert_eq!(referenced_patient("urn:uuid:zzz", &full), None);
    assert_eq!(
        referenced_patient("Patient/p2/_history/3", &full),
        Some("p2")
    );
    assert_eq!(
        referenced_patient("https://x.org/fhir/Patient/p3", &full),
        Some("p3")
    );
    assert_eq!(referenced_patient("Group/g1", &full), None);
    assert_eq!(referenced_patient("RelatedPatient/p4", &full), None);
}

// --- Nested Bundles ----------------------------------------------------------------

#[test]
fn a_batch_response_of_searchsets_is_read_one_level_deep() {
    // The HL7 R4 example `bundle-response` shape: a batch-response whose entries are
    // searchset Bundles, with `response.status`.
    let inner = json!({"resourceType": "Bundle", "id": "s1", "type": "searchset",
        "entry": [{"fullUrl": "urn:uuid:cart", "resource": infusion(), "search": {"mode": "match"}},
            {"resource": synthea_obs("t", "8310-5", "Body temperature", json!(38.6), "Cel")}]});
    let deeper = json!({"resourceType": "Bundle", "id": "s2", "type": "batch-response",
        "entry": [{"resource": {"resourceType": "Bundle", "id": "s3", "type": "searchset"}}]});
    let outer = json!({"resourceType": "Bundle", "type": "batch-response", "entry": [
        {"resource": inner, "response": {"status": "200 OK"}},
        {"resource": deeper, "response": {"status": "200 OK"}}]})
    .to_string();
    let m = run_docs(&[outer], Some(SYNTHEA_PATIENT), &Terminology::embedded());
    assert!(m.has_infusion(), "{}", issues(&m));
    assert_eq!(m.facts.temperatures.len(), 1);
    assert!(
        issues(&m).contains("nested more than one level deep"),
        "{}",
        issues(&m)
    );
}

// --- Triage prefilter --------------------------------------------------------------

fn found_with_and_without_prefilter(resource: &str) -> (bool, bool, bool) {
    let doc = format!(
        r#"{{"resourceType":"Bundle","type":"searchset","entry":[{{"resource":{resource}}}]}}"#
    );
    let on = run_docs(std::slice::from_ref(&doc), None, &Terminology::embedded());
    let off = run_docs(&[doc], None, &Terminology::embedded().without_prefilter());
    (on.has_infusion(), off.has_infusion(), on.prefiltered)
}

fn procedure_text(code_json: &str) -> String {
    format!(
        r#"{{"resourceType":"Procedure","id":"p","status":"completed","code":{code_json},"subject":{{"reference":"Patient/x"}},"performedDateTime":"2026-11-20T09:00:00Z"}}"#
    )
}

#[test]
fn a_code_written_with_a_json_escape_still_reaches_the_full_triage() {
    let p = procedure_text(
        r#"{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"3822\u0038"}]}"#,
    );
    assert_eq!(found_with_and_without_prefilter(&p), (true, true, false));
}

#[test]
fn a_product_name_with_a_kelvin_sign_or_dotted_capital_i_still_reaches_the_full_triage() {
    // U+212A KELVIN SIGN lowercases to 'k': "\u{212A}YMRIAH" is "kymriah" to the triage.
    let p = procedure_text("{\"text\":\"\u{212A}YMRIAH infusion\"}");
    assert_eq!(found_with_and_without_prefilter(&p), (true, true, false));
    let p = procedure_text("{\"text\":\"BREYANZ\u{130} infusion\"}");
    let (on, off, _) = found_with_and_without_prefilter(&p);
    assert_eq!(on, off);
}

#[test]
fn an_ndc_in_any_format_reaches_the_full_triage() {
    for code in ["00078-0846-15", "00078084615", "78-846"] {
        let ma = format!(
            r#"{{"resourceType":"MedicationAdministration","id":"m","status":"completed","medicationCodeableConcept":{{"coding":[{{"system":"http://hl7.org/fhir/sid/ndc","code":"{code}"}}]}},"subject":{{"reference":"Patient/x"}},"effectiveDateTime":"2026-11-20T09:00:00Z"}}"#
        );
        assert_eq!(
            found_with_and_without_prefilter(&ma),
            (true, true, false),
            "{code}"
        );
    }
    // The NDC system written with escaped solidi, as some JSON writers do.
    let ma = r#"{"resourceType":"MedicationAdministration","id":"m","status":"completed","medicationCodeableConcept":{"coding":[{"system":"http:\/\/hl7.org\/fhir\/sid\/ndc","code":"00078084615"}]},"subject":{"reference":"Patient/x"},"effectiveDateTime":"2026-11-20T09:00:00Z"}"#;
    assert_eq!(found_with_and_without_prefilter(ma), (true, true, false));
}

#[test]
fn a_real_synthea_patient_without_car_t_is_answered_by_the_prefilter() {
    // The Synthea epinephrine-auto-injector MedicationRequest and a BP panel.
    let doc = synthea_bundle(&[
        json!({"resourceType": "MedicationRequest", "id": "97841e2a",
        "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "1870230"}]},
        "subject": subject(), "authoredOn": "2019-09-30T03:19:07+00:00",
        "dosageInstruction": [{"sequence": 1, "asNeededBoolean": true}]}),
    ]);
    let m = run_docs(&[doc], Some(SYNTHEA_PATIENT), &Terminology::embedded());
    assert!(m.prefiltered);
    assert!(!m.has_infusion());
    assert_eq!(m.typed_parses, 0);
}

#[test]
fn a_site_local_code_mapped_to_the_infusion_joins_the_prefilter() {
    let cm = json!({"resourceType": "ConceptMap", "status": "active", "group": [{
        "source": "urn:site", "target": "http://www.ama-assn.org/go/cpt",
        "element": [{"code": "LOCAL-CART", "target": [{"code": "38228", "equivalence": "equivalent"}]}]}]});
    let t = Terminology::embedded().with_concept_map(&cm.to_string());
    assert!(t.is_ok());
    let t = t.unwrap_or_else(|_| Terminology::embedded());
    let p = procedure_text(r#"{"coding":[{"system":"urn:site","code":"LOCAL-CART"}]}"#);
    let doc = format!(r#"{{"resourceType":"Bundle","entry":[{{"resource":{p}}}]}}"#);
    let m = run_docs(std::slice::from_ref(&doc), None, &t);
    assert!(m.has_infusion() && !m.prefiltered);
    assert!(!run_docs(&[doc], None, &Terminology::embedded()).has_infusion());
}
