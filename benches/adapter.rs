//! Adapter speed (issue 3, "Speed"): fhirbolt over the whole prefetch Bundle (the naive
//! way) against `map_documents` (triage first, typed parsing only of what the engine
//! uses), on a generated 200-entry ICU bundle (about 250 KB), for a CAR-T patient and
//! for a patient with no CAR-T infusion on record (the common case, answered without
//! typed parsing).
//!
//! Triage alone (issue 9, "Triage performance"): a real 237 KB non-CAR-T Synthea
//! patient (tests/realworld/patients/synthea-0a22e990-large.json) through the full
//! triage (prefilter off, the baseline) and through the byte-level prefilter that
//! answers it before any JSON parsing; and, for scale, one serde_json pass that only
//! validates the same bytes (what reading the request costs at least).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crs_cds::adapter::{Document, Terminology, map_documents, map_documents_for_patient, synth};
use crs_cds::domain::Timestamp;
use fhir_r4::Mode;

const NOW: Timestamp = Timestamp(1_795_435_200_000); // 2026-11-23T12:00:00Z

fn bench(c: &mut Criterion) {
    let terminology = Terminology::embedded();
    for (name, car_t) in [("car-t", true), ("non-car-t", false)] {
        let json = synth::icu_bundle(200, car_t);
        let mut group = c.benchmark_group(format!("adapter/{name} ({} KB)", json.len() / 1024));
        group.bench_function("naive fhirbolt whole bundle", |b| {
            b.iter(|| fhir_r4::parse_resource(black_box(&json), Mode::Compatibility).is_ok())
        });
        group.bench_function("map_documents", |b| {
            b.iter(|| {
                let docs = [Document {
                    origin: "prefetch",
                    json: black_box(&json),
                }];
                map_documents(&docs, None, &[], NOW, &terminology)
                    .facts
                    .temperatures
                    .len()
            })
        });
        group.finish();
    }
}

fn triage(c: &mut Criterion) {
    let json = include_str!("../tests/realworld/patients/synthea-0a22e990-large.json");
    let on = Terminology::embedded();
    let off = Terminology::embedded().without_prefilter();
    let mut group = c.benchmark_group(format!(
        "triage/real non-car-t synthea ({} KB)",
        json.len() / 1024
    ));
    for (name, terminology) in [("full triage (prefilter off)", &off), ("prefilter", &on)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let docs = [Document {
                    origin: "prefetch",
                    json: black_box(json),
                }];
                map_documents_for_patient(Some("p"), &docs, None, &[], NOW, terminology, 24.0)
                    .has_infusion()
            })
        });
    }
    group.bench_function("serde_json validate only", |b| {
        b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(json)).is_ok())
    });
    group.finish();
}

criterion_group!(benches, bench, triage);
criterion_main!(benches);
