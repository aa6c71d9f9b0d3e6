//! Invariants of the grading rules, checked over generated patients (proptest).

use crs_cds::domain::*;
use proptest::prelude::*;

const NOW: Timestamp = Timestamp(1_763_640_000_000);

fn at() -> Timestamp {
    NOW.minus_hours(1.0)
}

const PRESSORS: [Drug; 6] = [
    Drug::Norepinephrine,
    Drug::Epinephrine,
    Drug::Phenylephrine,
    Drug::Dopamine,
    Drug::Vasopressin,
    Drug::AngiotensinII,
];

/// Oxygen support from least to most (RULES.md A.1 hypoxia table), with a flow.
const SUPPORT: [(OxygenDevice, f64); 8] = [
    (OxygenDevice::RoomAir, 0.0),
    (OxygenDevice::NasalCannula, 2.0),
    (OxygenDevice::NasalCannula, 6.0),
    (OxygenDevice::HighFlowNasalCannula, 6.5),
    (OxygenDevice::HighFlowNasalCannula, 40.0),
    (OxygenDevice::NonRebreather, 15.0),
    (OxygenDevice::Bipap, 0.0),
    (OxygenDevice::MechanicalVentilation, 0.0),
];

fn patient(
    temp: f64,
    sbp: f64,
    age: f64,
    pressors: &[usize],
    support: usize,
    treated: bool,
) -> PatientFacts {
    let mut p = PatientFacts {
        age_years: Some(age),
        infusion: Some(Infusion {
            at: NOW.minus_hours(72.0),
            product: None,
            source: Source("Procedure/cart".into()),
        }),
        ..PatientFacts::default()
    };
    p.temperatures.push(Fact::new(
        Celsius::new(temp).expect("plausible"),
        at(),
        "Observation/t",
    ));
    p.systolic.push(Fact::new(
        Systolic::new(sbp).expect("plausible"),
        at(),
        "Observation/bp",
    ));
    for (i, d) in pressors.iter().enumerate() {
        p.vasoactive.push(DrugExposure {
            drug: PRESSORS[*d],
            start: NOW.minus_hours(2.0),
            end: None,
            source: Source(format!("MedicationAdministration/{i}")),
        });
    }
    set_support(&mut p, support);
    if treated {
        p.medications_given.push(MedicationGiven {
            drug: Drug::Tocilizumab,
            at: NOW.minus_hours(5.0),
            dose_mg: Some(560.0),
            source: Source("MedicationAdministration/toci".into()),
        });
    }
    p
}

fn set_support(p: &mut PatientFacts, support: usize) {
    let (device, flow) = SUPPORT[support];
    p.oxygen_devices = vec![Fact::new(device, at(), "Observation/dev")];
    p.oxygen_flows = vec![Fact::new(
        LitersPerMinute::new(flow).expect("plausible"),
        at(),
        "Observation/flow",
    )];
}

fn crs_grade(p: &PatientFacts) -> Option<u8> {
    assess(p, &[], NOW, &Policy::default()).crs.grade
}

proptest! {
    #[test]
    fn adding_a_vasopressor_never_lowers_the_crs_grade(
        temp in 36.0f64..41.0, sbp in 60.0f64..140.0, age in 1.0f64..80.0,
        pressors in proptest::collection::vec(0usize..6, 0..3), extra in 0usize..6,
        support in 0usize..8, treated in any::<bool>(),
    ) {
        let before = patient(temp, sbp, age, &pressors, support, treated);
        let mut after = before.clone();
        after.vasoactive.push(DrugExposure { drug: PRESSORS[extra], start: NOW.minus_hours(1.5), end: None, source: Source("MedicationAdministration/extra".into()) });
        prop_assert!(crs_grade(&after) >= crs_grade(&before));
    }

    #[test]
    fn more_oxygen_support_never_lowers_the_crs_grade(
        temp in 36.0f64..41.0, sbp in 60.0f64..140.0, age in 1.0f64..80.0,
        pressors in proptest::collection::vec(0usize..6, 0..3),
        low in 0usize..8, step in 0usize..8, treated in any::<bool>(),
    ) {
        let high = (low + step).min(SUPPORT.len() - 1);
        let before = patient(temp, sbp, age, &pressors, low, treated);
        let mut after = before.clone();
        set_support(&mut after, high);
        prop_assert!(crs_grade(&after) >= crs_grade(&before));
    }

    #[test]
    fn the_icans_grade_equals_the_worst_domain(
        ice in 0i64..=10, loc in 0usize..5, seizure in 0usize..3, motor in any::<bool>(), edema in 0usize..3,
    ) {
        let levels = [Consciousness::Alert, Consciousness::AwakensSpontaneously, Consciousness::AwakensToVoice, Consciousness::AwakensToTactile, Consciousness::Unarousable];
        let seizures = [Seizure::None, Seizure::Resolved, Seizure::ProlongedOrRepetitive];
        let edemas = [CerebralEdema::None, CerebralEdema::Focal, CerebralEdema::Diffuse];
        let m = if motor { Motor::DeepFocalWeakness } else { Motor::None };
        let mut p = patient(37.0, 120.0, 40.0, &[], 0, false);
        p.neuro_scores.push(Fact::new(NeuroScore::Ice(IceScore::from_total(ice).expect("0-10")), at(), "Observation/ice"));
        p.consciousness.push(Fact::new(levels[loc], at(), "Observation/loc"));
        p.seizures.push(Fact::new(seizures[seizure], at(), "Observation/sz"));
        p.motor.push(Fact::new(m, at(), "Observation/motor"));
        p.cerebral_edema.push(Fact::new(edemas[edema], at(), "Observation/edema"));
        let expected = ice_grade(ice as u8)
            .max(consciousness_grade(levels[loc]))
            .max(seizure_grade(seizures[seizure]))
            .max(motor_grade(m))
            .max(edema_grade(edemas[edema]));
        prop_assert_eq!(assess(&p, &[], NOW, &Policy::default()).icans.grade, Some(expected));
    }

    #[test]
    fn the_tocilizumab_maximum_never_exceeds_800_mg_from_30_kg(weight in 30.0f64..400.0) {
        let max = tocilizumab_max_dose_mg(weight);
        prop_assert!(max <= 800.0);
        // Rounded half up to 0.1 mg (RULES.md §7 S7): at most 0.05 mg above 8 mg/kg.
        prop_assert!(max <= 8.0 * weight + 0.05 + 1e-9);
    }

    #[test]
    fn the_tocilizumab_maximum_under_30_kg_is_12_mg_per_kg_rounded_to_a_tenth(weight in 0.5f64..29.999) {
        let max = tocilizumab_max_dose_mg(weight);
        prop_assert!((max - 12.0 * weight).abs() <= 0.05 + 1e-9);
        prop_assert!(((max * 10.0).round() - max * 10.0).abs() < 1e-6, "{max} is not a multiple of 0.1 mg");
    }

    #[test]
    fn an_order_of_exactly_the_rounded_maximum_always_passes(weight in 1.0f64..200.0) {
        let max = tocilizumab_max_dose_mg(weight);
        let mut p = PatientFacts {
            age_years: Some(30.0),
            weights: vec![Fact::new(Kg::new(weight).expect("weight"), at(), "Observation/w")],
            ..PatientFacts::default()
        };
        p.infusion = Some(Infusion { at: NOW.minus_hours(72.0), product: None, source: Source("Procedure/c".into()) });
        let order = DoseOrder {
            drug: Drug::Tocilizumab,
            amount: DoseAmount::Mg(max),
            per_day: None,
            route: Some("IV".into()),
            source: Source("MedicationRequest/o".into()),
        };
        prop_assert_eq!(check_dose(&order, &p, NOW, &Policy::default()).issues, vec![]);
    }

    /// RULES.md §7 S1, S2: no recommendation contradicts the flags.
    #[test]
    fn no_recommendation_contradicts_the_tocilizumab_and_steroid_flags(
        crs in proptest::option::of(0u8..=4), icans in proptest::option::of(0u8..=4),
        product in 0usize..3, hlh in any::<bool>(), antifungal in any::<bool>(), gm in any::<bool>(),
    ) {
        let product = [None, Some(CarTProduct::AxicabtageneCiloleucel), Some(CarTProduct::Tisagenlecleucel)][product];
        // The flags as assess derives them from the grades (RULES.md A.3), plus the others.
        let mut flags = Vec::new();
        if crs.is_some_and(|g| g >= 2) { flags.push(Flag::TocilizumabIndicated); }
        if crs.is_some_and(|g| g >= 3) || icans.is_some_and(|g| g >= 2) { flags.push(Flag::SteroidsIndicated); }
        if hlh { flags.push(Flag::HlhSuspected); }
        if icans.is_some_and(|g| g >= 2) && crs.is_none_or(|g| g < 2) { flags.push(Flag::TocilizumabWithIcans); }
        if gm { flags.push(Flag::GmCsfAvoid); }
        if antifungal || flags.contains(&Flag::SteroidsIndicated) { flags.push(Flag::AntifungalProphylaxis); }
        let recs = recommendations(crs, icans, product, &flags);
        let lower = |r: &Recommendation| r.text.to_lowercase();
        let toci_lines: Vec<String> = recs.iter().filter(|r| r.scope == Scope::Grade).map(lower)
            .filter(|t| t.contains("tocilizumab") && !t.starts_with("tocilizumab not recommended")).collect();
        if flags.contains(&Flag::TocilizumabWithIcans) {
            prop_assert!(toci_lines.is_empty(), "tocilizumab advised with ICANS >= 2 and CRS <= 1: {:?}", toci_lines);
            prop_assert!(recs.iter().any(|r| r.text == TOCILIZUMAB_NOT_RECOMMENDED));
        }
        if !flags.contains(&Flag::TocilizumabIndicated) {
            for t in &toci_lines {
                prop_assert!(t.contains("consider"), "tocilizumab as an instruction below CRS 2: {}", t);
            }
        } else {
            prop_assert!(!recs.iter().any(|r| r.text == TOCILIZUMAB_NOT_RECOMMENDED));
        }
        if !flags.contains(&Flag::SteroidsIndicated) {
            for r in recs.iter().filter(|r| r.scope == Scope::Grade) {
                let t = lower(r);
                if t.contains("dexamethasone") || t.contains("methylprednisolone") {
                    prop_assert!(t.contains("consider") || t.contains(" may "), "steroids as an instruction without steroids-indicated: {}", t);
                }
            }
        }
    }
}
