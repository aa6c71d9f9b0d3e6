//! Unknown elements (issue 10, fault 3): what 4 MiB of Observations that each carry 32
//! unknown elements cost against the same Observations without them.
//!
//! - "clean": the entries without unknown elements, through a per-request
//!   `fhir_r4::Parser` (the baseline);
//! - "32 unknown, one pass": the same entries with 32 unknown elements each, through one
//!   `Parser` (one round per refusing object, the learnt list cleaning later entries);
//! - "32 unknown, element by element": the way before (one strict parse per dropped
//!   element, `fhir_r4::legacy`), for the before/after ratio in the same run;
//! - and the whole adapter (`map_documents`) over the same two Bundles.
//!
//! `cargo bench --bench unknown_elements`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use crs_cds::adapter::{Document, Terminology, map_documents};
use crs_cds::domain::Timestamp;

const NOW: Timestamp = Timestamp(1_795_435_200_000); // 2026-11-23T12:00:00Z
const BODY: usize = 4 * 1024 * 1024;

/// A temperature Observation `minutes` before NOW, with `unknown` unknown elements.
fn observation(i: usize, unknown: usize) -> String {
    let minutes = i % 1400;
    let extra: String = (0..unknown)
        .map(|k| format!(r#","vendor{k}":[{k}]"#))
        .collect();
    format!(
        r#"{{"resourceType":"Observation","id":"t{i}","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"8310-5"}}]}},"subject":{{"reference":"Patient/p"}},"effectiveDateTime":"2026-11-23T{:02}:{:02}:00Z","valueQuantity":{{"value":37.{},"unit":"Cel","system":"http://unitsofmeasure.org","code":"Cel"}}{extra}}}"#,
        11 - (minutes / 60).min(11),
        59 - minutes % 60,
        i % 10
    )
}

const INFUSION: &str = r#"{"resourceType":"Procedure","id":"cart","status":"completed","code":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"38228"}]},"subject":{"reference":"Patient/p"},"performedDateTime":"2026-11-20T10:00:00Z"}"#;

fn bundle(entries: &[String]) -> String {
    let mut all = vec![format!(r#"{{"resource":{INFUSION}}}"#)];
    all.extend(entries.iter().map(|e| format!(r#"{{"resource":{e}}}"#)));
    format!(
        r#"{{"resourceType":"Bundle","type":"searchset","entry":[{}]}}"#,
        all.join(",")
    )
}

fn bench(c: &mut Criterion) {
    // As many dirty entries as fit in 4 MiB; the clean ones are the same entries.
    let mut dirty = Vec::new();
    let mut bytes = 0;
    while bytes < BODY - 2_000 {
        let o = observation(dirty.len(), 32);
        bytes += o.len() + 14;
        dirty.push(o);
    }
    let clean: Vec<String> = (0..dirty.len()).map(|i| observation(i, 0)).collect();
    let dirty_bundle = bundle(&dirty);
    let clean_bundle = bundle(&clean);

    let mut group = c.benchmark_group(format!(
        "unknown elements/{} entries ({} KB with, {} KB without)",
        dirty.len(),
        dirty_bundle.len() / 1024,
        clean_bundle.len() / 1024
    ));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("clean, Parser", |b| {
        b.iter(|| {
            let mut p = fhir_r4::Parser::new();
            for e in &clean {
                let _ = black_box(p.parse_dropping_unknown(black_box(e)).is_ok());
            }
            p.parses()
        })
    });
    group.bench_function("32 unknown, one pass (Parser)", |b| {
        b.iter(|| {
            let mut p = fhir_r4::Parser::new();
            for e in &dirty {
                let _ = black_box(p.parse_dropping_unknown(black_box(e)).is_ok());
            }
            p.parses()
        })
    });
    group.bench_function("32 unknown, element by element (before)", |b| {
        b.iter(|| {
            dirty
                .iter()
                .filter(|e| {
                    fhir_r4::legacy::parse_resource_dropping_unknown_one_by_one(black_box(e))
                        .is_ok()
                })
                .count()
        })
    });
    let terminology = Terminology::embedded();
    for (name, json) in [("clean", &clean_bundle), ("32 unknown", &dirty_bundle)] {
        group.bench_function(format!("map_documents, {name}"), |b| {
            b.iter(|| {
                let docs = [Document {
                    origin: "prefetch",
                    json: black_box(json),
                }];
                map_documents(&docs, None, &[], NOW, &terminology).parse_attempts
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
