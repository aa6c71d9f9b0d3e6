//! Builders for tests: a patient at a fixed instant, facts placed in hours before it.

use super::facts::*;
use super::time::Timestamp;

/// The evaluation instant used by tests: 2026-11-20T12:00:00Z.
pub const NOW: Timestamp = Timestamp(1_763_640_000_000);

/// `h` hours before [`NOW`].
pub fn ago(h: f64) -> Timestamp {
    NOW.minus_hours(h)
}

/// An adult (45 y, 70 kg) infused with axi-cel 3 days ago, nothing else recorded.
pub fn adult() -> PatientFacts {
    PatientFacts {
        age_years: Some(45.0),
        weights: vec![Fact::new(
            Kg::new(70.0).expect("valid weight"),
            ago(24.0),
            "Observation/w",
        )],
        infusion: Some(Infusion {
            at: ago(72.0),
            product: Some(CarTProduct::AxicabtageneCiloleucel),
            source: Source("Procedure/cart".into()),
        }),
        ..PatientFacts::default()
    }
}

/// Adds a temperature `h` hours ago.
pub fn temp(p: &mut PatientFacts, c: f64, h: f64) {
    let n = p.temperatures.len();
    p.temperatures.push(Fact::new(
        Celsius::new(c).expect("plausible"),
        ago(h),
        format!("Observation/t{n}"),
    ));
}

/// Adds a systolic pressure `h` hours ago.
pub fn sbp(p: &mut PatientFacts, mmhg: f64, h: f64) {
    let n = p.systolic.len();
    p.systolic.push(Fact::new(
        Systolic::new(mmhg).expect("plausible"),
        ago(h),
        format!("Observation/bp{n}"),
    ));
}

/// Adds room air, a device `h` hours ago.
pub fn device(p: &mut PatientFacts, d: OxygenDevice, h: f64) {
    let n = p.oxygen_devices.len();
    p.oxygen_devices
        .push(Fact::new(d, ago(h), format!("Observation/dev{n}")));
}

/// Adds an oxygen flow `h` hours ago.
pub fn flow(p: &mut PatientFacts, lpm: f64, h: f64) {
    let n = p.oxygen_flows.len();
    p.oxygen_flows.push(Fact::new(
        LitersPerMinute::new(lpm).expect("plausible"),
        ago(h),
        format!("Observation/flow{n}"),
    ));
}

/// Adds a running drug started `h` hours ago.
pub fn running(p: &mut PatientFacts, drug: Drug, h: f64) {
    let n = p.vasoactive.len();
    p.vasoactive.push(DrugExposure {
        drug,
        start: ago(h),
        end: None,
        source: Source(format!("MedicationAdministration/va{n}")),
    });
}

/// Adds a dose given `h` hours ago.
pub fn given(p: &mut PatientFacts, drug: Drug, h: f64, mg: Option<f64>) {
    let n = p.medications_given.len();
    p.medications_given.push(MedicationGiven {
        drug,
        at: ago(h),
        dose_mg: mg,
        source: Source(format!("MedicationAdministration/g{n}")),
    });
}

/// Adds an ICE total `h` hours ago.
pub fn ice(p: &mut PatientFacts, total: i64, h: f64) {
    let n = p.neuro_scores.len();
    p.neuro_scores.push(Fact::new(
        NeuroScore::Ice(IceScore::from_total(total).expect("0-10")),
        ago(h),
        format!("Observation/ice{n}"),
    ));
}

/// Adds a level of consciousness `h` hours ago.
pub fn loc(p: &mut PatientFacts, c: Consciousness, h: f64) {
    let n = p.consciousness.len();
    p.consciousness
        .push(Fact::new(c, ago(h), format!("Observation/loc{n}")));
}

/// A febrile adult on room air with a normal pressure and ICE 10: CRS 1, ICANS 0.
pub fn febrile_adult(c: f64) -> PatientFacts {
    let mut p = adult();
    temp(&mut p, c, 2.0);
    sbp(&mut p, 120.0, 2.0);
    device(&mut p, OxygenDevice::RoomAir, 2.0);
    ice(&mut p, 10, 2.0);
    p
}
