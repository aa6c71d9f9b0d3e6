//! Criterion benchmark: grading one patient (a busy ICU day: hourly vitals, pressors,
//! oxygen, neuro checks, labs) with the pure engine.

use criterion::{Criterion, criterion_group, criterion_main};
use crs_cds::domain::*;
use std::hint::black_box;

const NOW: Timestamp = Timestamp(1_763_640_000_000);

fn icu_patient() -> PatientFacts {
    let mut p = PatientFacts {
        age_years: Some(58.0),
        weights: vec![Fact::new(
            Kg::new(82.0).expect("valid"),
            NOW.minus_hours(20.0),
            "Observation/w",
        )],
        infusion: Some(Infusion {
            at: NOW.minus_hours(96.0),
            product: Some(CarTProduct::AxicabtageneCiloleucel),
            source: Source("Procedure/cart".into()),
        }),
        ..PatientFacts::default()
    };
    for h in 0..48 {
        let at = NOW.minus_hours(h as f64 + 0.5);
        p.temperatures.push(Fact::new(
            Celsius::new(37.5 + (h % 7) as f64 * 0.2).expect("valid"),
            at,
            format!("Observation/t{h}"),
        ));
        p.systolic.push(Fact::new(
            Systolic::new(85.0 + (h % 5) as f64 * 6.0).expect("valid"),
            at,
            format!("Observation/bp{h}"),
        ));
        p.oxygen_devices.push(Fact::new(
            OxygenDevice::NasalCannula,
            at,
            format!("Observation/dev{h}"),
        ));
        p.oxygen_flows.push(Fact::new(
            LitersPerMinute::new(2.0 + (h % 4) as f64).expect("valid"),
            at,
            format!("Observation/flow{h}"),
        ));
        if h % 8 == 0 {
            p.neuro_scores.push(Fact::new(
                NeuroScore::Ice(IceScore::from_total(8).expect("valid")),
                at,
                format!("Observation/ice{h}"),
            ));
            p.consciousness.push(Fact::new(
                Consciousness::AwakensSpontaneously,
                at,
                format!("Observation/loc{h}"),
            ));
        }
        if h % 12 == 0 {
            for kind in [
                LabKind::Ferritin,
                LabKind::Crp,
                LabKind::Ast,
                LabKind::Alt,
                LabKind::Creatinine,
                LabKind::Platelets,
            ] {
                p.labs.push(Fact::new(
                    LabValue {
                        kind,
                        value: 100.0 + h as f64,
                        uln: Some(40.0),
                    },
                    at,
                    format!("Observation/{kind:?}{h}"),
                ));
            }
        }
    }
    p.vasoactive.push(DrugExposure {
        drug: Drug::Norepinephrine,
        start: NOW.minus_hours(6.0),
        end: None,
        source: Source("MedicationAdministration/ne".into()),
    });
    p.medications_given.push(MedicationGiven {
        drug: Drug::Tocilizumab,
        at: NOW.minus_hours(10.0),
        dose_mg: Some(656.0),
        source: Source("MedicationAdministration/toci".into()),
    });
    p
}

fn grading(c: &mut Criterion) {
    let p = icu_patient();
    let order = DoseOrder {
        drug: Drug::Tocilizumab,
        amount: DoseAmount::Mg(656.0),
        per_day: None,
        route: Some("IV".into()),
        source: Source("MedicationRequest/toci".into()),
    };
    let policy = Policy::default();
    c.bench_function("assess ICU patient (48 h of hourly facts)", |b| {
        b.iter(|| assess(black_box(&p), &[], NOW, &policy))
    });
    c.bench_function("assess ICU patient with a tocilizumab order", |b| {
        b.iter(|| assess(black_box(&p), std::slice::from_ref(&order), NOW, &policy))
    });
}

criterion_group!(benches, grading);
criterion_main!(benches);
