use serde_json::{Value, json};

use super::*;
use crate::domain::{
    CarTProduct, Celsius, DoseAmount, DrugExposure, Fact, IceScore, Infusion, Kg, LitersPerMinute,
    NeuroScore, OxygenDevice, PatientFacts, Policy, Source, Systolic, Timestamp, assess,
};

const HOUR: i64 = 3_600_000;
/// 2026-03-10T12:00:00Z.
const NOW: Timestamp = Timestamp(1_773_144_000_000);

fn at(hours_ago: i64) -> Timestamp {
    Timestamp(NOW.0 - hours_ago * HOUR)
}

fn infused(days_ago: i64) -> PatientFacts {
    PatientFacts {
        age_years: Some(54.0),
        infusion: Some(Infusion {
            at: at(days_ago * 24),
            product: Some(CarTProduct::AxicabtageneCiloleucel),
            source: Source("Procedure/infusion".into()),
        }),
        weights: vec![Fact::new(
            Kg::new(80.0).expect("valid"),
            at(30),
            "Observation/w1",
        )],
        ..PatientFacts::default()
    }
}

/// Fever, norepinephrine running (hypotension grade 3), nasal cannula 3 L/min (hypoxia
/// grade 2), ICE 8 (ICANS grade 1), day 4 after axi-cel.
fn crs3_icans1() -> PatientFacts {
    let mut f = infused(4);
    f.temperatures.push(Fact::new(
        Celsius::new(39.2).expect("valid"),
        at(2),
        "Observation/t1",
    ));
    f.systolic.push(Fact::new(
        Systolic::new(82.0).expect("valid"),
        at(2),
        "Observation/bp1",
    ));
    f.vasoactive.push(DrugExposure {
        drug: Drug::Norepinephrine,
        start: at(3),
        end: None,
        source: Source("MedicationAdministration/ne1".into()),
    });
    f.oxygen_devices.push(Fact::new(
        OxygenDevice::NasalCannula,
        at(1),
        "Observation/o2dev",
    ));
    f.oxygen_flows.push(Fact::new(
        LitersPerMinute::new(3.0).expect("valid"),
        at(1),
        "Observation/o2flow",
    ));
    f.neuro_scores.push(Fact::new(
        NeuroScore::Ice(IceScore::from_total(8).expect("valid")),
        at(1),
        "Observation/ice1",
    ));
    f
}

fn render(
    hook: Hook,
    facts: &PatientFacts,
    orders: &[DoseOrder],
    draft: Option<&Value>,
    issues: &[String],
) -> Vec<Value> {
    let policy = Policy::default();
    let a = assess(facts, orders, NOW, &policy);
    let input = CardInput {
        hook,
        patient_id: "p1",
        assessment: &a,
        orders,
        data_issues: issues,
        draft_orders: draft,
        course: None,
    };
    cards(&input)
        .iter()
        .map(|c| serde_json::to_value(c).expect("cards serialize"))
        .collect()
}

fn assert_common(card: &Value) {
    let uuid = card["uuid"].as_str().expect("uuid");
    assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{uuid}");
    let summary = card["summary"].as_str().expect("summary");
    assert!(summary.chars().count() < 140, "{summary}");
    assert!(
        ["info", "warning", "critical"].contains(&card["indicator"].as_str().expect("indicator"))
    );
    assert_eq!(card["source"]["label"], SOURCE_LABEL);
    assert_eq!(card["source"]["url"], SOURCE_URL);
    assert_eq!(card["source"]["topic"]["system"], TOPIC_SYSTEM);
    assert!(card["source"]["topic"]["code"].is_string());
    assert!(card["source"]["topic"]["display"].is_string());
    assert!(
        card["detail"]
            .as_str()
            .expect("detail")
            .contains("doi:10.1016/j.bbmt.2018.12.758")
    );
    let ext = &card["extension"]["org.crs-cds"];
    for key in ["crsGrade", "icansGrade", "flags", "evidence", "missing"] {
        assert!(ext.get(key).is_some(), "extension lacks {key}");
    }
    if card.get("suggestions").is_some() {
        assert_eq!(card["selectionBehavior"], "at-most-one");
        for s in card["suggestions"].as_array().expect("array") {
            assert!(s["uuid"].is_string() && s["label"].is_string());
        }
    }
    let indicator = card["indicator"].as_str().unwrap_or_default();
    if let Some(reasons) = card.get("overrideReasons") {
        assert_ne!(indicator, "info");
        for r in reasons.as_array().expect("array") {
            assert!(r["display"].as_str().is_some_and(|d| !d.is_empty()));
        }
    }
}

#[test]
fn a_crs3_icans1_patient_gets_a_critical_grading_card_with_the_grades_in_the_summary() {
    let cards = render(Hook::PatientView, &crs3_icans1(), &[], None, &[]);
    let card = &cards[0];
    assert_common(card);
    assert_eq!(
        card["summary"],
        "CRS grade 3, ICANS grade 1 (ASTCT) - day 4 after axi-cel"
    );
    assert_eq!(card["indicator"], "critical");
    assert_eq!(card["source"]["topic"]["code"], "crs-icans-grade");
    let ext = &card["extension"]["org.crs-cds"];
    assert_eq!(ext["crsGrade"], 3);
    assert_eq!(ext["icansGrade"], 1);
    assert!(
        ext["flags"]
            .as_array()
            .expect("flags")
            .contains(&json!("steroids-indicated"))
    );
    assert!(ext.get("doseCheck").is_none());
    let detail = card["detail"].as_str().expect("detail");
    for needle in [
        "### Evidence",
        "Observation/t1",
        "### Recommended actions",
        "_(ASCO)_",
        "### References",
        "ASCO guideline",
        "CARTOX",
    ] {
        assert!(detail.contains(needle), "detail lacks {needle}:\n{detail}");
    }
    assert!(card.get("overrideReasons").is_none());
}

#[test]
fn the_grading_suggestion_creates_profiled_grade_observations() {
    let cards = render(Hook::PatientView, &crs3_icans1(), &[], None, &[]);
    let s = &cards[0]["suggestions"];
    assert_eq!(s.as_array().map(Vec::len), Some(1));
    let actions = s[0]["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 2);
    let crs = &actions[0]["resource"];
    assert_eq!(actions[0]["type"], "create");
    assert_eq!(crs["resourceType"], "Observation");
    assert_eq!(
        crs["meta"]["profile"][0],
        "https://w3id.org/crs-cds/fhir/StructureDefinition/crs-grade"
    );
    assert_eq!(crs["status"], "preliminary");
    assert_eq!(crs["category"][0]["coding"][0]["code"], "exam");
    assert_eq!(crs["code"]["coding"][0]["system"], IEC);
    assert_eq!(crs["code"]["coding"][0]["code"], "crs-grade");
    assert_eq!(crs["subject"]["reference"], "Patient/p1");
    assert_eq!(crs["effectiveDateTime"], "2026-03-10T12:00:00Z");
    assert_eq!(crs["valueInteger"], 3);
    assert!(crs.get("dataAbsentReason").is_none());
    let derived: Vec<&str> = crs["derivedFrom"]
        .as_array()
        .expect("derivedFrom")
        .iter()
        .filter_map(|r| r["reference"].as_str())
        .collect();
    assert!(derived.contains(&"Observation/t1"), "{derived:?}");
    assert!(derived.iter().all(|r| r.starts_with("Observation/")));
    assert!(
        !derived.contains(&"Observation/ice1"),
        "ICANS evidence stays off the CRS grade"
    );
    let ext = crs["extension"].as_array().expect("grade-evidence");
    assert_eq!(ext[0]["url"], GRADE_EVIDENCE_URL);
    assert_eq!(
        ext[0]["valueReference"]["reference"],
        "MedicationAdministration/ne1"
    );
    let icans = &actions[1]["resource"];
    assert_eq!(icans["code"]["coding"][0]["code"], "icans-grade");
    assert_eq!(icans["valueInteger"], 1);
    assert_eq!(icans["derivedFrom"][0]["reference"], "Observation/ice1");
}

#[test]
fn a_patient_without_findings_gets_an_info_card_with_data_absent_grades_and_a_data_card() {
    let cards = render(
        Hook::PatientView,
        &infused(1),
        &[],
        None,
        &["vitals: Observation/x: unknown unit 'degK'".into()],
    );
    assert_eq!(cards.len(), 2);
    let card = &cards[0];
    assert_common(card);
    assert_eq!(card["indicator"], "info");
    assert_eq!(
        card["summary"],
        "CRS not assessable, ICANS not assessed (ASTCT) - day 1 after axi-cel"
    );
    let crs = &card["suggestions"][0]["actions"][0]["resource"];
    assert!(crs.get("valueInteger").is_none());
    assert_eq!(crs["dataAbsentReason"]["coding"][0]["code"], "unknown");
    assert!(
        card["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no temperature in the last 24 h")
    );
    let data = &cards[1];
    assert_common(data);
    assert_eq!(data["source"]["topic"]["code"], "data-quality");
    assert!(
        data["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown unit 'degK'")
    );
}

#[test]
fn grade_0_is_still_reported() {
    let mut f = infused(2);
    f.temperatures.push(Fact::new(
        Celsius::new(36.8).expect("valid"),
        at(1),
        "Observation/t0",
    ));
    f.neuro_scores.push(Fact::new(
        NeuroScore::Ice(IceScore::from_total(10).expect("valid")),
        at(1),
        "Observation/ice0",
    ));
    let cards = render(Hook::PatientView, &f, &[], None, &[]);
    assert_eq!(
        cards[0]["summary"],
        "CRS grade 0, ICANS grade 0 (ASTCT) - day 2 after axi-cel"
    );
    assert_eq!(cards[0]["indicator"], "info");
    assert_eq!(cards[0]["extension"]["org.crs-cds"]["crsGrade"], 0);
}

#[test]
fn steroids_indicated_adds_an_antifungal_card() {
    let cards = render(Hook::PatientView, &crs3_icans1(), &[], None, &[]);
    let codes: Vec<&str> = cards
        .iter()
        .filter_map(|c| c["source"]["topic"]["code"].as_str())
        .collect();
    assert!(codes.contains(&"antifungal-prophylaxis"), "{codes:?}");
    for c in &cards {
        assert_common(c);
    }
}

fn toci(mg: f64) -> DoseOrder {
    DoseOrder {
        drug: Drug::Tocilizumab,
        amount: DoseAmount::Mg(mg),
        per_day: None,
        route: Some("intravenous".into()),
        source: Source("MedicationRequest/toci1".into()),
    }
}

fn draft_bundle() -> Value {
    json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "MedicationRequest", "id": "toci1", "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"text": "tocilizumab"},
        "subject": {"reference": "Patient/p1"},
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 900, "unit": "mg"}}]}]
    }}]})
}

#[test]
fn a_tocilizumab_dose_over_the_maximum_is_critical_with_a_corrected_dose_suggestion() {
    let draft = draft_bundle();
    let cards = render(
        Hook::OrderSign,
        &crs3_icans1(),
        &[toci(900.0)],
        Some(&draft),
        &[],
    );
    let card = &cards[0];
    assert_common(card);
    assert_eq!(card["indicator"], "critical");
    assert_eq!(
        card["summary"],
        "Tocilizumab 900 mg exceeds the maximum of 640 mg per dose"
    );
    assert_eq!(card["source"]["topic"]["code"], "dose-check");
    assert_eq!(
        card["extension"]["org.crs-cds"]["doseCheck"],
        json!({"drug": "tocilizumab", "orderedMg": 900, "maxAllowedMg": 640, "issues": ["exceeds-max"]})
    );
    assert!(
        card["overrideReasons"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
    assert_eq!(card["selectionBehavior"], "at-most-one");
    let action = &card["suggestions"][0]["actions"][0];
    assert_eq!(action["type"], "update");
    assert_eq!(action["resource"]["id"], "toci1");
    assert_eq!(
        action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"],
        640
    );
    assert_eq!(
        action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["code"],
        "mg"
    );
}

#[test]
fn a_tocilizumab_dose_within_limits_is_info_without_override_reasons() {
    let cards = render(
        Hook::OrderSelect,
        &crs3_icans1(),
        &[toci(640.0)],
        Some(&draft_bundle()),
        &[],
    );
    assert_eq!(cards.len(), 1);
    assert_common(&cards[0]);
    assert_eq!(cards[0]["indicator"], "info");
    assert_eq!(
        cards[0]["summary"],
        "Tocilizumab 640 mg: within the dose limits (max 640 mg)"
    );
    assert!(cards[0].get("overrideReasons").is_none());
    assert!(cards[0].get("suggestions").is_none());
}

#[test]
fn tocilizumab_with_icans_and_no_crs_suggests_dexamethasone_instead() {
    let mut f = infused(5);
    f.temperatures.push(Fact::new(
        Celsius::new(37.0).expect("valid"),
        at(1),
        "Observation/t0",
    ));
    f.neuro_scores.push(Fact::new(
        NeuroScore::Ice(IceScore::from_total(5).expect("valid")),
        at(1),
        "Observation/ice2",
    ));
    let cards = render(
        Hook::OrderSign,
        &f,
        &[toci(640.0)],
        Some(&draft_bundle()),
        &[],
    );
    let card = cards
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "tocilizumab-with-icans")
        .expect("a tocilizumab-with-icans card");
    assert_common(card);
    assert_eq!(card["indicator"], "warning");
    assert!(
        card["extension"]["org.crs-cds"]["flags"]
            .as_array()
            .expect("flags")
            .contains(&json!("tocilizumab-with-icans"))
    );
    let actions = card["suggestions"][0]["actions"]
        .as_array()
        .expect("actions");
    assert_eq!(actions[0]["type"], "delete");
    assert_eq!(actions[0]["resourceId"], "MedicationRequest/toci1");
    let dex = &actions[1]["resource"];
    assert_eq!(actions[1]["type"], "create");
    assert_eq!(dex["resourceType"], "MedicationRequest");
    assert_eq!(dex["status"], "draft");
    assert_eq!(dex["intent"], "order");
    assert_eq!(
        dex["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"],
        10
    );
    assert_eq!(
        dex["dosageInstruction"][0]["route"]["coding"][0]["code"],
        "47625008"
    );
    assert_eq!(
        dex["dosageInstruction"][0]["timing"]["repeat"],
        json!({"frequency": 1, "period": 6, "periodUnit": "h"})
    );
}

#[test]
fn a_gm_csf_order_gets_a_warning_card() {
    let order = DoseOrder {
        drug: Drug::Sargramostim,
        amount: DoseAmount::Mg(0.25),
        per_day: None,
        route: None,
        source: Source("MedicationRequest/gm1".into()),
    };
    let cards = render(Hook::OrderSelect, &infused(3), &[order], None, &[]);
    assert_eq!(cards.len(), 1);
    assert_common(&cards[0]);
    assert_eq!(cards[0]["indicator"], "warning");
    assert!(
        cards[0]["extension"]["org.crs-cds"]["flags"]
            .as_array()
            .expect("flags")
            .contains(&json!("gm-csf-avoid"))
    );
}

#[test]
fn summaries_are_clipped_below_140_characters() {
    let long = "x".repeat(300);
    assert!(clip_summary(long).chars().count() < 140);
}
