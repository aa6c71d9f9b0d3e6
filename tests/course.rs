//! The toxicity course (issue 12): the series is `assess` at every instant on the facts
//! known then; episodes, resolution and not-assessable stretches over generated
//! courses (proptest), and the synthetic stay of the benchmark.

use crs_cds::domain::*;
use proptest::prelude::*;

#[path = "../benches/support/stay.rs"]
mod stay;

const T0: Timestamp = stay::INFUSED;

fn h(hours: f64) -> Timestamp {
    T0.plus_hours(hours)
}

fn base() -> PatientFacts {
    PatientFacts {
        age_years: Some(50.0),
        weights: vec![Fact::new(
            Kg::new(70.0).expect("valid"),
            h(-10.0),
            "Observation/w",
        )],
        infusion: Some(Infusion {
            at: T0,
            product: Some(CarTProduct::AxicabtageneCiloleucel),
            source: Source("Procedure/cart".into()),
        }),
        ..PatientFacts::default()
    }
}

/// A generated course over 4 days: sparse, irregular observations (gaps longer than
/// the grading window happen), pressors with and without an end, ventilation, doses.
fn arb_facts() -> impl Strategy<Value = PatientFacts> {
    let hours = 0.0..96.0f64;
    (
        prop::collection::vec((hours.clone(), 36.0..40.5f64), 0..30),
        prop::collection::vec((hours.clone(), 60.0..140.0f64), 0..20),
        prop::collection::vec((hours.clone(), 0..4usize), 0..15),
        prop::collection::vec((hours.clone(), prop::option::of(0..11i64)), 0..12),
        prop::collection::vec((hours.clone(), prop::option::of(1.0..30.0f64)), 0..3),
        prop::collection::vec((hours.clone(), 0..3usize), 0..6),
        prop::option::of((hours.clone(), prop::option::of(1.0..40.0f64))),
    )
        .prop_map(|(temps, sbps, devs, neuro, pressors, doses, vent)| {
            let mut p = base();
            for (i, (t, c)) in temps.into_iter().enumerate() {
                p.temperatures.push(Fact::new(
                    Celsius::new(c).expect("range"),
                    h(t),
                    format!("Observation/t{i}"),
                ));
            }
            for (i, (t, s)) in sbps.into_iter().enumerate() {
                p.systolic.push(Fact::new(
                    Systolic::new(s).expect("range"),
                    h(t),
                    format!("Observation/bp{i}"),
                ));
            }
            let devices = [
                OxygenDevice::RoomAir,
                OxygenDevice::NasalCannula,
                OxygenDevice::NonRebreather,
                OxygenDevice::Bipap,
            ];
            for (i, (t, d)) in devs.into_iter().enumerate() {
                p.oxygen_devices
                    .push(Fact::new(devices[d], h(t), format!("Observation/dev{i}")));
            }
            for (i, (t, ice)) in neuro.into_iter().enumerate() {
                let score = match ice {
                    Some(v) => NeuroScore::Ice(IceScore::from_total(v).expect("range")),
                    None => NeuroScore::NotAssessable,
                };
                p.neuro_scores
                    .push(Fact::new(score, h(t), format!("Observation/ice{i}")));
            }
            for (i, (t, len)) in pressors.into_iter().enumerate() {
                p.vasoactive.push(DrugExposure {
                    drug: Drug::Norepinephrine,
                    start: h(t),
                    end: len.map(|l| h(t + l)),
                    source: Source(format!("MedicationAdministration/ne{i}")),
                });
            }
            let drugs = [Drug::Tocilizumab, Drug::Dexamethasone, Drug::Acetaminophen];
            for (i, (t, d)) in doses.into_iter().enumerate() {
                p.medications_given.push(MedicationGiven {
                    drug: drugs[d],
                    at: h(t),
                    dose_mg: Some(10.0),
                    source: Source(format!("MedicationAdministration/m{i}")),
                });
            }
            if let Some((t, len)) = vent {
                p.ventilation.push(Ventilation {
                    mode: VentilationMode::Mechanical,
                    start: h(t),
                    end: len.map(|l| h(t + l)),
                    airway_protection_only: false,
                    source: Source("Procedure/vent".into()),
                });
            }
            p
        })
}

fn state(a: &Assessment) -> (GradeState, GradeState) {
    let crs = match a.crs.grade {
        None => GradeState::NotAssessable,
        Some(g) if a.crs.lower_bound => GradeState::AtLeast(g),
        Some(g) => GradeState::Graded(g),
    };
    let icans = a
        .icans
        .grade
        .map_or(GradeState::NotAssessable, GradeState::Graded);
    (crs, icans)
}

fn arb_states() -> impl Strategy<Value = Vec<GradeState>> {
    prop::collection::vec(
        prop_oneof![
            6 => Just(GradeState::Graded(0)),
            2 => (1..5u8).prop_map(GradeState::Graded),
            1 => (0..3u8).prop_map(GradeState::AtLeast),
            1 => Just(GradeState::NotAssessable),
        ],
        1..200,
    )
}

fn points(states: &[GradeState]) -> Vec<CoursePoint> {
    states
        .iter()
        .enumerate()
        .map(|(i, s)| CoursePoint {
            at: h(i as f64),
            crs: *s,
            icans: GradeState::Graded(0),
            crs_evidence: Vec::new(),
            icans_evidence: Vec::new(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_series_at_t_is_assess_at_t_on_the_facts_known_at_t(facts in arb_facts(), until in 24.0..100.0f64) {
        let policy = Policy::default();
        let params = CourseParams::default();
        let until = h(until);
        let fast = series(&facts, T0, until, &policy, &params);
        let ts = instants(&facts, T0, until, &policy, &params);
        prop_assert_eq!(fast.len(), ts.len());
        for (p, t) in fast.iter().zip(&ts) {
            let a = assess(&facts_known_at(&facts, *t), &[], *t, &policy);
            prop_assert_eq!(p.at, *t);
            prop_assert_eq!((p.crs, p.icans), state(&a), "at {:?}", t);
        }
        prop_assert_eq!(fast, series_naive(&facts, T0, until, &policy, &params));
    }

    #[test]
    fn the_series_is_graded_at_least_hourly_and_at_every_fact(facts in arb_facts()) {
        let until = h(96.0);
        let ts = instants(&facts, T0, until, &Policy::default(), &CourseParams::default());
        for pair in ts.windows(2) {
            prop_assert!(pair[1].0 - pair[0].0 <= 3_600_000);
        }
        for f in &facts.temperatures {
            prop_assert!(ts.contains(&f.at));
        }
        for e in &facts.vasoactive {
            prop_assert!(ts.contains(&e.start));
        }
    }

    #[test]
    fn episodes_never_overlap_and_resolve_only_after_the_configured_grade_0_run(
        states in arb_states(),
        resolution_hours in 1.0..30.0f64,
    ) {
        let resolution_hours = resolution_hours.round();
        let params = CourseParams { resolution_hours, ..CourseParams::default() };
        let series = points(&states);
        let until = h((states.len() - 1) as f64);
        let c = syndrome_course(Syndrome::Crs, &series, until, &params);
        for pair in c.episodes.windows(2) {
            let end = pair[0].resolution.expect("only the last episode may be ongoing");
            prop_assert!(end <= pair[1].onset);
        }
        for e in &c.episodes {
            prop_assert!(e.worst >= 1);
            if let Some(r) = e.resolution {
                // Every instant from the resolution for `resolution_hours` is exactly 0.
                let from = ((r.0 - T0.0) / 3_600_000) as usize;
                let n = resolution_hours as usize;
                prop_assert!(from + n <= states.len());
                for s in &states[from..from + n] {
                    prop_assert_eq!(*s, GradeState::Graded(0));
                }
                prop_assert!(r > e.onset);
            }
        }
    }

    #[test]
    fn not_assessable_instants_never_count_as_grade_0(states in arb_states()) {
        let series = points(&states);
        let until = h((states.len() - 1) as f64);
        let c = syndrome_course(Syndrome::Crs, &series, until, &CourseParams::default());
        let steps = states.len() - 1;
        let exact0 = states[..steps].iter().filter(|s| **s == GradeState::Graded(0)).count();
        let na = states[..steps].iter().filter(|s| **s == GradeState::NotAssessable).count();
        prop_assert_eq!(c.hours_at_grade[0], exact0 as f64);
        prop_assert_eq!(c.not_assessable_hours(), na as f64);
        let total: f64 = c.hours_at_grade.iter().chain(&c.hours_at_least).sum::<f64>()
            + c.not_assessable_hours();
        prop_assert_eq!(total, steps as f64);
    }
}

#[test]
fn the_benchmark_stay_of_30_days_holds_about_5000_facts() {
    let n = stay::fact_count(&stay::stay(30));
    assert!((4_500..=5_500).contains(&n), "{n} facts");
}

#[test]
fn the_synthetic_stay_gives_crs_from_day_1_and_icans_from_day_5() {
    let facts = stay::stay(10);
    let until = h(240.0);
    let c = course(
        &facts,
        T0,
        until,
        &Policy::default(),
        &CourseParams::default(),
    );
    assert_eq!(c.crs.episodes.len(), 1, "{:?}", c.crs.episodes);
    let crs = &c.crs.episodes[0];
    // Fever from h 30; norepinephrine h 44.5-54: grade 3 from 44.5 h.
    assert_eq!(crs.onset, h(30.0));
    assert_eq!(crs.worst, 3);
    assert_eq!(crs.worst_at, h(44.5));
    assert!(!crs.onset_censored);
    assert!(crs.resolution.is_some());
    assert_eq!(c.icans.episodes.len(), 1);
    let icans = &c.icans.episodes[0];
    assert_eq!(icans.onset, h(120.0));
    // ICE 6 (h 120) is grade 2, ICE 2 (h 144) grade 3 (RULES.md A.2).
    assert_eq!(icans.worst, 3);
    assert_eq!(icans.worst_at, h(144.0));
    assert_eq!(c.treatment.tocilizumab.len(), 2);
    assert_eq!(c.treatment.tocilizumab_in(crs, until), 2);
    assert_eq!(c.treatment.steroids.days_on_steroids, 2);
    assert!((c.treatment.steroids.dexamethasone_equivalent_mg - 80.0).abs() < 1e-9);
    assert!((c.treatment.vasopressor_hours - 9.5).abs() < 1e-9);
    assert_eq!(
        c,
        course_naive(
            &facts,
            T0,
            until,
            &Policy::default(),
            &CourseParams::default()
        )
    );
}
