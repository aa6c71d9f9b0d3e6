//! RULES.md §7 S9: every order the service suggests, sent back to it as a draft order,
//! passes its own dose check (adapter → engine), for adults and children.

use serde_json::{Value, json};

use crs_cds::adapter::{self, Document, Terminology};
use crs_cds::domain::{
    self, CarTProduct, Celsius, Drug, DrugExposure, Fact, IceScore, Infusion, Kg, MedicationGiven,
    Motor, NeuroScore, PatientFacts, Policy, Source, Timestamp,
};
use crs_cds::protocol::cards::{CardInput, cards};
use crs_cds::protocol::discovery::Hook;

const HOUR: i64 = 3_600_000;
/// 2026-03-10T12:00:00Z.
const NOW: Timestamp = Timestamp(1_773_144_000_000);

fn ago(hours: i64) -> Timestamp {
    Timestamp(NOW.0 - hours * HOUR)
}

fn patient(age: f64, kg: f64) -> PatientFacts {
    PatientFacts {
        age_years: Some(age),
        infusion: Some(Infusion {
            at: ago(96),
            product: Some(CarTProduct::Tisagenlecleucel),
            source: Source("Procedure/inf".into()),
        }),
        weights: vec![Fact::new(
            Kg::new(kg).expect("valid"),
            ago(5),
            "Observation/w",
        )],
        ..PatientFacts::default()
    }
}

/// Fever and norepinephrine running: CRS 3 (tocilizumab and steroids indicated).
fn crs3(age: f64, kg: f64) -> PatientFacts {
    let mut f = patient(age, kg);
    f.temperatures.push(Fact::new(
        Celsius::new(39.0).expect("valid"),
        ago(1),
        "Observation/t",
    ));
    f.vasoactive.push(DrugExposure {
        drug: Drug::Norepinephrine,
        start: ago(2),
        end: None,
        source: Source("MedicationAdministration/ne".into()),
    });
    f
}

/// Afebrile, ICE 5 (ICANS 2), or with deep focal weakness (ICANS 4).
fn icans(age: f64, kg: f64, grade4: bool) -> PatientFacts {
    let mut f = patient(age, kg);
    f.temperatures.push(Fact::new(
        Celsius::new(36.9).expect("valid"),
        ago(1),
        "Observation/t",
    ));
    f.neuro_scores.push(Fact::new(
        NeuroScore::Ice(IceScore::from_total(5).expect("valid")),
        ago(1),
        "Observation/ice",
    ));
    if grade4 {
        f.motor
            .push(Fact::new(Motor::DeepFocalWeakness, ago(1), "Observation/m"));
    }
    f
}

/// The infusion on record (the adapter reads orders only for a CAR-T patient).
const INFUSION: &str = r#"{"resourceType": "Procedure", "id": "inf", "status": "completed",
    "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "38228"}]},
    "subject": {"reference": "Patient/p"}, "performedDateTime": "2026-03-06T12:00:00Z"}"#;

fn map_draft(json: &str) -> adapter::Mapped {
    adapter::map_documents(
        &[Document {
            origin: "procedures",
            json: INFUSION,
        }],
        Some(Document {
            origin: "draftOrders",
            json,
        }),
        &[],
        NOW,
        &Terminology::embedded(),
    )
}

fn tocilizumab_draft() -> Value {
    json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "MedicationRequest", "id": "toci", "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"text": "tocilizumab"},
        "subject": {"reference": "Patient/p"},
        "dosageInstruction": [{"route": {"text": "IV"},
            "doseAndRate": [{"doseQuantity": {"value": 100, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]}]
    }}]})
}

/// The created resources of every suggestion the hook's cards offer.
fn suggested_orders(facts: &PatientFacts, hook: Hook) -> Vec<Value> {
    let policy = Policy::default();
    let draft = tocilizumab_draft();
    let draft_text = draft.to_string();
    let orders = if hook == Hook::PatientView {
        Vec::new()
    } else {
        map_draft(&draft_text).orders
    };
    let a = domain::assess(facts, &orders, NOW, &policy);
    let input = CardInput {
        hook,
        patient_id: "p",
        assessment: &a,
        orders: &orders,
        data_issues: &[],
        draft_orders: Some(&draft),
        course: None,
    };
    cards(&input)
        .iter()
        .map(|c| serde_json::to_value(c).expect("serializes"))
        .flat_map(|c| c["suggestions"].as_array().cloned().unwrap_or_default())
        .flat_map(|s| s["actions"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["type"] == "create" && a["resource"]["resourceType"] == "MedicationRequest")
        .map(|a| a["resource"].clone())
        .collect()
}

/// Sends `order` back as an order-select draft and returns the service's dose check.
fn recheck(facts: &PatientFacts, order: &Value) -> domain::DoseCheck {
    let mut order = order.clone();
    order["id"] = json!("suggested");
    let bundle =
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]})
            .to_string();
    let mapped = map_draft(&bundle);
    assert!(mapped.issues.is_empty(), "{:?}", mapped.issues);
    let a = domain::assess(facts, &mapped.orders, NOW, &Policy::default());
    assert_eq!(a.dose_checks.len(), 1, "the suggestion is a checked drug");
    a.dose_checks[0].clone()
}

fn dose(order: &Value) -> f64 {
    order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"]
        .as_f64()
        .expect("a dose")
}

#[test]
fn every_suggested_order_passes_the_services_own_dose_check() {
    // (facts, hook, expected drug and dose of the suggestion)
    let cases: Vec<(&str, PatientFacts, Hook, Drug, f64)> = vec![
        (
            "adult CRS 3, 70 kg",
            crs3(54.0, 70.0),
            Hook::PatientView,
            Drug::Tocilizumab,
            560.0,
        ),
        (
            "child CRS 3, 29.9 kg",
            crs3(8.0, 29.9),
            Hook::PatientView,
            Drug::Tocilizumab,
            358.8,
        ),
        (
            "adult ICANS 2",
            icans(54.0, 80.0, false),
            Hook::OrderSelect,
            Drug::Dexamethasone,
            10.0,
        ),
        (
            "child ICANS 2, 16 kg",
            icans(4.0, 16.0, false),
            Hook::OrderSelect,
            Drug::Dexamethasone,
            8.0,
        ),
        (
            "adult ICANS 4",
            icans(54.0, 80.0, true),
            Hook::OrderSelect,
            Drug::Methylprednisolone,
            1000.0,
        ),
        (
            "child ICANS 4, 20 kg",
            icans(6.0, 20.0, true),
            Hook::OrderSelect,
            Drug::Methylprednisolone,
            600.0,
        ),
    ];
    for (name, facts, hook, drug, mg) in cases {
        let orders = suggested_orders(&facts, hook);
        assert_eq!(
            orders.len(),
            1,
            "{name}: one suggested order, got {orders:?}"
        );
        assert_eq!(dose(&orders[0]), mg, "{name}");
        let check = recheck(&facts, &orders[0]);
        assert_eq!(check.drug, drug, "{name}");
        assert!(check.issues.is_empty(), "{name}: {:?}", check.issues);
    }
}

#[test]
fn no_tocilizumab_is_suggested_after_the_fourth_dose() {
    let mut f = crs3(54.0, 70.0);
    f.medications_given.extend((0..4).map(|n| MedicationGiven {
        drug: Drug::Tocilizumab,
        at: ago(60 - 12 * n),
        dose_mg: Some(560.0),
        source: Source(format!("MedicationAdministration/t{n}")),
    }));
    assert!(suggested_orders(&f, Hook::PatientView).is_empty());
}
