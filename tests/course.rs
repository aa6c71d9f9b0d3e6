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
            crs_findings: Vec::new(),
            icans_findings: Vec::new(),
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

mod fixtures {
    //! The fixture courses (fixtures/courses): hand-derived episodes through the engine,
    //! the CLI and the grading card.

    use crs_cds::adapter::{self, Document, Terminology};
    use crs_cds::domain::{self, Course, CourseParams, Policy, Timestamp};
    use crs_cds::protocol::cards::{CardInput, cards};
    use crs_cds::protocol::discovery::Hook;
    use serde_json::{Value, json};
    use std::path::PathBuf;

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/courses")
    }

    fn cases() -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir().join("requests"))
            .expect("fixtures/courses/requests")
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(String::from)
            })
            .collect();
        v.sort();
        v
    }

    fn load(case: &str) -> (Value, Value) {
        let read = |p: PathBuf| -> Value {
            serde_json::from_str(&std::fs::read_to_string(&p).expect("readable")).expect("JSON")
        };
        (
            read(dir().join("requests").join(format!("{case}.json"))),
            read(dir().join("expected").join(format!("{case}.json"))),
        )
    }

    fn instant(s: &str) -> Timestamp {
        Timestamp(
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("RFC 3339")
                .timestamp_millis(),
        )
    }

    fn mapped(request: &Value, until: Timestamp) -> adapter::Mapped {
        let texts: Vec<(String, String)> = request["prefetch"]
            .as_object()
            .expect("prefetch")
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        let docs: Vec<Document<'_>> = texts
            .iter()
            .map(|(o, j)| Document { origin: o, json: j })
            .collect();
        adapter::map_documents_within(&docs, None, &[], until, &Terminology::embedded(), 87_600.0)
    }

    fn course_of(case: &str) -> (Course, adapter::Mapped, Value) {
        let (request, expected) = load(case);
        let until = instant(expected["until"].as_str().expect("until"));
        let m = mapped(&request, until);
        assert!(m.issues.is_empty(), "{case}: {:?}", m.issues);
        let infused = m.facts.infusion.as_ref().expect("infusion").at;
        let c = domain::course(
            &m.facts,
            infused,
            until,
            &Policy::default(),
            &CourseParams::default(),
        );
        (c, m, expected)
    }

    /// The episode fields the expectations name, from the course JSON shape.
    fn episodes(v: &Value) -> Vec<Value> {
        v.as_array()
            .expect("episodes")
            .iter()
            .map(|e| {
                json!({
                    "syndrome": e["syndrome"],
                    "onset": e["onset"],
                    "worstGrade": e["worstGrade"],
                    "worstAt": e["worstAt"],
                    "resolution": e["resolution"],
                })
            })
            .collect()
    }

    fn treatment_matches(case: &str, expected: &Value, actual: &Value, icans_na: f64) {
        for (k, v) in expected.as_object().expect("treatment") {
            if k == "icansNotAssessableHours" {
                assert_eq!(Some(icans_na), v.as_f64(), "{case}: {k}");
            } else {
                assert_eq!(&actual[k], v, "{case}: treatment {k}");
            }
        }
    }

    #[test]
    fn there_are_five_fixture_courses() {
        assert_eq!(
            cases(),
            [
                "axi-cel-typical",
                "child-capd",
                "masked-fever-after-tocilizumab",
                "resolved-and-recurring-crs",
                "sedated-not-assessable"
            ]
        );
    }

    #[test]
    fn fixture_courses_give_the_hand_derived_episodes_through_the_engine() {
        for case in cases() {
            let (c, _, expected) = course_of(&case);
            let ext = crs_cds::protocol::course::course_extension(&c);
            assert_eq!(
                episodes(&ext["episodes"]),
                episodes(&expected["episodes"]),
                "{case}: {}",
                expected["why"]
            );
            treatment_matches(
                &case,
                &expected["treatment"],
                &ext["treatment"],
                c.icans.not_assessable_hours(),
            );
            let line = crs_cds::protocol::course::course_line(&c).expect("a line");
            for part in expected["lineContains"].as_array().expect("lineContains") {
                let part = part.as_str().expect("text");
                assert!(line.contains(part), "{case}: {line:?} lacks {part:?}");
            }
        }
    }

    #[test]
    fn fixture_courses_give_the_hand_derived_episodes_through_the_cli() {
        for case in cases() {
            let (_, expected) = load(&case);
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_crs-cds"))
                .args(["course", "--json", "--at"])
                .arg(expected["until"].as_str().expect("until"))
                .arg(dir().join("requests").join(format!("{case}.json")))
                .output()
                .expect("runs");
            assert_eq!(
                out.status.code(),
                Some(0),
                "{case}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
            let mut all = v["crs"]["episodes"].as_array().cloned().unwrap_or_default();
            all.extend(
                v["icans"]["episodes"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            assert_eq!(
                episodes(&Value::Array(all)),
                episodes(&expected["episodes"]),
                "{case}"
            );
            assert!(!v["series"].as_array().expect("series").is_empty());
        }
    }

    #[test]
    fn fixture_courses_reach_the_patient_view_card_line_and_extension() {
        for case in cases() {
            let (c, m, expected) = course_of(&case);
            let a = domain::assess(&m.facts, &[], c.until, &Policy::default());
            let input = CardInput {
                hook: Hook::PatientView,
                patient_id: "pt",
                assessment: &a,
                orders: &[],
                data_issues: &[],
                draft_orders: None,
                course: Some(&c),
            };
            let card = serde_json::to_value(&cards(&input)[0]).expect("card JSON");
            let ext = &card["extension"]["org.crs-cds"]["course"];
            assert_eq!(
                episodes(&ext["episodes"]),
                episodes(&expected["episodes"]),
                "{case}"
            );
            assert!(
                ext.get("series").is_none(),
                "the series stays out of the card"
            );
            let detail = card["detail"].as_str().expect("detail");
            for part in expected["lineContains"].as_array().expect("lineContains") {
                assert!(
                    detail.contains(part.as_str().expect("text")),
                    "{case}: {detail}"
                );
            }
        }
    }
}

mod outputs {
    //! The CLI's SVG chart and the registry FHIR output, checked structurally.

    use serde_json::Value;
    use std::collections::HashSet;
    use std::path::PathBuf;
    use std::process::Command;

    fn fixture(case: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/courses/requests")
            .join(format!("{case}.json"))
    }

    fn run(args: &[&str], case: &str) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_crs-cds"))
            .arg("course")
            .args(args)
            .arg(fixture(case))
            .output()
            .expect("runs")
    }

    #[test]
    fn course_refuses_a_file_that_is_not_json_with_exit_code_2() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("broken.json");
        std::fs::write(&file, "{ oops").expect("written");
        let out = Command::new(env!("CARGO_BIN_EXE_crs-cds"))
            .arg("course")
            .arg(&file)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2));
    }

    #[test]
    fn the_svg_chart_dashes_icans_hatches_not_assessable_and_titles_every_point() {
        let dir = tempfile::tempdir().expect("temp dir");
        let svg = dir.path().join("c.svg");
        let out = run(
            &["--json", "--svg", svg.to_str().expect("utf-8 path")],
            "sedated-not-assessable",
        );
        assert_eq!(out.status.code(), Some(0));
        let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let text = std::fs::read_to_string(&svg).expect("svg written");
        assert!(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(text.trim_end().ends_with("</svg>"));
        assert!(
            text.contains("stroke-dasharray"),
            "ICANS is dashed for grey scale"
        );
        assert!(
            text.contains("url(#hatch)"),
            "not-assessable stretches are hatched"
        );
        assert!(text.contains("ICANS not assessable from 2026-11-06T06:00:00Z"));
        // A titled mark per assessable point of each syndrome.
        let series = json["series"].as_array().expect("series");
        let assessable = series.iter().filter(|p| !p["crs"].is_null()).count()
            + series.iter().filter(|p| !p["icans"].is_null()).count();
        let marks = text.matches("<circle").count();
        assert!(marks > assessable, "{marks} marks for {assessable} points");
        assert!(
            text.contains("ICANS grade 3 at 2026-11-06T02:00:00Z (day 4); evidence: Observation/")
        );
        // Each dexamethasone dose is a square with its own tooltip.
        assert_eq!(text.matches("<title>dexamethasone 10.0 mg").count(), 18);
    }

    #[test]
    fn the_registry_bundle_has_a_valid_condition_and_grade_observation_per_episode() {
        let allowed: HashSet<&str> = crs_cds::protocol::course::ICD10_CODES.into_iter().collect();
        let vs: Value = serde_json::from_str(
            &std::fs::read_to_string(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("fhir-profiles/ValueSet-cart-toxicity-conditions.json"),
            )
            .expect("value set"),
        )
        .expect("JSON");
        let in_vs: HashSet<String> = vs["compose"]["include"][0]["concept"]
            .as_array()
            .expect("concepts")
            .iter()
            .filter_map(|c| c["code"].as_str().map(String::from))
            .collect();
        assert_eq!(
            in_vs,
            allowed
                .iter()
                .map(|s| s.to_string())
                .collect::<HashSet<_>>(),
            "the profile's value set and the emitted codes agree"
        );
        let request: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture("axi-cel-typical")).expect("read"),
        )
        .expect("JSON");
        let source_refs: HashSet<String> = request["prefetch"]
            .as_object()
            .expect("prefetch")
            .values()
            .filter_map(|b| b["entry"].as_array())
            .flatten()
            .map(|e| {
                format!(
                    "{}/{}",
                    e["resource"]["resourceType"].as_str().unwrap_or_default(),
                    e["resource"]["id"].as_str().unwrap_or_default()
                )
            })
            .collect();

        let out = run(
            &["--fhir", "--at", "2026-11-11T10:00:00Z"],
            "axi-cel-typical",
        );
        assert_eq!(out.status.code(), Some(0));
        let bundle: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "collection");
        let entries = bundle["entry"].as_array().expect("entries");
        let urls: HashSet<&str> = entries
            .iter()
            .filter_map(|e| e["fullUrl"].as_str())
            .collect();
        assert_eq!(urls.len(), entries.len(), "fullUrls are unique");
        let conditions: Vec<&Value> = entries
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == "Condition")
            .collect();
        assert_eq!(
            conditions.len(),
            2,
            "one Condition per episode (CRS, ICANS)"
        );
        let mut codes = Vec::new();
        for c in &conditions {
            assert_eq!(
                c["meta"]["profile"][0],
                crs_cds::protocol::course::CONDITION_PROFILE
            );
            let coding = &c["code"]["coding"][0];
            assert_eq!(coding["system"], "http://hl7.org/fhir/sid/icd-10-cm");
            let code = coding["code"].as_str().expect("code");
            assert!(allowed.contains(code), "{code}");
            codes.push(code.to_string());
            assert_eq!(c["subject"]["reference"], "Patient/pt");
            assert!(c["onsetDateTime"].is_string());
            assert!(c["abatementDateTime"].is_string(), "both episodes resolved");
            assert_eq!(c["clinicalStatus"]["coding"][0]["code"], "resolved");
            assert_eq!(c["verificationStatus"]["coding"][0]["code"], "provisional");
            assert_eq!(c["stage"][0]["summary"]["text"], "ASTCT 2019 grade 3");
            // The stage's assessment resolves to a grade Observation in the Bundle.
            let target = c["stage"][0]["assessment"][0]["reference"]
                .as_str()
                .expect("ref");
            let obs = entries
                .iter()
                .find(|e| e["fullUrl"] == target)
                .map(|e| &e["resource"])
                .expect("the assessment reference resolves in the Bundle");
            assert_eq!(obs["resourceType"], "Observation");
            assert_eq!(obs["valueInteger"], 3);
            assert_eq!(obs["status"], "preliminary");
            assert!(
                obs["meta"]["profile"][0]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/crs-grade") || p.ends_with("/icans-grade"))
            );
            // Evidence points at resources of the record the course was built from.
            let detail = c["evidence"][0]["detail"].as_array().expect("evidence");
            assert!(!detail.is_empty());
            for d in detail {
                let r = d["reference"].as_str().expect("reference");
                assert!(source_refs.contains(r), "{r} is not in the record");
            }
        }
        codes.sort();
        assert_eq!(codes, ["D89.833", "G92.03"]);
    }

    #[test]
    fn the_registry_summary_reports_onset_maximum_grade_resolution_and_therapies() {
        let out = run(
            &["--json", "--at", "2026-11-11T10:00:00Z"],
            "axi-cel-typical",
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let r = &v["registry"];
        assert_eq!(r["crs"]["occurred"], "yes");
        assert_eq!(r["crs"]["onsetDate"], "2026-11-02");
        assert_eq!(r["crs"]["maxGrade"], 3);
        assert_eq!(r["crs"]["resolutionDate"], "2026-11-06");
        assert_eq!(r["icans"]["maxGrade"], 3);
        assert_eq!(r["icans"]["resolutionDate"], "2026-11-09");
        assert_eq!(r["therapies"]["tocilizumab"]["doses"], 2);
        assert_eq!(
            r["therapies"]["corticosteroids"]["dexamethasoneEquivalentMg"],
            60
        );
        assert_eq!(r["therapies"]["vasopressors"]["given"], true);
        assert_eq!(r["product"], "axicabtagene-ciloleucel");
    }
}

/// Drops every observation before `from` (a prefetch that holds recent data only).
fn recent_only(mut p: PatientFacts, from: Timestamp) -> PatientFacts {
    p.temperatures.retain(|f| f.at >= from);
    p.systolic.retain(|f| f.at >= from);
    p.oxygen_devices.retain(|f| f.at >= from);
    p.oxygen_flows.retain(|f| f.at >= from);
    p.fio2.retain(|f| f.at >= from);
    p.neuro_scores.retain(|f| f.at >= from);
    p.consciousness.retain(|f| f.at >= from);
    p.labs.retain(|f| f.at >= from);
    p
}

#[test]
fn a_course_on_recent_data_only_says_from_which_day_and_that_earlier_data_was_not_sent() {
    let facts = recent_only(stay::stay(10), h(125.0));
    let c = course(
        &facts,
        T0,
        h(240.0),
        &Policy::default(),
        &CourseParams::default(),
    );
    assert_eq!(c.data_gap_day, Some(5));
    let line = crs_cds::protocol::course::course_line(&c).expect("line");
    assert!(
        line.starts_with("course from day 5: earlier data not sent; "),
        "{line}"
    );
    // Days 0-5 without vital signs are not assessable or a lower bound (treatment was
    // sent), never grade 0.
    assert!(c.icans.not_assessable_hours() >= 125.0);
    assert!(c.crs.not_assessable_hours() + c.crs.hours_at_least.iter().sum::<f64>() >= 125.0);
    assert!(c.crs.hours_at_grade[0] <= 115.0);
}

#[test]
fn an_episode_already_running_when_the_data_begins_has_a_censored_onset() {
    let facts = recent_only(stay::stay(10), h(40.0));
    let c = course(
        &facts,
        T0,
        h(240.0),
        &Policy::default(),
        &CourseParams::default(),
    );
    let e = &c.crs.episodes[0];
    assert_eq!(e.onset, h(40.0));
    assert!(
        e.onset_censored,
        "no grade 0 before the first data: the onset may be earlier"
    );
    let line = crs_cds::protocol::course::course_line(&c).expect("line");
    assert!(line.contains("CRS day 1 or earlier-4 resolved"), "{line}");
    let full = course(
        &stay::stay(10),
        T0,
        h(240.0),
        &Policy::default(),
        &CourseParams::default(),
    );
    assert!(!full.crs.episodes[0].onset_censored);
}

#[test]
fn an_ongoing_episode_reads_since_day_with_the_current_grade_and_doses_of_four() {
    // Day 2 of the stay, 9 h after the second tocilizumab dose (h46), 1 h after the
    // norepinephrine stopped (h54): grade 3 still, in the window and within 2 h.
    let until = h(46.0 + 9.0);
    let c = course(
        &stay::stay(3),
        T0,
        until,
        &Policy::default(),
        &CourseParams::default(),
    );
    let line = crs_cds::protocol::course::course_line(&c).expect("line");
    assert_eq!(
        line,
        "CRS since day 1 (onset 14:00 UTC), worst grade 3 on day 1, now 3 - tocilizumab 2 of 4 doses this episode, last 9 h ago"
    );
}
