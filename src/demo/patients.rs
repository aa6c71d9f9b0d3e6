//! The synthetic CAR-T patients of demo mode, as FHIR R4 JSON, generated relative to an
//! instant `now` so they never go stale.
//!
//! Every value is chosen well away from the thresholds of RULES.md (A.1, A.2, §7): pressors
//! running now, fever documented before any anticytokine, oxygen device and flow charted
//! together, a child whose age and pressure are far from 70 + 2 × age. The grades each
//! patient was built for are in [`PATIENTS`] (and checked by `tests/demo.rs` against values
//! derived from the rules by hand).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

const LOINC: &str = "http://loinc.org";
const SCT: &str = "http://snomed.info/sct";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const CPT: &str = "http://www.ama-assn.org/go/cpt";
const IEC: &str = "https://w3id.org/crs-cds/fhir/CodeSystem/iec-toxicity";
const UCUM: &str = "http://unitsofmeasure.org";
const DAR: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
const OBS_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// One demo patient and what its data was built to show.
#[derive(Clone, Copy, Debug)]
pub struct DemoPatient {
    /// The Patient id (`context.patientId`).
    pub id: &'static str,
    /// What the record shows, for the landing page.
    pub summary: &'static str,
    /// Whether a CAR-T infusion is on record (none: the service answers no cards).
    pub car_t: bool,
}

/// The demo patients, in landing-page order.
pub const PATIENTS: &[DemoPatient] = &[
    DemoPatient {
        id: "demo-crs-0",
        summary: "day 5, afebrile (37.0 °C), SBP 122, room air, ICE 10: CRS 0, ICANS 0",
        car_t: true,
    },
    DemoPatient {
        id: "demo-crs-1",
        summary: "day 5, fever 38.9 °C, SBP 118, room air, ICE 10: CRS 1, ICANS 0",
        car_t: true,
    },
    DemoPatient {
        id: "demo-crs-2",
        summary: "day 5, fever 38.9 °C, SBP 82 without vasopressor, nasal cannula 3 L/min: CRS 2",
        car_t: true,
    },
    DemoPatient {
        id: "demo-crs-3",
        summary: "day 5, fever 39.0 °C, norepinephrine running now, nasal cannula 2 L/min: CRS 3",
        car_t: true,
    },
    DemoPatient {
        id: "demo-crs-4",
        summary: "day 5, fever 39.3 °C, on mechanical ventilation, ICE not performed (intubated): \
                  CRS 4, ICANS not assessable",
        car_t: true,
    },
    DemoPatient {
        id: "demo-icans-no-crs",
        summary: "day 6, afebrile (37.0 °C), SBP 120, room air, ICE 5: CRS 0, ICANS 2",
        car_t: true,
    },
    DemoPatient {
        id: "demo-icans-with-crs",
        summary: "day 4, fever 38.8 °C, SBP 84 without vasopressor, room air, ICE 5: CRS 2, ICANS 2",
        car_t: true,
    },
    DemoPatient {
        id: "demo-child",
        summary: "a child of 8 years, 26 kg, fever 38.7 °C, SBP 104, room air, CAPD 4: CRS 1, ICANS 1",
        car_t: true,
    },
    DemoPatient {
        id: "demo-tocilizumab-history",
        summary: "day 5, fever 39.1 °C 14 h ago, tocilizumab 560 mg 10 h ago, now 37.3 °C, SBP 84 \
                  without vasopressor, room air, 70 kg: CRS 2",
        car_t: true,
    },
    DemoPatient {
        id: "demo-no-car-t",
        summary: "febrile and hypotensive, but no CAR-T infusion on record: no cards",
        car_t: false,
    },
];

fn cc(system: &str, code: &str, display: &str) -> Value {
    if display.is_empty() {
        json!({ "coding": [{ "system": system, "code": code }] })
    } else {
        json!({ "coding": [{ "system": system, "code": code, "display": display }], "text": display })
    }
}

fn quantity(value: f64, code: &str) -> Value {
    json!({ "value": value, "unit": code, "system": UCUM, "code": code })
}

/// Builds one patient's resources.
struct Record {
    patient: &'static str,
    now: DateTime<Utc>,
    resources: Vec<Value>,
}

impl Record {
    fn new(patient: &'static str, now: DateTime<Utc>, birth_date: String) -> Record {
        let mut r = Record {
            patient,
            now,
            resources: Vec::new(),
        };
        r.resources.push(json!({
            "resourceType": "Patient",
            "id": patient,
            "meta": { "tag": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST", "display": "test health data" }] },
            "name": [{ "family": "Demo", "given": [patient.trim_start_matches("demo-")] }],
            "gender": "female",
            "birthDate": birth_date,
        }));
        r
    }

    fn ago(&self, minutes: i64) -> String {
        (self.now - Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    fn next_id(&self, kind: &str) -> String {
        format!("{}-{kind}-{}", self.patient, self.resources.len())
    }

    fn subject(&self) -> Value {
        json!({ "reference": format!("Patient/{}", self.patient) })
    }

    fn observation(&mut self, category: &str, code: Value, minutes_ago: i64, value: (&str, Value)) {
        let mut o = json!({
            "resourceType": "Observation",
            "id": self.next_id("obs"),
            "status": "final",
            "category": [cc(OBS_CATEGORY, category, "")],
            "code": code,
            "subject": self.subject(),
            "effectiveDateTime": self.ago(minutes_ago),
        });
        o[value.0] = value.1;
        self.resources.push(o);
    }

    fn vital(&mut self, loinc: &str, display: &str, value: f64, unit: &str, minutes_ago: i64) {
        self.observation(
            "vital-signs",
            cc(LOINC, loinc, display),
            minutes_ago,
            ("valueQuantity", quantity(value, unit)),
        );
    }

    fn temperature(&mut self, celsius: f64, minutes_ago: i64) {
        self.vital("8310-5", "Body temperature", celsius, "Cel", minutes_ago);
    }

    fn systolic(&mut self, mm_hg: f64, minutes_ago: i64) {
        self.vital(
            "8480-6",
            "Systolic blood pressure",
            mm_hg,
            "mm[Hg]",
            minutes_ago,
        );
    }

    fn weight(&mut self, kg: f64, minutes_ago: i64) {
        self.vital("29463-7", "Body weight", kg, "kg", minutes_ago);
    }

    /// An oxygen delivery device (IEC code), with its flow charted at the same time.
    fn oxygen(&mut self, device: &str, flow_l_min: Option<f64>, minutes_ago: i64) {
        // Category `exam`: the neuro search (by code) brings it, the vitals search (by
        // category) does not, so it arrives once.
        self.observation(
            "exam",
            cc(IEC, "oxygen-delivery", "Oxygen delivery"),
            minutes_ago,
            ("valueCodeableConcept", cc(IEC, device, "")),
        );
        if let Some(f) = flow_l_min {
            self.vital(
                "3151-8",
                "Inhaled oxygen flow rate",
                f,
                "L/min",
                minutes_ago,
            );
        }
    }

    fn ice(&mut self, total: i64, minutes_ago: i64) {
        self.observation(
            "exam",
            cc(IEC, "ice-score", "ICE score"),
            minutes_ago,
            ("valueInteger", json!(total)),
        );
    }

    fn ice_not_performed(&mut self, minutes_ago: i64) {
        self.observation(
            "exam",
            cc(IEC, "ice-score", "ICE score"),
            minutes_ago,
            ("dataAbsentReason", cc(DAR, "not-performed", "")),
        );
    }

    fn capd(&mut self, total: i64, minutes_ago: i64) {
        self.observation(
            "exam",
            cc(IEC, "capd-score", "CAPD score"),
            minutes_ago,
            ("valueInteger", json!(total)),
        );
    }

    /// The CAR-T infusion: a Procedure coded CPT 38228, `days_ago` days before now.
    fn car_t_infusion(&mut self, days_ago: i64) {
        let start = self.ago(days_ago * 24 * 60);
        let end = self.ago(days_ago * 24 * 60 - 30);
        self.resources.push(json!({
            "resourceType": "Procedure",
            "id": self.next_id("car-t-infusion"),
            "status": "completed",
            "code": cc(CPT, "38228", "CAR-T cell administration"),
            "subject": self.subject(),
            "performedPeriod": { "start": start, "end": end },
        }));
    }

    fn procedure_in_progress(&mut self, code: Value, since_minutes: i64) {
        self.resources.push(json!({
            "resourceType": "Procedure",
            "id": self.next_id("proc"),
            "status": "in-progress",
            "code": code,
            "subject": self.subject(),
            "performedPeriod": { "start": self.ago(since_minutes) },
        }));
    }

    fn administration(&mut self, medication: Value, status: &str, effective: (&str, Value)) {
        let mut m = json!({
            "resourceType": "MedicationAdministration",
            "id": self.next_id("ma"),
            "status": status,
            "medicationCodeableConcept": medication,
            "subject": self.subject(),
        });
        m[effective.0] = effective.1;
        self.resources.push(m);
    }

    /// A vasopressor infusion started `since_minutes` ago and still running.
    fn norepinephrine_running(&mut self, since_minutes: i64) {
        let start = self.ago(since_minutes);
        self.administration(
            cc(RXNORM, "7512", "norepinephrine"),
            "in-progress",
            ("effectivePeriod", json!({ "start": start })),
        );
    }

    fn tocilizumab_given(&mut self, mg: f64, minutes_ago: i64) {
        let at = self.ago(minutes_ago);
        self.administration(
            cc(RXNORM, "612865", "tocilizumab"),
            "completed",
            ("effectiveDateTime", json!(at)),
        );
        if let Some(last) = self.resources.last_mut() {
            last["dosage"] = json!({ "route": { "text": "IV" }, "dose": quantity(mg, "mg") });
        }
    }
}

fn birth_date(now: DateTime<Utc>, years: i64) -> String {
    // `years` years and 100 days before now: never a birthday boundary.
    (now - Duration::days(years * 365 + years / 4 + 100))
        .date_naive()
        .to_string()
}

/// Every resource of every demo patient, with times relative to `now`.
pub fn resources(now: DateTime<Utc>) -> Vec<Value> {
    let mut all = Vec::new();
    for p in PATIENTS {
        all.extend(record(p.id, now));
    }
    all
}

/// One patient's resources (empty for an unknown id).
fn record(id: &'static str, now: DateTime<Utc>) -> Vec<Value> {
    let adult = birth_date(now, 56);
    let mut r = Record::new(id, now, adult);
    match id {
        "demo-crs-0" => {
            r.car_t_infusion(5);
            r.temperature(37.0, 60);
            r.systolic(122.0, 60);
            r.oxygen("room-air", None, 60);
            r.ice(10, 120);
        }
        "demo-crs-1" => {
            r.car_t_infusion(5);
            r.temperature(38.9, 60);
            r.systolic(118.0, 60);
            r.oxygen("room-air", None, 60);
            r.ice(10, 120);
        }
        "demo-crs-2" => {
            r.car_t_infusion(5);
            r.temperature(38.9, 60);
            r.systolic(82.0, 60);
            r.oxygen("nasal-cannula", Some(3.0), 60);
            r.ice(10, 120);
        }
        "demo-crs-3" => {
            r.car_t_infusion(5);
            r.temperature(39.0, 60);
            r.systolic(92.0, 60);
            r.norepinephrine_running(300);
            r.oxygen("nasal-cannula", Some(2.0), 60);
            r.ice(10, 120);
        }
        "demo-crs-4" => {
            r.car_t_infusion(5);
            r.temperature(39.3, 60);
            r.systolic(100.0, 60);
            r.procedure_in_progress(cc(SCT, "40617009", "Artificial respiration"), 600);
            r.ice_not_performed(60);
        }
        "demo-icans-no-crs" => {
            r.car_t_infusion(6);
            r.temperature(37.0, 60);
            r.systolic(120.0, 60);
            r.oxygen("room-air", None, 60);
            r.ice(5, 90);
        }
        "demo-icans-with-crs" => {
            r.car_t_infusion(4);
            r.temperature(38.8, 60);
            r.systolic(84.0, 60);
            r.oxygen("room-air", None, 60);
            r.ice(5, 90);
        }
        "demo-child" => {
            r = Record::new(id, now, birth_date(now, 8));
            r.car_t_infusion(3);
            r.temperature(38.7, 60);
            r.systolic(104.0, 60);
            r.oxygen("room-air", None, 60);
            r.weight(26.0, 20 * 60);
            r.capd(4, 90);
        }
        "demo-tocilizumab-history" => {
            r.car_t_infusion(5);
            r.temperature(39.1, 14 * 60);
            r.tocilizumab_given(560.0, 10 * 60);
            r.temperature(37.3, 120);
            r.systolic(84.0, 120);
            r.oxygen("room-air", None, 120);
            r.weight(70.0, 30 * 60);
            r.ice(10, 180);
        }
        "demo-no-car-t" => {
            r.temperature(39.0, 60);
            r.systolic(80.0, 60);
            r.oxygen("room-air", None, 60);
            r.resources.push(json!({
                "resourceType": "Procedure",
                "id": r.next_id("proc"),
                "status": "completed",
                "code": cc(SCT, "392230005", "Central venous catheter insertion"),
                "subject": r.subject(),
                "performedDateTime": r.ago(30 * 60),
            }));
        }
        _ => return Vec::new(),
    }
    r.resources
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_resource_has_a_unique_id_and_names_its_patient() {
        let now = Utc::now();
        let all = resources(now);
        let mut ids: Vec<String> = all
            .iter()
            .map(|r| format!("{}/{}", r["resourceType"], r["id"]))
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate ids");
        for r in &all {
            if r["resourceType"] != "Patient" {
                let subject = r["subject"]["reference"].as_str().unwrap_or_default();
                assert!(
                    PATIENTS
                        .iter()
                        .any(|p| subject == format!("Patient/{}", p.id)),
                    "{subject}"
                );
            }
        }
    }

    #[test]
    fn the_demo_child_is_8_years_old_whatever_the_day() {
        for days in [0, 59, 200, 365, 366] {
            let now = Utc::now() + Duration::days(days);
            let birth =
                chrono::NaiveDate::parse_from_str(&birth_date(now, 8), "%Y-%m-%d").expect("a date");
            let age = now.date_naive().years_since(birth);
            assert_eq!(age, Some(8), "{birth} at {now}");
        }
    }
}
