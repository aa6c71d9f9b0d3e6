use serde_json::{Value, json};

use super::*;
use crate::domain::{
    CarTProduct, Celsius, DoseAmount, DrugExposure, Fact, IceScore, Infusion, Kg, LabKind,
    LabValue, LitersPerMinute, MedicationGiven, NeuroScore, OxygenDevice, PatientFacts, Policy,
    Source, Systolic, Timestamp, assess,
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

/// The suggestion that records the grades.
fn record_suggestion(card: &Value) -> &Value {
    card["suggestions"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|s| s["label"].as_str().is_some_and(|l| l.starts_with("Record")))
        })
        .unwrap_or(&Value::Null)
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
    let detail = card["detail"].as_str().expect("detail");
    assert!(
        detail.contains("doi:10.1016/j.bbmt.2018.12.758"),
        "{detail}"
    );
    // RULES.md §7 S14: clinician units, no internal rule ids or resource ids in the text
    // (the data-quality card names the records that could not be used, so they can be
    // corrected).
    let internal: &[&str] = if card["source"]["topic"]["code"] == "data-quality" {
        &[" Cel", "mm[Hg]", "RULES", "SEED-", "§"]
    } else {
        &[
            " Cel",
            "mm[Hg]",
            "RULES",
            "SEED-",
            "§",
            "Observation/",
            "MedicationRequest/",
        ]
    };
    for internal in internal {
        assert!(
            !detail.contains(internal),
            "detail shows {internal:?}:\n{detail}"
        );
    }
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
        "temperature 39.2 °C",
        "### Recommended actions",
        "_(ASCO 2021)_",
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
    let actions = record_suggestion(&cards[0])["actions"]
        .as_array()
        .expect("actions");
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
    // RULES.md §7 S13: grades that could not be assessed are not offered for recording.
    assert!(card.get("suggestions").is_none(), "{card}");
    assert!(card.get("selectionBehavior").is_none());
    assert_eq!(card["extension"]["org.crs-cds"]["crsGrade"], Value::Null);
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
    // RULES.md §7 S9: create first, so a client applying only the first action keeps an order.
    assert_eq!(actions[1]["type"], "delete");
    assert_eq!(actions[1]["resourceId"], "MedicationRequest/toci1");
    let dex = &actions[0]["resource"];
    assert_eq!(actions[0]["type"], "create");
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

fn given_toci(hours_ago: i64, n: usize) -> MedicationGiven {
    MedicationGiven {
        drug: Drug::Tocilizumab,
        at: at(hours_ago),
        dose_mg: Some(640.0),
        source: Source(format!("MedicationAdministration/toci{n}")),
    }
}

#[test]
fn a_crs_grade_that_is_a_lower_bound_is_flagged_and_never_offered_for_recording() {
    let mut f = crs3_icans1();
    // No oxygen record: hypoxia not assessed, CRS 3 from the vasopressor is a lower bound.
    f.oxygen_devices.clear();
    f.oxygen_flows.clear();
    let cards = render(Hook::PatientView, &f, &[], None, &[]);
    let card = &cards[0];
    assert_common(card);
    let ext = &card["extension"]["org.crs-cds"];
    assert_eq!(ext["crsGrade"], 3);
    assert_eq!(ext["crsGradeIsLowerBound"], true);
    assert!(
        card["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("CRS grade ≥ 3")),
        "{}",
        card["summary"]
    );
    let record = record_suggestion(card);
    let actions = record["actions"]
        .as_array()
        .expect("the definite ICANS grade is still offered");
    assert_eq!(actions.len(), 1);
    assert_eq!(
        actions[0]["resource"]["code"]["coding"][0]["code"],
        "icans-grade"
    );
    assert!(record["label"].as_str().is_some_and(|l| !l.contains("CRS")));
}

#[test]
fn a_definite_crs_grade_is_not_a_lower_bound_in_the_extension() {
    let cards = render(Hook::PatientView, &crs3_icans1(), &[], None, &[]);
    assert_eq!(
        cards[0]["extension"]["org.crs-cds"]["crsGradeIsLowerBound"],
        false
    );
}

#[test]
fn a_fifth_tocilizumab_dose_over_the_maximum_gets_no_change_the_dose_suggestion() {
    let mut f = crs3_icans1();
    f.medications_given
        .extend((0..4).map(|n| given_toci(60 - 12 * n as i64, n)));
    let cards = render(
        Hook::OrderSelect,
        &f,
        &[toci(900.0)],
        Some(&draft_bundle()),
        &[],
    );
    let card = &cards[0];
    assert_common(card);
    assert_eq!(card["indicator"], "critical");
    let issues = &card["extension"]["org.crs-cds"]["doseCheck"]["issues"];
    assert!(
        issues
            .as_array()
            .is_some_and(|i| i.contains(&json!("max-total-reached"))),
        "{issues}"
    );
    assert!(card.get("suggestions").is_none(), "{card}");
    assert!(
        card["detail"]
            .as_str()
            .is_some_and(|d| d.contains("No further tocilizumab dose is allowed"))
    );
}

#[test]
fn a_tocilizumab_dose_7h59_after_the_last_is_critical_and_8h_is_not() {
    for (minutes_ago, critical) in [(7 * 60 + 59, true), (8 * 60, false)] {
        let mut f = crs3_icans1();
        f.medications_given.push(MedicationGiven {
            drug: Drug::Tocilizumab,
            at: Timestamp(NOW.0 - minutes_ago * 60_000),
            dose_mg: Some(640.0),
            source: Source("MedicationAdministration/toci0".into()),
        });
        let cards = render(
            Hook::OrderSelect,
            &f,
            &[toci(900.0)],
            Some(&draft_bundle()),
            &[],
        );
        let card = &cards[0];
        let interval = card["extension"]["org.crs-cds"]["doseCheck"]["issues"]
            .as_array()
            .is_some_and(|i| i.contains(&json!("interval-too-short")));
        assert_eq!(interval, critical, "{minutes_ago} min");
        assert_eq!(
            card["indicator"], "critical",
            "exceeds-max is critical anyway"
        );
        // S8: no corrected dose while the interval forbids any dose.
        assert_eq!(
            card.get("suggestions").is_none(),
            critical,
            "{minutes_ago} min"
        );
    }
    // Without exceeds-max, the interval alone is critical.
    let mut f = crs3_icans1();
    f.medications_given.push(given_toci(7, 0));
    let cards = render(Hook::OrderSelect, &f, &[toci(640.0)], None, &[]);
    assert_eq!(cards[0]["indicator"], "critical");
}

#[test]
fn each_recommended_action_is_stated_once_across_the_cards() {
    let cards = render(Hook::PatientView, &crs3_icans1(), &[], None, &[]);
    let grading = cards[0]["detail"].as_str().expect("detail");
    let antifungal = cards
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "antifungal-prophylaxis")
        .and_then(|c| c["detail"].as_str())
        .expect("an antifungal card");
    assert!(grading.contains("CRS G3"));
    assert!(!antifungal.contains("CRS G3"), "{antifungal}");
    assert!(antifungal.contains("antifungal prophylaxis"));
    assert!(!grading.contains("antifungal prophylaxis"), "{grading}");
    assert!(!antifungal.contains("### References"));
    for c in &cards {
        assert_common(c);
    }
    let lines: Vec<&str> = grading.lines().filter(|l| l.starts_with("- ")).collect();
    let mut unique = lines.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(lines.len(), unique.len(), "a line repeats:\n{grading}");
}

#[test]
fn override_reasons_come_from_the_hl7_non_adherence_code_system() {
    let cards = render(
        Hook::OrderSign,
        &crs3_icans1(),
        &[toci(900.0)],
        Some(&draft_bundle()),
        &[],
    );
    let reasons = cards[0]["overrideReasons"].as_array().expect("reasons");
    let hl7: Vec<&Value> = reasons
        .iter()
        .filter(|r| r["system"] == NON_ADHERENCE_SYSTEM)
        .collect();
    assert!(hl7.len() >= 4, "{reasons:?}");
    assert!(hl7.iter().any(|r| r["code"] == "risk-benefit-ratio"));
    // Only a reason with no HL7 equivalent keeps the project's own system.
    let own: Vec<&Value> = reasons
        .iter()
        .filter(|r| r["system"] == OVERRIDE_SYSTEM)
        .collect();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["code"], "data-incorrect");
}

fn weighing(f: &mut PatientFacts, kg: f64) {
    f.weights = vec![Fact::new(
        Kg::new(kg).expect("valid"),
        at(6),
        "Observation/w",
    )];
}

/// ICANS 2 (ICE 5), afebrile and untreated: CRS 0.
fn icans2_crs0(age: f64, kg: f64) -> PatientFacts {
    let mut f = infused(5);
    f.age_years = Some(age);
    weighing(&mut f, kg);
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
    f
}

fn replace_suggestion(cards: &[Value]) -> &Value {
    cards
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "tocilizumab-with-icans")
        .map(|c| &c["suggestions"][0])
        .expect("a tocilizumab-with-icans card")
}

fn dose_of(order: &Value) -> &Value {
    &order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"]
}

#[test]
fn the_grading_card_states_the_tocilizumab_dose_for_this_patient_when_indicated() {
    let mut f = crs3_icans1();
    weighing(&mut f, 70.0);
    f.medications_given.push(given_toci(10, 0));
    let cards = render(Hook::PatientView, &f, &[], None, &[]);
    let card = &cards[0];
    let detail = card["detail"].as_str().expect("detail");
    assert!(
        detail.contains("tocilizumab 8 mg/kg = 560 mg IV over 1 h; dose 2 of at most 4"),
        "{detail}"
    );
    let order = &card["suggestions"][0];
    assert_eq!(order["isRecommended"], true);
    let resource = &order["actions"][0]["resource"];
    assert_eq!(resource["resourceType"], "MedicationRequest");
    assert_eq!(
        resource["medicationCodeableConcept"]["coding"][0]["code"],
        "612865"
    );
    assert_eq!(dose_of(resource), 560);
}

#[test]
fn no_tocilizumab_dose_is_offered_when_the_interval_forbids_one_or_icans_warns_against_it() {
    let mut f = crs3_icans1();
    f.medications_given.push(given_toci(7, 0));
    let cards = render(Hook::PatientView, &f, &[], None, &[]);
    assert!(
        !cards[0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Indicated now: tocilizumab")
    );
    assert!(
        !cards[0]["suggestions"].to_string().contains("tocilizumab"),
        "{}",
        cards[0]["suggestions"]
    );
}

#[test]
fn tocilizumab_with_icans_in_a_16_kg_child_suggests_8_mg_dexamethasone_not_10() {
    let f = icans2_crs0(4.0, 16.0);
    let cards = render(
        Hook::OrderSign,
        &f,
        &[toci(192.0)],
        Some(&draft_bundle()),
        &[],
    );
    let s = replace_suggestion(&cards);
    assert_eq!(s["actions"][0]["type"], "create");
    let dex = &s["actions"][0]["resource"];
    assert_eq!(
        dex["medicationCodeableConcept"]["coding"][0]["code"],
        "3264"
    );
    assert_eq!(dose_of(dex), 8);
    assert!(
        s["label"]
            .as_str()
            .is_some_and(|l| l.contains("verify pediatric dose")),
        "{s}"
    );
}

#[test]
fn tocilizumab_with_icans_4_suggests_the_methylprednisolone_pulse_not_dexamethasone() {
    let mut f = icans2_crs0(54.0, 80.0);
    f.motor.push(Fact::new(
        crate::domain::Motor::DeepFocalWeakness,
        at(1),
        "Observation/motor",
    ));
    let cards = render(
        Hook::OrderSign,
        &f,
        &[toci(640.0)],
        Some(&draft_bundle()),
        &[],
    );
    let s = replace_suggestion(&cards);
    let mp = &s["actions"][0]["resource"];
    assert_eq!(mp["medicationCodeableConcept"]["coding"][0]["code"], "6902");
    assert_eq!(dose_of(mp), 1000);
    assert_eq!(mp["dosageInstruction"][0]["timing"]["repeat"]["period"], 24);
    assert_eq!(s["actions"][1]["type"], "delete");
}

#[test]
fn a_steroid_given_to_a_never_febrile_patient_is_named_as_possibly_masking_a_fever() {
    let mut f = infused(4);
    f.temperatures.push(Fact::new(
        Celsius::new(37.2).expect("valid"),
        at(2),
        "Observation/t0",
    ));
    f.oxygen_devices.push(Fact::new(
        OxygenDevice::NasalCannula,
        at(1),
        "Observation/o2dev",
    ));
    f.oxygen_flows.push(Fact::new(
        LitersPerMinute::new(2.0).expect("valid"),
        at(1),
        "Observation/o2flow",
    ));
    f.medications_given.push(MedicationGiven {
        drug: Drug::Dexamethasone,
        at: at(20),
        dose_mg: Some(10.0),
        source: Source("MedicationAdministration/dex".into()),
    });
    let cards = render(Hook::PatientView, &f, &[], None, &[]);
    let card = &cards[0];
    assert_eq!(card["extension"]["org.crs-cds"]["crsGrade"], 0);
    let detail = card["detail"].as_str().expect("detail");
    assert!(
        detail.contains(
            "No documented fever; dexamethasone given on 2026-03-09 may mask one: assess for CRS vs another cause"
        ),
        "{detail}"
    );
}

fn ferritin(f: &mut PatientFacts, value: f64) {
    f.labs.push(Fact::new(
        LabValue {
            kind: LabKind::Ferritin,
            value,
            uln: None,
        },
        at(3),
        "Observation/ferritin",
    ));
}

#[test]
fn ferritin_above_10000_with_unassessed_criteria_gets_a_possible_hlh_warning_card() {
    for (value, card_expected) in [(10_000.0, false), (10_001.0, true)] {
        let mut f = crs3_icans1();
        ferritin(&mut f, value);
        f.labs.push(Fact::new(
            LabValue {
                kind: LabKind::Ast,
                value: 360.0,
                uln: None,
            },
            at(3),
            "Observation/ast",
        ));
        let cards = render(Hook::PatientView, &f, &[], None, &[]);
        let possible = cards
            .iter()
            .find(|c| c["source"]["topic"]["code"] == "hlh-possible");
        assert_eq!(possible.is_some(), card_expected, "ferritin {value}");
        if let Some(c) = possible {
            assert_common(c);
            assert_eq!(c["indicator"], "warning");
            assert!(
                c["summary"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("Possible HLH/MAS: ferritin 10001 ng/mL")),
                "{c}"
            );
            let detail = c["detail"].as_str().expect("detail");
            assert!(detail.contains("liver (AST, ALT and bilirubin with reference ranges)"));
        }
    }
}

#[test]
fn a_tocilizumab_order_without_a_usable_weight_is_never_called_within_limits() {
    let mut f = crs3_icans1();
    f.weights.clear();
    let cards = render(
        Hook::OrderSelect,
        &f,
        &[toci(1200.0)],
        Some(&draft_bundle()),
        &[],
    );
    assert_eq!(cards[0]["indicator"], "critical");
    assert_eq!(
        cards[0]["extension"]["org.crs-cds"]["doseCheck"]["maxAllowedMg"],
        800
    );
    let cards = render(
        Hook::OrderSelect,
        &f,
        &[toci(600.0)],
        Some(&draft_bundle()),
        &[],
    );
    let summary = cards[0]["summary"].as_str().expect("summary");
    assert_eq!(cards[0]["indicator"], "warning");
    assert!(!summary.contains("within the dose limits"), "{summary}");
    assert!(
        summary.contains("weight-based limit not checked: no usable body weight"),
        "{summary}"
    );
}

#[test]
fn an_unreadable_dose_says_why_on_the_card() {
    let order = DoseOrder {
        drug: Drug::Tocilizumab,
        amount: DoseAmount::Unreadable("unit {pill} is not a mass".into()),
        per_day: None,
        route: Some("intravenous".into()),
        source: Source("MedicationRequest/toci1".into()),
    };
    let cards = render(Hook::OrderSelect, &crs3_icans1(), &[order], None, &[]);
    assert_eq!(
        cards[0]["summary"],
        "Tocilizumab: dose not checked: unit {pill} is not a mass"
    );
    assert_eq!(cards[0]["indicator"], "warning");
    assert!(
        cards[0]["extension"]["org.crs-cds"]["doseCheck"]["issues"]
            .as_array()
            .is_some_and(|i| i.contains(&json!("dose-unreadable")))
    );
}

#[test]
fn sedation_evidence_reaches_the_card_without_internal_rule_ids() {
    // RULES.md §7 S14: internal rule ids only in the extension. The sedation findings
    // (RULES.md §7 S4) carry one in the domain's evidence text.
    let mut f = infused(4);
    f.temperatures.push(Fact::new(
        Celsius::new(37.0).expect("valid"),
        at(2),
        "Observation/t1",
    ));
    f.sedatives.push(DrugExposure {
        drug: Drug::Propofol,
        start: at(6),
        end: None,
        source: Source("MedicationAdministration/prop1".into()),
    });
    f.consciousness.push(Fact::new(
        crate::domain::Consciousness::Unarousable,
        at(1),
        "Observation/loc1",
    ));
    f.neuro_scores.push(Fact::new(
        NeuroScore::Ice(IceScore::from_total(0).expect("valid")),
        at(1),
        "Observation/ice1",
    ));
    let cards = render(Hook::PatientView, &f, &[], None, &[]);
    let ext = &cards[0]["extension"]["org.crs-cds"];
    assert_eq!(ext["icansGrade"], Value::Null, "sedated: not assessable");
    let evidence = ext["evidence"].to_string();
    assert!(
        evidence.contains("§7 S4"),
        "the extension keeps the rule id: {evidence}"
    );
    for card in &cards {
        let detail = card["detail"].as_str().expect("detail");
        assert!(detail.contains("during sedation"), "{detail}");
        for id in ["RULES", "§"] {
            assert!(!detail.contains(id), "card text shows {id:?}: {detail}");
        }
    }
}

#[test]
fn a_dose_7h59_after_the_last_says_7_h_59_min_and_when_the_next_dose_is_allowed() {
    // RULES.md §7 S8: the card says when the next dose is allowed; B.1: 7 h 59 min is
    // short of 8 h, so it must not read "8.0 h ago".
    let mut f = crs3_icans1();
    f.medications_given.push(MedicationGiven {
        drug: Drug::Tocilizumab,
        at: Timestamp(NOW.0 - (7 * 60 + 59) * 60_000),
        dose_mg: Some(640.0),
        source: Source("MedicationAdministration/toci0".into()),
    });
    let cards = render(Hook::OrderSelect, &f, &[toci(640.0)], None, &[]);
    let detail = cards[0]["detail"].as_str().expect("detail");
    assert!(
        detail.contains("last tocilizumab dose 7 h 59 min ago"),
        "{detail}"
    );
    assert!(!detail.contains("8.0 h"), "{detail}");
    // NOW is 12:00 UTC; the last dose 04:01 UTC; next allowed 12:01 UTC.
    assert!(
        detail.contains(
            "No further dose now: next dose allowed in 1 min, 12:01 UTC (8 h after the last dose)"
        ),
        "{detail}"
    );
}

#[test]
fn a_dose_check_without_a_usable_weight_shows_why_the_weight_was_refused() {
    // RULES.md §7 S6: "the same applies to a weight refused for its unit"; FHIR-INPUTS:
    // an unknown unit makes the value unusable "and says so".
    let mut f = crs3_icans1();
    f.weights.clear();
    let issue = "vitals: unknown unit 'st' for body weight 11: value not used".to_string();
    let cards = render(
        Hook::OrderSelect,
        &f,
        &[toci(400.0)],
        None,
        std::slice::from_ref(&issue),
    );
    let dose = &cards[0]["extension"]["org.crs-cds"]["doseCheck"];
    assert_eq!(dose["issues"], json!(["weight-unavailable"]));
    let data = cards
        .iter()
        .find(|c| c["source"]["topic"]["code"] == "data-quality")
        .expect("a data-quality card on the order hook");
    assert!(
        data["detail"]
            .as_str()
            .is_some_and(|d| d.contains("unknown unit 'st' for body weight 11")),
        "{data}"
    );
    // With a usable weight the order hooks stay as they were: no data card.
    let cards = render(
        Hook::OrderSelect,
        &crs3_icans1(),
        &[toci(400.0)],
        None,
        std::slice::from_ref(&issue),
    );
    assert!(
        cards
            .iter()
            .all(|c| c["source"]["topic"]["code"] != "data-quality")
    );
}
