//! One test per encoding of FHIR-INPUTS.md, plus the failure modes.

use serde_json::{Value, json};

use super::*;
use crate::domain::{
    ClinicalFinding, Consciousness, DoseAmount, Drug, NeuroScore, OxygenDevice, Timestamp,
    VentilationMode,
};

const LOINC: &str = "http://loinc.org";
const IEC: &str = "https://w3id.org/crs-cds/fhir/CodeSystem/iec-toxicity";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const SCT: &str = "http://snomed.info/sct";
const NDC: &str = "http://hl7.org/fhir/sid/ndc";

fn now() -> Timestamp {
    time::parse_time("2026-11-23T12:00:00Z").unwrap_or(Timestamp(0))
}

fn infusion() -> Value {
    json!({"resourceType": "Procedure", "id": "cart", "status": "completed",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "38228"}]},
        "subject": {"reference": "Patient/p"}, "performedDateTime": "2026-11-18T09:00:00Z"})
}

fn bundle(resources: &[Value]) -> String {
    json!({"resourceType": "Bundle", "type": "searchset",
        "entry": resources.iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
    .to_string()
}

/// Maps `resources` plus a CAR-T infusion, as one prefetch document.
fn run(resources: &[Value]) -> Mapped {
    let mut all = vec![infusion()];
    all.extend_from_slice(resources);
    let json = bundle(&all);
    map_documents(
        &[Document {
            origin: "test",
            json: &json,
        }],
        None,
        &[],
        now(),
        &Terminology::embedded(),
    )
}

fn obs(id: &str, system: &str, code: &str, value: Value) -> Value {
    let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2026-11-23T08:00:00Z"});
    if let (Some(map), Some(v)) = (o.as_object_mut(), value.as_object()) {
        map.extend(v.clone());
    }
    o
}

fn qty(value: Value, code: &str) -> Value {
    json!({"valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": code}})
}

fn concept(system: &str, code: &str) -> Value {
    json!({"valueCodeableConcept": {"coding": [{"system": system, "code": code}]}})
}

fn temps(m: &Mapped) -> Vec<f64> {
    m.facts
        .temperatures
        .iter()
        .map(|t| t.value.value())
        .collect()
}

fn ma(id: &str, status: &str, medication: Value, time: Value) -> Value {
    let mut r = json!({"resourceType": "MedicationAdministration", "id": id, "status": status,
        "subject": {"reference": "Patient/p"}});
    if let Some(map) = r.as_object_mut() {
        map.extend(medication.as_object().cloned().unwrap_or_default());
        map.extend(time.as_object().cloned().unwrap_or_default());
    }
    r
}

fn med_cc(system: &str, code: &str, text: Option<&str>) -> Value {
    let mut cc = json!({"coding": [{"system": system, "code": code}]});
    if let Some(t) = text {
        cc["text"] = json!(t);
    }
    json!({"medicationCodeableConcept": cc})
}

fn med_text(text: &str) -> Value {
    json!({"medicationCodeableConcept": {"text": text}})
}

fn running() -> Value {
    json!({"effectivePeriod": {"start": "2026-11-23T06:00:00Z"}})
}

fn drugs(m: &Mapped) -> Vec<(Drug, bool)> {
    m.facts
        .vasoactive
        .iter()
        .map(|e| (e.drug, e.end.is_none()))
        .collect()
}

#[test]
fn celsius_temperature_is_read() {
    let m = run(&[obs("t1", LOINC, "8310-5", qty(json!(38.6), "Cel"))]);
    assert_eq!(temps(&m), vec![38.6]);
}

#[test]
fn fahrenheit_100_4_becomes_exactly_38_celsius() {
    let m = run(&[obs("t1", LOINC, "8310-5", qty(json!(100.4), "[degF]"))]);
    assert_eq!(temps(&m), vec![38.0]);
}

#[test]
fn fahrenheit_100_2_stays_below_38_celsius() {
    let m = run(&[obs("t1", LOINC, "8310-5", qty(json!(100.2), "[degF]"))]);
    assert!(temps(&m).first().is_some_and(|t| *t < 38.0));
}

#[test]
fn unknown_temperature_unit_is_reported_and_not_used() {
    let m = run(&[
        obs("t1", LOINC, "8310-5", qty(json!(311.5), "K")),
        obs(
            "t2",
            LOINC,
            "8310-5",
            json!({"valueQuantity": {"value": 38.5}}),
        ),
    ]);
    assert!(temps(&m).is_empty());
    assert!(
        m.issues.iter().any(
            |i| i.location.contains("Observation/t1") && i.message.contains("unknown unit 'K'")
        )
    );
    assert!(
        m.issues
            .iter()
            .any(|i| i.location.contains("Observation/t2") && i.message.contains("no unit"))
    );
}

#[test]
fn out_of_range_temperature_is_reported_not_clamped() {
    let m = run(&[obs("t1", LOINC, "8310-5", qty(json!(60), "Cel"))]);
    assert!(temps(&m).is_empty());
    assert!(
        m.issues
            .iter()
            .any(|i| i.message.contains("temperature 60 is outside 25-45 Cel"))
    );
}

#[test]
fn weight_in_kg_and_pounds_is_read_in_kg() {
    let m = run(&[
        obs("w1", LOINC, "29463-7", qty(json!(70), "kg")),
        obs("w2", LOINC, "29463-7", qty(json!(220), "[lb_av]")),
    ]);
    let w: Vec<f64> = m.facts.weights.iter().map(|w| w.value.value()).collect();
    assert_eq!(w, vec![70.0, 99.790321]);
}

#[test]
fn systolic_is_read_from_a_bp_panel_and_standalone() {
    let panel = obs(
        "bp1",
        LOINC,
        "85354-9",
        json!({"component": [
            {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": {"value": 50, "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 85, "code": "mm[Hg]"}}
        ]}),
    );
    let single = obs("sbp1", LOINC, "8480-6", qty(json!(92), "mm[Hg]"));
    let m = run(&[panel, single]);
    let s: Vec<f64> = m.facts.systolic.iter().map(|s| s.value.value()).collect();
    assert_eq!(s, vec![85.0, 92.0]);
}

#[test]
fn pressor_in_progress_is_running() {
    let m = run(&[ma(
        "n1",
        "in-progress",
        med_cc(RXNORM, "7512", None),
        json!({"effectiveDateTime": "2026-11-23T06:00:00Z"}),
    )]);
    assert_eq!(drugs(&m), vec![(Drug::Norepinephrine, true)]);
}

#[test]
fn pressor_with_an_open_period_is_running_and_a_closed_one_is_not() {
    let closed = json!({"effectivePeriod": {"start": "2026-11-23T01:00:00Z", "end": "2026-11-23T03:00:00Z"}});
    let m = run(&[
        ma("n1", "completed", med_cc(RXNORM, "3992", None), running()),
        ma("n2", "completed", med_cc(RXNORM, "8163", None), closed),
    ]);
    assert_eq!(
        drugs(&m),
        vec![(Drug::Epinephrine, true), (Drug::Phenylephrine, false)]
    );
}

#[test]
fn active_pressor_order_is_running_from_authored_on() {
    let mr = json!({"resourceType": "MedicationRequest", "id": "r1", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "11149"}]},
        "subject": {"reference": "Patient/p"}, "authoredOn": "2026-11-23T05:00:00Z"});
    let m = run(&[mr]);
    assert_eq!(drugs(&m), vec![(Drug::Vasopressin, true)]);
    assert_eq!(
        m.facts.vasoactive.first().map(|e| e.start),
        time::parse_time("2026-11-23T05:00:00Z")
    );
}

#[test]
fn pressors_are_recognised_by_product_rxcui_ndc_and_text() {
    let m = run(&[
        ma(
            "a",
            "in-progress",
            med_cc(RXNORM, "242969", None),
            running(),
        ),
        ma(
            "b",
            "in-progress",
            med_cc(NDC, "0143-9318-10", None),
            running(),
        ),
        ma(
            "c",
            "in-progress",
            med_text("EPINEPHrine 16 mcg/mL infusion"),
            running(),
        ),
        ma(
            "d",
            "in-progress",
            med_text("Norepinephrine (Levophed) 4 mg/250 mL"),
            running(),
        ),
    ]);
    assert_eq!(
        drugs(&m),
        vec![
            (Drug::Norepinephrine, true),
            (Drug::Norepinephrine, true),
            (Drug::Epinephrine, true),
            (Drug::Norepinephrine, true)
        ]
    );
}

#[test]
fn package_ndc_of_tocilizumab_is_recognised_in_both_forms() {
    let at = json!({"effectiveDateTime": "2026-11-22T10:00:00Z"});
    let m = run(&[
        ma(
            "a",
            "completed",
            med_cc(NDC, "50242-0136-01", None),
            at.clone(),
        ),
        ma("b", "completed", med_cc(NDC, "50242013601", None), at),
    ]);
    assert_eq!(m.facts.medications_given.len(), 2);
    assert!(
        m.facts
            .medications_given
            .iter()
            .all(|g| g.drug == Drug::Tocilizumab)
    );
}

#[test]
fn inotropes_are_recorded_but_are_not_vasopressors() {
    let m = run(&[ma(
        "a",
        "in-progress",
        med_text("DOBUTamine drip"),
        running(),
    )]);
    assert_eq!(drugs(&m), vec![(Drug::Dobutamine, true)]);
}

#[test]
fn contained_medication_reference_is_resolved() {
    let mut r = ma(
        "a",
        "in-progress",
        json!({"medicationReference": {"reference": "#med1"}}),
        running(),
    );
    r["contained"] = json!([{"resourceType": "Medication", "id": "med1",
        "code": {"coding": [{"system": RXNORM, "code": "7512", "display": "norepinephrine"}]}}]);
    let m = run(&[r]);
    assert_eq!(drugs(&m), vec![(Drug::Norepinephrine, true)]);
}

#[test]
fn bundled_medication_reference_is_resolved_across_documents() {
    let med = json!({"resourceType": "Medication", "id": "vaso", "code": {"text": "Vasopressin 20 units/100 mL"}});
    let r = ma(
        "a",
        "in-progress",
        json!({"medicationReference": {"reference": "Medication/vaso"}}),
        running(),
    );
    let docs = [bundle(&[infusion(), r]), med.to_string()];
    let m = map_documents(
        &[
            Document {
                origin: "meds",
                json: &docs[0],
            },
            Document {
                origin: "other",
                json: &docs[1],
            },
        ],
        None,
        &[],
        now(),
        &Terminology::embedded(),
    );
    assert_eq!(drugs(&m), vec![(Drug::Vasopressin, true)]);
}

#[test]
fn given_tocilizumab_records_its_dose_in_mg() {
    let mut r = ma(
        "t",
        "completed",
        med_cc(RXNORM, "612865", None),
        json!({"effectiveDateTime": "2026-11-22T10:00:00Z"}),
    );
    r["dosage"] = json!({"dose": {"value": 0.56, "code": "g"}});
    let m = run(&[r]);
    assert_eq!(
        m.facts.medications_given.first().and_then(|g| g.dose_mg),
        Some(560.0)
    );
}

#[test]
fn oxygen_device_observation_is_read() {
    let m = run(&[
        obs(
            "d1",
            IEC,
            "oxygen-delivery",
            concept(IEC, "high-flow-nasal-cannula"),
        ),
        obs("d2", IEC, "oxygen-delivery", concept(SCT, "427591007")),
    ]);
    let d: Vec<OxygenDevice> = m.facts.oxygen_devices.iter().map(|d| d.value).collect();
    assert_eq!(
        d,
        vec![
            OxygenDevice::HighFlowNasalCannula,
            OxygenDevice::NonRebreather
        ]
    );
}

#[test]
fn ventilation_procedure_is_read_with_airway_protection() {
    let p = json!({"resourceType": "Procedure", "id": "v1", "status": "in-progress",
        "code": {"coding": [{"system": SCT, "code": "40617009"}]},
        "reasonCode": [{"text": "Intubated for airway protection (ICANS)"}],
        "subject": {"reference": "Patient/p"}, "performedPeriod": {"start": "2026-11-23T02:00:00Z"}});
    let m = run(&[p]);
    let v = m.facts.ventilation.first();
    assert_eq!(
        v.map(|v| (v.mode, v.end, v.airway_protection_only)),
        Some((VentilationMode::Mechanical, None, true))
    );
}

#[test]
fn oxygen_flow_is_read_standalone_and_as_pulse_oximetry_component() {
    let pulse = obs(
        "po",
        LOINC,
        "59408-5",
        json!({"valueQuantity": {"value": 93, "code": "%"}, "component": [
            {"code": {"coding": [{"system": LOINC, "code": "3151-8"}]}, "valueQuantity": {"value": 4, "code": "L/min"}},
            {"code": {"coding": [{"system": LOINC, "code": "3150-0"}]}, "valueQuantity": {"value": 36, "code": "%"}}
        ]}),
    );
    let m = run(&[obs("f1", LOINC, "3151-8", qty(json!(6), "L/min")), pulse]);
    let f: Vec<f64> = m
        .facts
        .oxygen_flows
        .iter()
        .map(|f| f.value.value())
        .collect();
    assert_eq!(f, vec![6.0, 4.0]);
    assert_eq!(m.facts.fio2.first().map(|f| f.value), Some(0.36));
}

fn ice_total(m: &Mapped) -> Vec<u8> {
    m.facts
        .neuro_scores
        .iter()
        .filter_map(|s| match s.value {
            NeuroScore::Ice(i) => Some(i.total()),
            _ => None,
        })
        .collect()
}

#[test]
fn ice_total_is_read() {
    let m = run(&[obs("i", IEC, "ice-score", json!({"valueInteger": 7}))]);
    assert_eq!(ice_total(&m), vec![7]);
}

#[test]
fn ice_items_as_separate_observations_are_summed() {
    let items = [
        ("ice-orientation", 3),
        ("ice-naming", 3),
        ("ice-commands", 1),
        ("ice-writing", 0),
        ("ice-attention", 1),
    ];
    let obs: Vec<Value> = items
        .iter()
        .map(|(c, v)| obs(&format!("i-{c}"), IEC, c, json!({"valueInteger": v})))
        .collect();
    let m = run(&obs);
    assert_eq!(ice_total(&m), vec![8]);
}

#[test]
fn ice_items_as_components_are_summed_and_out_of_range_items_refused() {
    let comp = |c: &str, v: i64| json!({"code": {"coding": [{"system": IEC, "code": c}]}, "valueInteger": v});
    let good = obs(
        "i1",
        IEC,
        "ice-score",
        json!({"component": [
        comp("ice-orientation", 4), comp("ice-naming", 2), comp("ice-commands", 1), comp("ice-writing", 1), comp("ice-attention", 0)]}),
    );
    let bad = obs(
        "i2",
        IEC,
        "ice-score",
        json!({"component": [
        comp("ice-orientation", 5), comp("ice-naming", 2), comp("ice-commands", 1), comp("ice-writing", 1), comp("ice-attention", 0)]}),
    );
    let m = run(&[good, bad]);
    assert_eq!(ice_total(&m), vec![8]);
    assert!(
        m.issues
            .iter()
            .any(|i| i.location.contains("Observation/i2")
                && i.message.contains("ICE orientation 5"))
    );
}

#[test]
fn ice_with_data_absent_reason_is_not_assessable() {
    let dar = json!({"dataAbsentReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-performed"}]}});
    let m = run(&[obs("i", IEC, "ice-score", dar)]);
    assert_eq!(
        m.facts.neuro_scores.first().map(|s| s.value),
        Some(NeuroScore::NotAssessable)
    );
}

#[test]
fn capd_score_is_read() {
    let m = run(&[obs("c", IEC, "capd-score", json!({"valueInteger": 12}))]);
    assert!(
        matches!(m.facts.neuro_scores.first().map(|s| s.value), Some(NeuroScore::Capd(c)) if c.total() == 12)
    );
}

#[test]
fn consciousness_is_read_by_iec_code_and_by_loinc_answer() {
    let m = run(&[
        obs("l1", IEC, "consciousness", concept(IEC, "awakens-to-voice")),
        obs("l2", LOINC, "80294-2", concept(LOINC, "LA25175-3")),
    ]);
    let c: Vec<Consciousness> = m.facts.consciousness.iter().map(|c| c.value).collect();
    assert_eq!(
        c,
        vec![
            Consciousness::AwakensToVoice,
            Consciousness::AwakensToTactile
        ]
    );
}

#[test]
fn hypotension_assertion_is_read() {
    let m = run(&[obs("h", IEC, "hypotension", json!({"valueBoolean": true}))]);
    assert_eq!(
        m.facts.hypotension_asserted.first().map(|h| h.value),
        Some(true)
    );
}

#[test]
fn labs_are_converted_to_canonical_units_with_uln() {
    let crp = obs(
        "crp",
        LOINC,
        "1988-5",
        json!({"valueQuantity": {"value": 12.5, "code": "mg/dL"},
        "referenceRange": [{"high": {"value": 0.5, "code": "mg/dL"}}]}),
    );
    let m = run(&[crp]);
    let lab = m.facts.labs.first().map(|l| (l.value.value, l.value.uln));
    assert_eq!(lab, Some((125.0, Some(5.0))));
}

#[test]
fn counted_statuses_are_used_and_others_ignored() {
    let mut eie = obs("t2", LOINC, "8310-5", qty(json!(40.0), "Cel"));
    eie["status"] = json!("entered-in-error");
    let mut prelim = obs("t3", LOINC, "8310-5", qty(json!(38.2), "Cel"));
    prelim["status"] = json!("preliminary");
    let mut stopped = ma("n", "stopped", med_cc(RXNORM, "7512", None), running());
    stopped["status"] = json!("stopped");
    let m = run(&[eie, prelim, stopped]);
    assert_eq!(temps(&m), vec![38.2]);
    assert!(m.facts.vasoactive.is_empty());
    assert_eq!(m.ignored_by_status, 2);
}

#[test]
fn a_resource_in_two_documents_is_counted_once() {
    let r = ma("n1", "in-progress", med_cc(RXNORM, "7512", None), running());
    let a = bundle(&[infusion(), r.clone()]);
    let b = bundle(&[r]);
    let m = map_documents(
        &[
            Document {
                origin: "medicationAdministrations",
                json: &a,
            },
            Document {
                origin: "vitals",
                json: &b,
            },
        ],
        None,
        &[],
        now(),
        &Terminology::embedded(),
    );
    assert_eq!(m.facts.vasoactive.len(), 1);
    assert_eq!(m.duplicates, 1);
}

#[test]
fn invalid_json_and_garbage_entries_are_reported_without_panicking() {
    let garbage = json!({"resourceType": "Bundle", "entry": [1, {"resource": {"no": "type"}},
        {"resource": {"resourceType": "Observation", "id": "x", "status": "final", "code": 5}},
        {"resource": {"resourceType": "OperationOutcome", "id": "oo"}}]})
    .to_string();
    let m = map_documents(
        &[
            Document {
                origin: "bad",
                json: "{not json",
            },
            Document {
                origin: "garbage",
                json: &garbage,
            },
        ],
        None,
        &[],
        now(),
        // Read in full: with the prefilter on, a document naming no infusion is not read.
        &Terminology::embedded().without_prefilter(),
    );
    assert!(!m.has_infusion());
    assert!(m.issues.len() >= 4, "{:?}", m.issues);
    assert!(m.issues.iter().any(|i| i.location == "bad"));
    assert!(
        m.issues
            .iter()
            .any(|i| i.message.contains("OperationOutcome"))
    );
}

#[test]
fn a_resource_fhirbolt_rejects_is_reported_and_the_rest_used() {
    let bad = obs(
        "t1",
        LOINC,
        "8310-5",
        json!({"valueQuantity": {"value": "hot", "code": "Cel"}}),
    );
    let m = run(&[bad, obs("t2", LOINC, "8310-5", qty(json!(38.4), "Cel"))]);
    assert_eq!(temps(&m), vec![38.4]);
    assert!(
        m.issues
            .iter()
            .any(|i| i.location.contains("Observation/t1"))
    );
}

#[test]
fn a_non_car_t_patient_is_recognised_without_typed_parsing() {
    let json = synth::icu_bundle(200, false);
    let m = map_documents(
        &[Document {
            origin: "all",
            json: &json,
        }],
        None,
        &[],
        now(),
        &Terminology::embedded(),
    );
    assert!(!m.has_infusion());
    assert_eq!(m.typed_parses, 0);
    let json = synth::icu_bundle(200, true);
    let m = map_documents(
        &[Document {
            origin: "all",
            json: &json,
        }],
        None,
        &[],
        now(),
        &Terminology::embedded(),
    );
    assert!(m.has_infusion());
    assert!(m.issues.is_empty(), "{:?}", m.issues);
}

#[test]
fn car_t_product_by_administration_text_sets_the_product() {
    let r = ma(
        "k",
        "completed",
        med_text("Yescarta (axicabtagene ciloleucel) suspension"),
        json!({"effectiveDateTime": "2026-11-19T10:00:00Z"}),
    );
    let json = bundle(&[r]);
    let m = map_documents(
        &[Document {
            origin: "x",
            json: &json,
        }],
        None,
        &[],
        now(),
        &Terminology::embedded(),
    );
    assert_eq!(
        m.facts.infusion.and_then(|i| i.product),
        Some(crate::domain::CarTProduct::AxicabtageneCiloleucel)
    );
}

#[test]
fn the_latest_infusion_is_kept() {
    let early = json!({"resourceType": "Procedure", "id": "old", "status": "completed",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "0540T"}]},
        "subject": {"reference": "Patient/p"}, "performedDateTime": "2025-01-02"});
    let m = run(&[early]);
    assert_eq!(
        m.facts.infusion.map(|i| i.source.0),
        Some("Procedure/cart".to_string())
    );
}

#[test]
fn draft_orders_are_restricted_to_selections_and_read_mg_per_kg_and_frequency() {
    let order = |id: &str, dose: Value| {
        json!({"resourceType": "MedicationRequest", "id": id, "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "612865"}], "text": "tocilizumab"},
        "subject": {"reference": "Patient/p"},
        "dosageInstruction": [{"route": {"text": "IV"}, "timing": {"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}},
            "doseAndRate": [{"doseQuantity": dose}]}]})
    };
    let draft = json!({"resourceType": "Bundle", "entry": [
        {"resource": order("a", json!({"value": 8, "code": "mg/kg"}))},
        {"resource": order("b", json!({"value": 400, "code": "mg"}))},
        {"resource": order("c", json!({"value": 2, "code": "vials"}))},
        {"resource": {"resourceType": "ServiceRequest", "id": "s", "status": "draft"}}
    ]})
    .to_string();
    let json = bundle(&[infusion()]);
    let docs = [Document {
        origin: "x",
        json: &json,
    }];
    let t = Terminology::embedded();
    let sel = vec![
        "MedicationRequest/a".to_string(),
        "MedicationRequest/c".to_string(),
    ];
    let m = map_documents(
        &docs,
        Some(Document {
            origin: "draftOrders",
            json: &draft,
        }),
        &sel,
        now(),
        &t,
    );
    let amounts: Vec<DoseAmount> = m.orders.iter().map(|o| o.amount.clone()).collect();
    assert_eq!(amounts.first(), Some(&DoseAmount::MgPerKg(8.0)));
    assert!(
        matches!(amounts.get(1), Some(DoseAmount::Unreadable(reason)) if reason.contains("vials")),
        "{amounts:?}"
    );
    assert_eq!(amounts.len(), 2);
    assert_eq!(m.orders.first().and_then(|o| o.per_day), Some(3.0));
    assert_eq!(
        m.orders.first().and_then(|o| o.route.clone()).as_deref(),
        Some("IV")
    );
    assert!(
        m.issues
            .iter()
            .any(|i| i.location.contains("MedicationRequest/c"))
    );
    let all = map_documents(
        &docs,
        Some(Document {
            origin: "draftOrders",
            json: &draft,
        }),
        &[],
        now(),
        &t,
    );
    assert_eq!(all.orders.len(), 3);
}

#[test]
fn site_concept_map_local_code_is_recognised() {
    let cm = include_str!("../../fhir-profiles/examples/ConceptMap-site-example.json");
    let t = Terminology::embedded().with_concept_map(cm);
    assert!(t.is_ok());
    let t = t.unwrap_or_else(|_| Terminology::embedded());
    let o = obs(
        "t",
        "https://ehr.example.org/flowsheet",
        "TEMP-ORAL",
        qty(json!(39.1), "Cel"),
    );
    let json = bundle(&[infusion(), o]);
    let m = map_documents(
        &[Document {
            origin: "x",
            json: &json,
        }],
        None,
        &[],
        now(),
        &t,
    );
    assert_eq!(temps(&m), vec![39.1]);
    let unmapped = map_documents(
        &[Document {
            origin: "x",
            json: &json,
        }],
        None,
        &[],
        now(),
        &Terminology::embedded(),
    );
    assert!(temps(&unmapped).is_empty());
}

#[test]
fn concept_map_with_a_target_outside_the_value_sets_is_refused() {
    let cm = json!({"resourceType": "ConceptMap", "group": [{"source": "urn:local", "target": LOINC,
        "element": [{"code": "X", "target": [{"code": "0000-0", "equivalence": "equivalent"}]}]}]});
    assert!(
        Terminology::embedded()
            .with_concept_map(&cm.to_string())
            .is_err()
    );
    assert!(Terminology::embedded().with_concept_map("nope").is_err());
}

#[test]
fn age_comes_from_birth_date_and_time_from_issued_as_last_resort() {
    let p = json!({"resourceType": "Patient", "id": "p", "birthDate": "2020-11-23"});
    let mut t = obs("t", LOINC, "8310-5", qty(json!(38.3), "Cel"));
    if let Some(map) = t.as_object_mut() {
        map.remove("effectiveDateTime");
        map.insert("issued".into(), json!("2026-11-23T09:00:00.000+01:00"));
    }
    let m = run(&[p, t]);
    assert_eq!(m.facts.age_years, Some(6.0));
    assert_eq!(
        m.facts.temperatures.first().map(|t| t.at),
        time::parse_time("2026-11-23T08:00:00Z")
    );
}

#[test]
fn a_resource_without_a_usable_time_is_reported() {
    let mut t = obs("t", LOINC, "8310-5", qty(json!(38.3), "Cel"));
    if let Some(map) = t.as_object_mut() {
        map.remove("effectiveDateTime");
    }
    let m = run(&[t]);
    assert!(temps(&m).is_empty());
    assert!(
        m.issues
            .iter()
            .any(|i| i.location.contains("Observation/t"))
    );
}

#[test]
fn the_generated_icu_bundle_has_200_entries_of_about_250_kb() {
    let json = synth::icu_bundle(200, true);
    let v: Value = serde_json::from_str(&json).unwrap_or_default();
    assert_eq!(v["entry"].as_array().map(Vec::len), Some(200));
    assert!(
        (200_000..320_000).contains(&json.len()),
        "{} bytes",
        json.len()
    );
}

#[test]
fn a_truncated_bundle_at_any_point_is_reported_without_panicking() {
    let json = synth::icu_bundle(40, true);
    for cut in (0..json.len()).step_by(53) {
        let part = json.get(..cut).unwrap_or("");
        let m = map_documents(
            &[Document {
                origin: "cut",
                json: part,
            }],
            None,
            &[],
            now(),
            &Terminology::embedded(),
        );
        assert!(
            !m.issues.is_empty() || cut == 0 || m.facts == Default::default() || m.has_infusion()
        );
    }
}

#[test]
fn a_draft_order_may_reference_a_medication_in_the_draft_bundle() {
    let draft = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Medication", "id": "dex", "code": {"text": "Dexamethasone sodium phosphate 4 mg/mL"}}},
        {"resource": {"resourceType": "MedicationRequest", "id": "o1", "status": "draft", "intent": "order",
            "medicationReference": {"reference": "Medication/dex"}, "subject": {"reference": "Patient/p"},
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 10, "code": "mg"}}]}]}}
    ]})
    .to_string();
    let json = bundle(&[infusion()]);
    let m = map_documents(
        &[Document {
            origin: "x",
            json: &json,
        }],
        Some(Document {
            origin: "draftOrders",
            json: &draft,
        }),
        &[],
        now(),
        &Terminology::embedded(),
    );
    assert_eq!(
        m.orders.first().map(|o| (o.drug, o.amount.clone())),
        Some((Drug::Dexamethasone, DoseAmount::Mg(10.0)))
    );
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let m = map_documents(&[Document { origin: "fuzz", json: &text }], Some(Document { origin: "d", json: &text }), &[], now(), &Terminology::embedded());
        proptest::prop_assert!(!m.has_infusion() || text.contains("Procedure") || text.contains("Medication"));
    }

    #[test]
    fn arbitrary_values_in_an_observation_never_panic(
        value in "[-0-9.eE+]{0,12}",
        unit in proptest::sample::select(vec!["Cel", "[degF]", "kg", "[lb_av]", "g", "mg/dL", "%", "1", "L/min", "K", ""]),
        code in proptest::sample::select(vec!["8310-5", "29463-7", "3151-8", "3150-0", "1988-5", "3255-7", "8480-6"]),
    ) {
        // The value is written raw (not quoted), so malformed numbers reach the parsers.
        let o = format!(r#"{{"resourceType": "Observation", "id": "o", "status": "final",
            "code": {{"coding": [{{"system": "{LOINC}", "code": "{code}"}}]}},
            "effectiveDateTime": "2026-11-23T08:00:00Z",
            "valueQuantity": {{"value": {value}, "code": "{unit}"}}}}"#);
        let b = format!(r#"{{"resourceType": "Bundle", "entry": [{{"resource": {}}}, {{"resource": {o}}}]}}"#, infusion());
        let _ = map_documents(&[Document { origin: "fuzz", json: &b }], None, &[], now(), &Terminology::embedded());
    }
}

fn at(mut o: Value, time: &str) -> Value {
    o["effectiveDateTime"] = json!(time);
    o
}

#[test]
fn observations_older_than_their_window_are_skipped_before_typed_parsing() {
    let all = [
        infusion(),
        // Inside the 24-h window, 25 h old (outside it, but after the infusion: kept as
        // a documented fever, RULES.md §7 S3), and before the infusion (skipped).
        at(
            obs("t-new", LOINC, "8310-5", qty(json!(38.4), "Cel")),
            "2026-11-23T08:00:00Z",
        ),
        at(
            obs("t-old", LOINC, "8310-5", qty(json!(39.9), "Cel")),
            "2026-11-22T11:00:00Z",
        ),
        at(
            obs("t-pre-infusion", LOINC, "8310-5", qty(json!(39.1), "Cel")),
            "2026-11-17T11:00:00Z",
        ),
        // Labs count for 72 h; weights and creatinine (the baseline) at any age.
        at(
            obs("ferritin", LOINC, "2276-4", qty(json!(900), "ng/mL")),
            "2026-11-21T12:00:00Z",
        ),
        at(
            obs("ferritin-old", LOINC, "2276-4", qty(json!(90000), "ng/mL")),
            "2026-11-19T11:00:00Z",
        ),
        at(
            obs("weight", LOINC, "29463-7", qty(json!(70), "kg")),
            "2026-01-01T08:00:00Z",
        ),
        at(
            obs("creat", LOINC, "2160-0", qty(json!(0.8), "mg/dL")),
            "2026-11-01T08:00:00Z",
        ),
    ];
    let json = bundle(&all);
    let docs = [Document {
        origin: "test",
        json: &json,
    }];
    let m = map_documents_within(&docs, None, &[], now(), &Terminology::embedded(), 24.0);
    assert_eq!(temps(&m), vec![38.4, 39.9]);
    assert_eq!(
        m.outside_window, 2,
        "the pre-infusion temperature and the old ferritin"
    );
    assert_eq!(m.facts.weights.len(), 1);
    assert_eq!(
        m.facts.labs.len(),
        2,
        "recent ferritin and the creatinine baseline"
    );
    // Whatever the window, a temperature from before the infusion is not read.
    let m = map_documents(&docs, None, &[], now(), &Terminology::embedded());
    assert_eq!(m.facts.temperatures.len(), 2);
}

#[test]
fn an_ice_score_sent_as_a_whole_quantity_is_read_and_a_fraction_is_not() {
    let m = run(&[obs("ice", IEC, "ice-score", qty(json!(6.0), "{score}"))]);
    let totals: Vec<u8> = m
        .facts
        .neuro_scores
        .iter()
        .filter_map(|s| match s.value {
            NeuroScore::Ice(i) => Some(i.total()),
            _ => None,
        })
        .collect();
    assert_eq!(totals, vec![6]);
    let m = run(&[obs("ice", IEC, "ice-score", qty(json!(6.5), "{score}"))]);
    assert!(m.facts.neuro_scores.is_empty());
}

// ------------------------------------------------------------------ RULES.md §7 inputs

#[test]
fn unable_unarousable_as_the_ice_or_capd_value_is_its_own_score() {
    for (code, capd) in [("ice-score", false), ("capd-score", true)] {
        let m = run(&[obs("n", IEC, code, concept(IEC, "unable-unarousable"))]);
        assert_eq!(
            m.facts.neuro_scores.first().map(|s| s.value),
            Some(NeuroScore::UnableUnarousable { capd }),
            "{code}"
        );
    }
}

#[test]
fn a_data_absent_reason_alone_is_still_not_assessed_never_unarousable() {
    let m = run(&[obs(
        "n",
        IEC,
        "capd-score",
        json!({"dataAbsentReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-performed"}]}}),
    )]);
    assert_eq!(
        m.facts.neuro_scores.first().map(|s| s.value),
        Some(NeuroScore::NotAssessable)
    );
}

#[test]
fn a_recorded_crs_grade_observation_is_read_as_a_documented_grade() {
    let m = run(&[
        obs("g", IEC, "crs-grade", json!({"valueInteger": 2})),
        obs("bad", IEC, "crs-grade", json!({"valueInteger": 7})),
    ]);
    assert_eq!(
        m.facts
            .recorded_crs_grades
            .iter()
            .map(|g| g.value)
            .collect::<Vec<_>>(),
        vec![2]
    );
    assert!(m.issues.iter().any(|i| i.message.contains("outside 0-4")));
}

#[test]
fn hlh_findings_are_read_from_value_boolean_and_snomed_yes_no() {
    let m = run(&[
        obs("h", IEC, "hemophagocytosis", json!({"valueBoolean": true})),
        obs(
            "p",
            IEC,
            "pulmonary-edema-grade-3",
            json!({"valueBoolean": false}),
        ),
        obs("o", IEC, "oliguria-grade-3", concept(SCT, "373066001")),
        obs("o2", IEC, "oliguria-grade-3", concept(SCT, "373067005")),
        obs(
            "x",
            IEC,
            "hemophagocytosis",
            json!({"valueString": "maybe"}),
        ),
    ]);
    let present: Vec<_> = m.facts.findings.iter().map(|f| f.value).collect();
    let absent: Vec<_> = m.facts.findings_absent.iter().map(|f| f.value).collect();
    assert_eq!(
        present,
        vec![
            ClinicalFinding::Hemophagocytosis,
            ClinicalFinding::OliguriaGrade3
        ]
    );
    assert_eq!(
        absent,
        vec![
            ClinicalFinding::PulmonaryEdemaGrade3,
            ClinicalFinding::OliguriaGrade3
        ]
    );
    assert!(
        m.issues
            .iter()
            .any(|i| i.message.contains("without a boolean or yes/no answer"))
    );
}

#[test]
fn sedative_infusions_are_read_by_rxnorm_and_by_text() {
    let m = run(&[
        ma(
            "pro",
            "in-progress",
            med_cc(RXNORM, "8782", None),
            running(),
        ),
        ma(
            "dex",
            "in-progress",
            med_text("Precedex 4 mcg/mL infusion"),
            running(),
        ),
    ]);
    let sedatives: Vec<_> = m
        .facts
        .sedatives
        .iter()
        .map(|e| (e.drug, e.end.is_none()))
        .collect();
    assert_eq!(
        sedatives,
        vec![(Drug::Propofol, true), (Drug::Dexmedetomidine, true)]
    );
    assert!(m.facts.vasoactive.is_empty());
}

#[test]
fn an_nsaid_given_is_an_antipyretic() {
    let m = run(&[ma(
        "ibu",
        "completed",
        med_cc(RXNORM, "5640", Some("ibuprofen 400 mg")),
        json!({"effectiveDateTime": "2026-11-23T06:00:00Z"}),
    )]);
    let given: Vec<_> = m.facts.medications_given.iter().map(|g| g.drug).collect();
    assert_eq!(given, vec![Drug::Ibuprofen]);
    assert!(Drug::Ibuprofen.waives_fever());
}

#[test]
fn a_prn_vasopressor_order_is_not_a_running_infusion() {
    let order = |id: &str, prn: bool| {
        json!({"resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "7512"}]},
            "subject": {"reference": "Patient/p"}, "authoredOn": "2026-11-23T06:00:00Z",
            "dosageInstruction": [{"asNeededBoolean": prn}]})
    };
    let m = run(&[order("prn", true), order("scheduled", false)]);
    let sources: Vec<_> = m
        .facts
        .vasoactive
        .iter()
        .map(|e| e.source.0.clone())
        .collect();
    assert_eq!(sources, vec!["MedicationRequest/scheduled".to_string()]);
}
