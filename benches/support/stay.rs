//! A synthetic axi-cel stay for the course benchmark and tests: hourly temperature,
//! systolic pressure, oxygen device, flow and FiO2, 4-hourly ICE and level of
//! consciousness, six labs every 6 h; CRS from day 1 (fever, hypotension on
//! norepinephrine, nasal cannula, tocilizumab × 2, dexamethasone 10 mg q6h on days 3-4)
//! and ICANS from day 5 (ICE 6, then 2, recovering by day 8). About 156 facts a day:
//! a 30-day stay has about 4,700.

use crs_cds::domain::*;

/// Day 0: 2026-11-01T08:00:00Z.
pub const INFUSED: Timestamp = Timestamp(1_761_984_000_000);

fn at(hours: f64) -> Timestamp {
    INFUSED.plus_hours(hours)
}

/// The stay, `days` long from the infusion.
pub fn stay(days: u32) -> PatientFacts {
    let mut p = PatientFacts {
        age_years: Some(58.0),
        weights: vec![Fact::new(
            Kg::new(82.0).expect("valid"),
            at(-20.0),
            "Observation/w",
        )],
        infusion: Some(Infusion {
            at: INFUSED,
            product: Some(CarTProduct::AxicabtageneCiloleucel),
            source: Source("Procedure/cart".into()),
        }),
        ..PatientFacts::default()
    };
    for h in 0..(days * 24) {
        let hf = f64::from(h);
        let t = at(hf);
        // CRS: fever from day 1 06:00 (h 30) to day 3 (h 72), masked after tocilizumab.
        let temp = if (30..60).contains(&h) { 39.2 } else { 37.0 };
        let sbp = if (40..56).contains(&h) { 82.0 } else { 118.0 };
        let on_cannula = (36..96).contains(&h);
        p.temperatures.push(Fact::new(
            Celsius::new(temp).expect("valid"),
            t,
            format!("Observation/t{h}"),
        ));
        p.systolic.push(Fact::new(
            Systolic::new(sbp).expect("valid"),
            t,
            format!("Observation/bp{h}"),
        ));
        p.oxygen_devices.push(Fact::new(
            if on_cannula {
                OxygenDevice::NasalCannula
            } else {
                OxygenDevice::RoomAir
            },
            t,
            format!("Observation/dev{h}"),
        ));
        p.oxygen_flows.push(Fact::new(
            LitersPerMinute::new(if on_cannula { 3.0 } else { 0.0 }).expect("valid"),
            t,
            format!("Observation/flow{h}"),
        ));
        p.fio2.push(Fact::new(
            if on_cannula { 0.32 } else { 0.21 },
            t,
            format!("Observation/fio2{h}"),
        ));
        if h % 4 == 0 {
            // ICANS: day 5 (h 120) to day 8 (h 192).
            let ice = match h {
                120..144 => 6,
                144..168 => 2,
                168..192 => 8,
                _ => 10,
            };
            p.neuro_scores.push(Fact::new(
                NeuroScore::Ice(IceScore::from_total(ice).expect("valid")),
                t,
                format!("Observation/ice{h}"),
            ));
            p.consciousness.push(Fact::new(
                Consciousness::Alert,
                t,
                format!("Observation/loc{h}"),
            ));
        }
        if h % 6 == 2 {
            for (i, (kind, value)) in [
                (LabKind::Ferritin, 900.0),
                (LabKind::Crp, 80.0),
                (LabKind::Platelets, 90.0),
                (LabKind::Anc, 1.2),
                (LabKind::Fibrinogen, 3.1),
                (LabKind::Ldh, 300.0),
            ]
            .into_iter()
            .enumerate()
            {
                p.labs.push(Fact::new(
                    LabValue {
                        kind,
                        value,
                        uln: None,
                    },
                    t,
                    format!("Observation/lab{h}-{i}"),
                ));
            }
        }
    }
    if days >= 3 {
        p.vasoactive.push(DrugExposure {
            drug: Drug::Norepinephrine,
            start: at(44.5),
            end: Some(at(54.0)),
            source: Source("MedicationAdministration/ne1".into()),
        });
    }
    let mut give = |drug: Drug, hours: f64, mg: f64, id: String| {
        if hours < f64::from(days * 24) {
            p.medications_given.push(MedicationGiven {
                drug,
                at: at(hours),
                dose_mg: Some(mg),
                source: Source(format!("MedicationAdministration/{id}")),
            });
        }
    };
    give(Drug::Acetaminophen, 31.0, 1000.0, "apap1".into());
    give(Drug::Tocilizumab, 34.0, 656.0, "toci1".into());
    give(Drug::Tocilizumab, 46.0, 656.0, "toci2".into());
    for i in 0..8 {
        give(
            Drug::Dexamethasone,
            72.0 + 6.0 * f64::from(i),
            10.0,
            format!("dex{i}"),
        );
    }
    p
}

/// How many facts the stay holds.
pub fn fact_count(p: &PatientFacts) -> usize {
    p.temperatures.len()
        + p.systolic.len()
        + p.oxygen_devices.len()
        + p.oxygen_flows.len()
        + p.fio2.len()
        + p.neuro_scores.len()
        + p.consciousness.len()
        + p.labs.len()
        + p.weights.len()
        + p.vasoactive.len()
        + p.medications_given.len()
}
