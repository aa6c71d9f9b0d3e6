//! Typed mapping: fhirbolt R4 resources → domain facts. Only entries that triage kept
//! reach this module.

use std::collections::BTreeMap;

use fhir_r4::Resource;
use fhir_r4::resources::{
    MedicationAdministration, MedicationAdministrationEffective, MedicationRequest, Observation,
    ObservationComponentValue, ObservationEffective, ObservationValue, Procedure,
    ProcedurePerformed,
};
use fhir_r4::types::{CodeableConcept, DateTime, Dosage, DosageAsNeeded, Period, Quantity};

use super::terminology::{CodingRef, Concept, Sets};
use super::time::{age_years, parse_time};
use super::units::{Measure, convert, convert_read};
use super::{AdapterIssue, Item, Terminology};
use crate::domain::{
    CapdScore, CarTProduct, Celsius, CerebralEdema, ClinicalFinding, Consciousness, DataError,
    DoseAmount, DoseOrder, Drug, DrugClass, DrugExposure, Fact, IceScore, Infusion, Kg, LabKind,
    LabValue, LitersPerMinute, MedicationGiven, Motor, NeuroScore, OxygenDevice, PatientFacts,
    Seizure, Source, Systolic, Timestamp, Ventilation, VentilationMode,
};

/// The five ICE items, in `IceScore::from_items` order.
const ICE_ITEMS: [&str; 5] = [
    "ice-orientation",
    "ice-naming",
    "ice-commands",
    "ice-writing",
    "ice-attention",
];

pub(super) struct Context<'t> {
    terminology: &'t Terminology,
    now: Timestamp,
    pub facts: PatientFacts,
    pub orders: Vec<DoseOrder>,
    pub issues: Vec<AdapterIssue>,
    pub typed_parses: usize,
    /// fhirbolt's parser for this request: what it learns about unknown elements in one
    /// entry cleans the later entries of the same shape before their first parse.
    pub parser: fhir_r4::Parser,
    /// The grading window in hours (a vasopressor order authored before it is not
    /// running unless it is an infusion).
    pub window_hours: f64,
    /// ICE items recorded as separate Observations, grouped by effective time.
    ice_items: BTreeMap<Timestamp, ([Option<i64>; 5], String)>,
}

fn cc_view(cc: &CodeableConcept) -> Concept<'_> {
    Concept {
        codings: cc
            .coding
            .iter()
            .map(|c| CodingRef {
                system: c.system.as_ref().and_then(|v| v.value.as_deref()),
                code: c.code.as_ref().and_then(|v| v.value.as_deref()),
                display: c.display.as_ref().and_then(|v| v.value.as_deref()),
            })
            .collect(),
        text: cc.text.as_ref().and_then(|v| v.value.as_deref()),
    }
}

fn concept_text(cc: &CodeableConcept) -> Option<String> {
    cc.text
        .as_ref()
        .and_then(|t| t.value.clone())
        .or_else(|| {
            cc.coding
                .iter()
                .find_map(|c| c.display.as_ref().and_then(|d| d.value.clone()))
        })
        .or_else(|| {
            cc.coding
                .iter()
                .find_map(|c| c.code.as_ref().and_then(|d| d.value.clone()))
        })
}

/// The decimal text and UCUM unit of a Quantity (the `code` when given, else `unit`).
fn quantity_parts(q: &Quantity) -> Option<(&str, Option<&str>)> {
    let value = q.value.as_ref()?.value.as_deref()?;
    let unit = q
        .code
        .as_ref()
        .and_then(|c| c.value.as_deref())
        .or_else(|| q.unit.as_ref().and_then(|u| u.value.as_deref()));
    Some((value, unit))
}

/// A score sent as a Quantity: a whole number, written `6` or `6.0`; anything else is
/// not a score.
fn integer_of_quantity(q: &Quantity) -> Option<i64> {
    let text = q.value.as_ref()?.value.as_deref()?.trim();
    text.parse::<i64>().ok().or_else(|| {
        let d: rust_decimal::Decimal = text.parse().ok()?;
        if d.fract().is_zero() {
            i64::try_from(d).ok()
        } else {
            None
        }
    })
}

fn integer_of_value(value: Option<&ObservationValue>) -> Option<i64> {
    match value? {
        ObservationValue::Integer(i) => i.value.map(i64::from),
        ObservationValue::Quantity(q) => integer_of_quantity(q),
        _ => None,
    }
}

fn integer_of_component(value: Option<&ObservationComponentValue>) -> Option<i64> {
    match value? {
        ObservationComponentValue::Integer(i) => i.value.map(i64::from),
        ObservationComponentValue::Quantity(q) => integer_of_quantity(q),
        _ => None,
    }
}

fn observation_time(o: &Observation) -> Option<(Timestamp, bool)> {
    let t = match &o.effective {
        Some(ObservationEffective::DateTime(d)) => d.value.as_deref().and_then(parse_time),
        Some(ObservationEffective::Period(p)) => p
            .start
            .as_ref()
            .and_then(|s| s.value.as_deref())
            .and_then(parse_time),
        Some(ObservationEffective::Instant(i)) => i.value.as_deref().and_then(parse_time),
        _ => None,
    };
    match t {
        Some(t) => Some((t, false)),
        // `issued` as a last resort (FHIR-INPUTS.md "Time of a fact").
        None => o
            .issued
            .as_ref()
            .and_then(|i| i.value.as_deref())
            .and_then(parse_time)
            .map(|t| (t, true)),
    }
}

impl<'t> Context<'t> {
    pub fn new(terminology: &'t Terminology, now: Timestamp) -> Self {
        Context {
            terminology,
            now,
            facts: PatientFacts::default(),
            orders: Vec::new(),
            issues: Vec::new(),
            typed_parses: 0,
            parser: fhir_r4::Parser::new(),
            window_hours: crate::domain::MAX_WINDOW_HOURS,
            ice_items: BTreeMap::new(),
        }
    }

    fn issue(&mut self, item: &Item<'_>, message: impl Into<String>) {
        self.issues.push(AdapterIssue {
            location: item.location(),
            message: message.into(),
        });
    }

    fn data_error(&mut self, item: &Item<'_>, e: &DataError) {
        self.issue(item, format!("{e}: value not used"));
    }

    fn parse(&mut self, item: &Item<'_>) -> Option<Resource> {
        self.typed_parses += 1;
        match self.parser.parse_dropping_unknown(item.raw.get()) {
            Ok((r, dropped)) => {
                if !dropped.is_empty() {
                    self.issue(
                        item,
                        format!(
                            "elements unknown to FHIR R4 ignored: {}",
                            dropped.join(", ")
                        ),
                    );
                }
                Some(r)
            }
            Err(e) => {
                // serde's "expected one of …" list is long and says nothing to a reader.
                let short = e.split(", expected").next().unwrap_or(&e);
                self.issue(item, format!("not a valid FHIR R4 resource: {short}"));
                None
            }
        }
    }

    fn convert(&mut self, item: &Item<'_>, q: &Quantity, measure: Measure) -> Option<f64> {
        let Some((value, unit)) = quantity_parts(q) else {
            self.issue(item, format!("{} has no value", measure.name()));
            return None;
        };
        if let Some(cmp) = q.comparator.as_ref().and_then(|c| c.value.as_deref()) {
            self.issue(
                item,
                format!(
                    "{} is '{cmp} {value}', not a value: not used",
                    measure.name()
                ),
            );
            return None;
        }
        match convert_read(value, unit, measure) {
            Ok((v, read)) => {
                // A non-UCUM spelling read through the alias table is said on the card
                // (FHIR-INPUTS.md "Real-world encodings", "Units").
                if let Some(sent) = unit
                    && let Some(read) = read
                    && read.alias.is_some()
                {
                    self.issue(
                        item,
                        format!("unit '{}' read as {}", sent.trim(), read.ucum),
                    );
                }
                Some(v)
            }
            Err(message) => {
                self.issue(item, message);
                None
            }
        }
    }

    pub fn patient(&mut self, item: &Item<'_>) {
        if self.facts.age_years.is_some() {
            return;
        }
        let Some(Resource::Patient(p)) = self.parse(item) else {
            return;
        };
        match p.birth_date.as_ref().and_then(|d| d.value.as_deref()) {
            Some(b) => match age_years(b, self.now) {
                Some(age) => self.facts.age_years = Some(age),
                None => self.issue(item, format!("unusable birthDate '{b}'")),
            },
            None => self.issue(item, "no birthDate: age unknown"),
        }
    }

    /// A CAR-T infusion (Procedure CPT 38228/0540T or naming a product, or a
    /// MedicationAdministration of a product); the latest one is kept.
    pub fn infusion(&mut self, item: &Item<'_>, product: Option<CarTProduct>) {
        let at = match self.parse(item) {
            Some(Resource::Procedure(p)) => procedure_period(&p).map(|(s, _)| s),
            Some(Resource::MedicationAdministration(m)) => {
                administration_period(&m).map(|(s, _)| s)
            }
            _ => return,
        };
        let Some(at) = at else {
            self.issue(item, "CAR-T infusion without a usable time: not used");
            return;
        };
        let newer = self.facts.infusion.as_ref().is_none_or(|i| at > i.at);
        if newer {
            self.facts.infusion = Some(Infusion {
                at,
                product,
                source: Source(item.reference.clone()),
            });
        }
    }

    pub fn observation(&mut self, item: &Item<'_>, key: &str) {
        let Some(Resource::Observation(o)) = self.parse(item) else {
            return;
        };
        let Some((at, _)) = observation_time(&o) else {
            self.issue(item, "no effective time or issued: not used");
            return;
        };
        let src = item.reference.clone();
        let terminology = self.terminology;
        let value_quantity = match &o.value {
            Some(ObservationValue::Quantity(q)) => Some(q.as_ref()),
            _ => None,
        };
        let value_concept = match &o.value {
            Some(ObservationValue::CodeableConcept(c)) => Some(c.as_ref()),
            _ => None,
        };
        let value_key = |sets: Sets| value_concept.and_then(|c| terminology.key(&cc_view(c), sets));
        match key {
            "temperature" => self.measured(
                item,
                value_quantity,
                Measure::Temperature,
                at,
                Celsius::new,
                |f| &mut f.temperatures,
            ),
            "systolic-bp" => self.systolic(item, value_quantity, at),
            "bp-panel" => {
                let sbp = o.component.iter().find(|c| {
                    terminology.key(&cc_view(&c.code), Sets::VITAL_SIGNS) == Some("systolic-bp")
                });
                match sbp.and_then(|c| match &c.value {
                    Some(ObservationComponentValue::Quantity(q)) => Some(q.as_ref()),
                    _ => None,
                }) {
                    Some(q) => self.systolic(item, Some(q), at),
                    None => self.issue(item, "blood pressure panel without a systolic component"),
                }
            }
            "body-weight" => {
                self.measured(item, value_quantity, Measure::Weight, at, Kg::new, |f| {
                    &mut f.weights
                })
            }
            "oxygen-flow" => self.flow(item, value_quantity, at),
            "fio2" => self.fio2(item, value_quantity, at),
            "pulse-oximetry" => {
                for c in &o.component {
                    let q = match &c.value {
                        Some(ObservationComponentValue::Quantity(q)) => Some(q.as_ref()),
                        _ => None,
                    };
                    match terminology.key(&cc_view(&c.code), Sets::VITAL_SIGNS) {
                        Some("oxygen-flow") => self.flow(item, q, at),
                        Some("fio2") => self.fio2(item, q, at),
                        _ => {}
                    }
                }
            }
            "ice-score" | "capd-score" => {
                // RULES.md §7 S5: its own encoding, read before any dataAbsentReason.
                let unable = value_key(Sets::NEURO) == Some("unable-unarousable");
                let score = if unable {
                    Some(NeuroScore::UnableUnarousable {
                        capd: key == "capd-score",
                    })
                } else if o.data_absent_reason.is_some() {
                    Some(NeuroScore::NotAssessable)
                } else if key == "capd-score" {
                    match integer_of_value(o.value.as_ref()).map(CapdScore::new) {
                        Some(Ok(s)) => Some(NeuroScore::Capd(s)),
                        Some(Err(e)) => {
                            self.data_error(item, &e);
                            None
                        }
                        None => {
                            self.issue(item, "CAPD score without an integer value: not used");
                            None
                        }
                    }
                } else {
                    self.ice_score(item, &o)
                };
                if let Some(s) = score {
                    self.facts.neuro_scores.push(Fact::new(s, at, src));
                }
            }
            k if ICE_ITEMS.contains(&k) => {
                if o.data_absent_reason.is_some() {
                    self.facts
                        .neuro_scores
                        .push(Fact::new(NeuroScore::NotAssessable, at, src));
                    return;
                }
                let Some(v) = integer_of_value(o.value.as_ref()) else {
                    self.issue(item, format!("{k} without an integer value: not used"));
                    return;
                };
                let slot = ICE_ITEMS.iter().position(|x| *x == k).unwrap_or(0);
                let entry = self.ice_items.entry(at).or_insert_with(|| ([None; 5], src));
                if let Some(cell) = entry.0.get_mut(slot) {
                    *cell = Some(v);
                }
            }
            "consciousness" => match value_key(Sets::CONSCIOUSNESS).and_then(consciousness) {
                Some(c) => self.facts.consciousness.push(Fact::new(c, at, src)),
                None => self.issue(
                    item,
                    "level of consciousness answer not recognised: not used",
                ),
            },
            "seizure" => match value_key(Sets::SEIZURE).and_then(seizure) {
                Some(s) => self.facts.seizures.push(Fact::new(s, at, src)),
                None => self.issue(item, "seizure answer not recognised: not used"),
            },
            "motor" => match value_key(Sets::MOTOR).and_then(motor) {
                Some(m) => self.facts.motor.push(Fact::new(m, at, src)),
                None => self.issue(item, "motor finding not recognised: not used"),
            },
            "cerebral-edema" => match value_key(Sets::EDEMA).and_then(edema) {
                Some(e) => self.facts.cerebral_edema.push(Fact::new(e, at, src)),
                None => self.issue(item, "cerebral edema finding not recognised: not used"),
            },
            "oxygen-delivery" => {
                match value_key(Sets::OXYGEN_DEVICES).and_then(OxygenDevice::from_key) {
                    Some(d) => self.facts.oxygen_devices.push(Fact::new(d, at, src)),
                    None => self.issue(item, "oxygen delivery device not recognised: not used"),
                }
            }
            "crs-grade" => match integer_of_value(o.value.as_ref()) {
                Some(g @ 0..=4) => {
                    let g = u8::try_from(g).unwrap_or(0);
                    self.facts.recorded_crs_grades.push(Fact::new(g, at, src));
                }
                Some(g) => self.issue(item, format!("CRS grade {g} is outside 0-4: not used")),
                // Not assessable (dataAbsentReason) documents nothing.
                None => {}
            },
            "hemophagocytosis" | "pulmonary-edema-grade-3" | "oliguria-grade-3" => {
                let finding = match key {
                    "hemophagocytosis" => ClinicalFinding::Hemophagocytosis,
                    "pulmonary-edema-grade-3" => ClinicalFinding::PulmonaryEdemaGrade3,
                    _ => ClinicalFinding::OliguriaGrade3,
                };
                let answer = match &o.value {
                    Some(ObservationValue::Boolean(b)) => b.value,
                    _ => match value_key(Sets::ANSWERS) {
                        Some("yes") => Some(true),
                        Some("no") => Some(false),
                        _ => None,
                    },
                };
                match answer {
                    Some(true) => self.facts.findings.push(Fact::new(finding, at, src)),
                    Some(false) => self.facts.findings_absent.push(Fact::new(finding, at, src)),
                    None => self.issue(
                        item,
                        format!("{key} without a boolean or yes/no answer: not used"),
                    ),
                }
            }
            "hypotension" => match &o.value {
                Some(ObservationValue::Boolean(b)) if b.value.is_some() => {
                    let v = b.value.unwrap_or(false);
                    self.facts.hypotension_asserted.push(Fact::new(v, at, src));
                }
                _ => self.issue(
                    item,
                    "hypotension assertion without a boolean value: not used",
                ),
            },
            other => {
                if let Some(kind) = LabKind::from_key(other) {
                    self.lab(item, &o, kind, value_quantity, at);
                }
            }
        }
    }

    fn quantity_of(
        &mut self,
        item: &Item<'_>,
        q: Option<&Quantity>,
        measure: Measure,
    ) -> Option<f64> {
        match q {
            Some(q) => self.convert(item, q, measure),
            None => {
                self.issue(
                    item,
                    format!("{} without a valueQuantity: not used", measure.name()),
                );
                None
            }
        }
    }

    /// Reads a quantity in `measure`'s unit, range-checks it with `check` (a refused value
    /// is reported, never clamped) and keeps it in the facts list `list` picks.
    fn measured<T>(
        &mut self,
        item: &Item<'_>,
        q: Option<&Quantity>,
        measure: Measure,
        at: Timestamp,
        check: fn(f64) -> Result<T, DataError>,
        list: fn(&mut PatientFacts) -> &mut Vec<Fact<T>>,
    ) {
        if let Some(v) = self.quantity_of(item, q, measure) {
            match check(v) {
                Ok(value) => {
                    list(&mut self.facts).push(Fact::new(value, at, item.reference.clone()))
                }
                Err(e) => self.data_error(item, &e),
            }
        }
    }

    fn systolic(&mut self, item: &Item<'_>, q: Option<&Quantity>, at: Timestamp) {
        self.measured(item, q, Measure::Pressure, at, Systolic::new, |f| {
            &mut f.systolic
        });
    }

    fn flow(&mut self, item: &Item<'_>, q: Option<&Quantity>, at: Timestamp) {
        self.measured(item, q, Measure::Flow, at, LitersPerMinute::new, |f| {
            &mut f.oxygen_flows
        });
    }

    fn fio2(&mut self, item: &Item<'_>, q: Option<&Quantity>, at: Timestamp) {
        if let Some(v) = self.quantity_of(item, q, Measure::Fio2) {
            if (0.0..=1.0).contains(&v) {
                self.facts
                    .fio2
                    .push(Fact::new(v, at, item.reference.clone()));
            } else {
                self.issue(item, format!("FiO2 {v} is outside 0-1: value not used"));
            }
        }
    }

    fn ice_score(&mut self, item: &Item<'_>, o: &Observation) -> Option<NeuroScore> {
        let terminology = self.terminology;
        let mut items = [None; 5];
        for c in &o.component {
            if let Some(k) = terminology.key(&cc_view(&c.code), Sets::NEURO)
                && let Some(slot) = ICE_ITEMS.iter().position(|x| *x == k)
                && let Some(cell) = items.get_mut(slot)
            {
                *cell = integer_of_component(c.value.as_ref());
            }
        }
        let result = if items.iter().any(Option::is_some) {
            match items {
                [Some(a), Some(b), Some(c), Some(d), Some(e)] => {
                    IceScore::from_items(a, b, c, d, e)
                }
                _ => {
                    self.issue(
                        item,
                        "ICE score with some of its five items missing: not used",
                    );
                    return None;
                }
            }
        } else {
            match integer_of_value(o.value.as_ref()) {
                Some(total) => IceScore::from_total(total),
                None => {
                    self.issue(
                        item,
                        "ICE score without an integer value or items: not used",
                    );
                    return None;
                }
            }
        };
        match result {
            Ok(s) => Some(NeuroScore::Ice(s)),
            Err(e) => {
                self.data_error(item, &e);
                None
            }
        }
    }

    /// ICE items recorded as separate Observations at the same effective time are summed
    /// (FHIR-INPUTS.md "ICE score").
    pub fn finish_ice_items(&mut self) {
        for (at, (items, src)) in std::mem::take(&mut self.ice_items) {
            let location = format!("{src} (ICE items)");
            match items {
                [Some(a), Some(b), Some(c), Some(d), Some(e)] => {
                    match IceScore::from_items(a, b, c, d, e) {
                        Ok(s) => {
                            self.facts
                                .neuro_scores
                                .push(Fact::new(NeuroScore::Ice(s), at, src))
                        }
                        Err(e) => self.issues.push(AdapterIssue {
                            location,
                            message: format!("{e}: value not used"),
                        }),
                    }
                }
                _ => {
                    let n = items.iter().filter(|i| i.is_some()).count();
                    self.issues.push(AdapterIssue {
                        location,
                        message: format!(
                            "only {n} of the 5 ICE items recorded at the same time: not used"
                        ),
                    });
                }
            }
        }
    }

    fn lab(
        &mut self,
        item: &Item<'_>,
        o: &Observation,
        kind: LabKind,
        q: Option<&Quantity>,
        at: Timestamp,
    ) {
        let Some(value) = self.quantity_of(item, q, Measure::Lab(kind)) else {
            return;
        };
        if !value.is_finite() || value < 0.0 {
            self.issue(
                item,
                format!("{} {value} is not a plausible value: not used", kind.key()),
            );
            return;
        }
        let value_unit = q.and_then(quantity_parts).and_then(|(_, u)| u);
        let uln = o
            .reference_range
            .iter()
            .find_map(|r| r.high.as_deref())
            .and_then(|high| {
                let (v, unit) = quantity_parts(high)?;
                // A reference range without a unit is in the result's unit.
                match convert(v, unit.or(value_unit), Measure::Lab(kind)) {
                    Ok(x) => Some(x),
                    Err(message) => {
                        self.issue(item, format!("reference range: {message}"));
                        None
                    }
                }
            });
        self.facts.labs.push(Fact::new(
            LabValue { kind, value, uln },
            at,
            item.reference.clone(),
        ));
    }

    /// A MedicationAdministration of a recognised drug: vasoactive exposure or a dose given.
    pub fn administration(&mut self, item: &Item<'_>, drug: Drug) {
        let Some(Resource::MedicationAdministration(m)) = self.parse(item) else {
            return;
        };
        let Some((start, end)) = administration_period(&m) else {
            self.issue(item, "no usable effective time: not used");
            return;
        };
        let src = Source(item.reference.clone());
        match drug.class() {
            DrugClass::Vasopressor | DrugClass::Inotrope | DrugClass::Sedative => {
                // In progress, or an open period, means still running.
                let end = if item.status() == "in-progress" {
                    None
                } else {
                    end.unwrap_or(Some(start))
                };
                let exposure = DrugExposure {
                    drug,
                    start,
                    end,
                    source: src,
                };
                if drug.class() == DrugClass::Sedative {
                    self.facts.sedatives.push(exposure);
                } else {
                    self.facts.vasoactive.push(exposure);
                }
            }
            _ => {
                let dose_mg = match m.dosage.as_ref().and_then(|d| d.dose.as_deref()) {
                    Some(q) => self.convert(item, q, Measure::DoseMass),
                    None => None,
                };
                self.facts.medications_given.push(MedicationGiven {
                    drug,
                    at: start,
                    dose_mg,
                    source: src,
                });
            }
        }
    }

    /// An active MedicationRequest for a vasopressor or a sedative: running from
    /// `authoredOn` only when it is not as-needed and is an infusion (a
    /// `doseAndRate.rate[x]`, or route IV with a continuous timing) or was authored within
    /// the grading window (FHIR-INPUTS.md "Real-world encodings", "Running vasopressor";
    /// RULES.md §7 S4, S11). An epinephrine auto-injector on the medication list is not
    /// shock.
    pub fn request(&mut self, item: &Item<'_>, drug: Drug) {
        if !matches!(
            drug.class(),
            DrugClass::Vasopressor | DrugClass::Inotrope | DrugClass::Sedative
        ) {
            return;
        }
        let Some(Resource::MedicationRequest(r)) = self.parse(item) else {
            return;
        };
        if r.dosage_instruction.iter().any(as_needed) {
            return;
        }
        let Some(start) = r
            .authored_on
            .as_ref()
            .and_then(|a| a.value.as_deref())
            .and_then(parse_time)
        else {
            self.issue(
                item,
                "active vasopressor or sedative order without authoredOn: not used",
            );
            return;
        };
        let infusion = r.dosage_instruction.iter().any(is_infusion);
        let recent = start > self.now.minus_hours(self.window_hours);
        if !infusion && !recent {
            self.issue(
                item,
                "active vasopressor or sedative order authored before the grading window and not an infusion: not counted as running",
            );
            return;
        }
        let exposure = DrugExposure {
            drug,
            start,
            end: None,
            source: Source(item.reference.clone()),
        };
        if drug.class() == DrugClass::Sedative {
            self.facts.sedatives.push(exposure);
        } else {
            self.facts.vasoactive.push(exposure);
        }
    }

    /// An oxygen-delivery Procedure (SNOMED CT by mask, by nasal cannula, oxygen
    /// therapy) in progress or performed in the window: device evidence with the same
    /// grades as a device Observation (FHIR-INPUTS.md "Real-world encodings", "Oxygen by
    /// Procedure"). Still running (in progress or an open period) counts at `now`.
    pub fn oxygen_procedure(&mut self, item: &Item<'_>, key: &str) {
        let device = match key {
            // Oxygen therapy without a device is low-flow oxygen at least: read as a
            // nasal cannula, graded by its flow when one is recorded (RULES.md D).
            "supplemental-oxygen" => Some(OxygenDevice::NasalCannula),
            other => OxygenDevice::from_key(other),
        };
        let Some(device) = device else {
            return;
        };
        let Some(Resource::Procedure(p)) = self.parse(item) else {
            return;
        };
        let Some((start, end)) = procedure_period(&p) else {
            self.issue(
                item,
                "oxygen procedure without a usable performed time: not used",
            );
            return;
        };
        let at = match end {
            _ if item.status() == "in-progress" => self.now,
            Some(None) => self.now,
            Some(Some(end)) => end.min(self.now),
            None => start,
        };
        if key == "supplemental-oxygen" {
            self.issue(
                item,
                "oxygen therapy without a device type: read as low-flow oxygen (nasal cannula)",
            );
        }
        self.facts
            .oxygen_devices
            .push(Fact::new(device, at, item.reference.clone()));
    }

    pub fn ventilation(&mut self, item: &Item<'_>, key: &str) {
        let mode = match key {
            "cpap" => VentilationMode::Cpap,
            "bipap" => VentilationMode::Bipap,
            "mechanical-ventilation" => VentilationMode::Mechanical,
            _ => return,
        };
        let Some(Resource::Procedure(p)) = self.parse(item) else {
            return;
        };
        let Some((start, end)) = procedure_period(&p) else {
            self.issue(
                item,
                "ventilation procedure without a usable performed time: not used",
            );
            return;
        };
        let end = if item.status() == "in-progress" {
            None
        } else {
            end.unwrap_or(Some(start))
        };
        let airway_protection_only = p.reason_code.iter().any(|rc| {
            let v = cc_view(rc);
            v.text
                .into_iter()
                .chain(v.codings.iter().filter_map(|c| c.display))
                .any(|t| t.to_lowercase().contains("airway protection"))
        });
        self.facts.ventilation.push(Ventilation {
            mode,
            start,
            end,
            airway_protection_only,
            source: Source(item.reference.clone()),
        });
    }

    /// A draft MedicationRequest of a checked drug → a dose order (FHIR-INPUTS.md
    /// "Orders").
    pub fn draft_order(&mut self, item: &Item<'_>, drug: Drug) {
        if !matches!(
            drug.class(),
            DrugClass::Anticytokine | DrugClass::Corticosteroid | DrugClass::GmCsf
        ) {
            return;
        }
        let Some(Resource::MedicationRequest(r)) = self.parse(item) else {
            return;
        };
        let amount = self.order_amount(item, &r);
        let dosage = r.dosage_instruction.first();
        let per_day = dosage
            .and_then(|d| d.timing.as_deref())
            .and_then(|t| t.repeat.as_ref())
            .and_then(|rep| {
                let frequency =
                    f64::from(rep.frequency.as_ref().and_then(|f| f.value).unwrap_or(1));
                let period: f64 = rep.period.as_ref()?.value.as_deref()?.trim().parse().ok()?;
                let per_unit_day = match rep.period_unit.as_ref()?.value.as_deref()? {
                    "min" => 1440.0,
                    "h" => 24.0,
                    "d" => 1.0,
                    "wk" => 1.0 / 7.0,
                    _ => return None,
                };
                (period > 0.0).then(|| frequency * per_unit_day / period)
            });
        let route = dosage
            .and_then(|d| d.route.as_deref())
            .and_then(concept_text);
        self.orders.push(DoseOrder {
            drug,
            amount,
            per_day,
            route,
            source: Source(item.reference.clone()),
        });
    }

    fn order_amount(&mut self, item: &Item<'_>, r: &MedicationRequest) -> DoseAmount {
        use fhir_r4::types::DosageDoseAndRateDose;
        let q = r
            .dosage_instruction
            .iter()
            .flat_map(|d| d.dose_and_rate.iter())
            .find_map(|dr| match &dr.dose {
                Some(DosageDoseAndRateDose::Quantity(q)) => Some(q.as_ref()),
                _ => None,
            });
        let unreadable = |this: &mut Self, reason: String| {
            this.issue(item, format!("{reason}: dose not checked"));
            DoseAmount::Unreadable(reason)
        };
        let Some(q) = q else {
            return unreadable(self, "no doseQuantity in the order".into());
        };
        let Some((value, unit)) = quantity_parts(q) else {
            return unreadable(self, "doseQuantity without a value".into());
        };
        if unit == Some("mg/kg") {
            return match value.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => DoseAmount::MgPerKg(v),
                _ => unreadable(self, format!("unreadable dose '{value} mg/kg'")),
            };
        }
        match convert(value, unit, Measure::DoseMass) {
            Ok(mg) if mg > 0.0 => DoseAmount::Mg(mg),
            Ok(mg) => unreadable(self, format!("dose {mg} mg is not positive")),
            Err(message) => unreadable(self, message),
        }
    }
}

/// Whether a dosage is as-needed (`asNeededBoolean` true or `asNeededCodeableConcept`).
fn as_needed(d: &Dosage) -> bool {
    match &d.as_needed {
        Some(DosageAsNeeded::Boolean(b)) => b.value == Some(true),
        Some(DosageAsNeeded::CodeableConcept(_)) => true,
        _ => false,
    }
}

/// Whether a dosage is an infusion: a rate, or route intravenous with a continuous
/// timing.
fn is_infusion(d: &Dosage) -> bool {
    if d.dose_and_rate.iter().any(|dr| dr.rate.is_some()) {
        return true;
    }
    let words = |cc: &CodeableConcept| {
        let v = cc_view(cc);
        v.text
            .into_iter()
            .chain(v.codings.iter().filter_map(|c| c.display))
            .chain(v.codings.iter().filter_map(|c| c.code))
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    // SNOMED CT 47625008 "Intravenous route".
    let iv = d.route.as_deref().is_some_and(|r| {
        words(r)
            .iter()
            .any(|w| w == "47625008" || w == "iv" || w.contains("intravenous"))
    });
    let continuous = d
        .timing
        .as_deref()
        .and_then(|t| t.code.as_deref())
        .is_some_and(|c| words(c).iter().any(|w| w.contains("continuous")));
    iv && continuous
}

/// Start and end of a MedicationAdministration; end `None` = an open period.
fn administration_period(
    m: &MedicationAdministration,
) -> Option<(Timestamp, Option<Option<Timestamp>>)> {
    match &m.effective {
        MedicationAdministrationEffective::DateTime(d) => {
            Some((d.value.as_deref().and_then(parse_time)?, None))
        }
        MedicationAdministrationEffective::Period(p) => period_bounds(p),
        _ => None,
    }
}

/// A Period's start (required) and end (`Some(None)`: open, still running).
fn period_bounds(p: &Period) -> Option<(Timestamp, Option<Option<Timestamp>>)> {
    let time = |d: &Option<DateTime>| {
        d.as_ref()
            .and_then(|s| s.value.as_deref())
            .and_then(parse_time)
    };
    Some((time(&p.start)?, Some(time(&p.end))))
}

/// Start and end of a Procedure, same convention as [`administration_period`].
fn procedure_period(p: &Procedure) -> Option<(Timestamp, Option<Option<Timestamp>>)> {
    match p.performed.as_ref()? {
        ProcedurePerformed::DateTime(d) => Some((d.value.as_deref().and_then(parse_time)?, None)),
        ProcedurePerformed::Period(p) => period_bounds(p),
        _ => None,
    }
}

fn consciousness(key: &str) -> Option<Consciousness> {
    Some(match key {
        "alert" => Consciousness::Alert,
        "awakens-spontaneously" => Consciousness::AwakensSpontaneously,
        "awakens-to-voice" => Consciousness::AwakensToVoice,
        "awakens-to-tactile" => Consciousness::AwakensToTactile,
        "unarousable" => Consciousness::Unarousable,
        _ => return None,
    })
}

fn seizure(key: &str) -> Option<Seizure> {
    Some(match key {
        "none" => Seizure::None,
        "resolved" => Seizure::Resolved,
        "prolonged-or-repetitive" => Seizure::ProlongedOrRepetitive,
        _ => return None,
    })
}

fn motor(key: &str) -> Option<Motor> {
    Some(match key {
        "none" => Motor::None,
        "deep-focal-weakness" => Motor::DeepFocalWeakness,
        _ => return None,
    })
}

fn edema(key: &str) -> Option<CerebralEdema> {
    Some(match key {
        "none" => CerebralEdema::None,
        "focal" => CerebralEdema::Focal,
        "diffuse" => CerebralEdema::Diffuse,
        _ => return None,
    })
}
