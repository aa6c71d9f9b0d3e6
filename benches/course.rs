//! Criterion benchmark: the toxicity course of a 30-day stay (about 4,700 facts), by
//! the sliding working set (`course`) and by re-grading every instant from scratch with
//! all facts filtered by time (`course_naive`, the baseline).

use criterion::{Criterion, criterion_group, criterion_main};
use crs_cds::domain::*;
use std::hint::black_box;

#[path = "support/stay.rs"]
mod stay;

fn bench(c: &mut Criterion) {
    let facts = stay::stay(30);
    let until = stay::INFUSED.plus_hours(30.0 * 24.0);
    let policy = Policy::default();
    let params = CourseParams::default();
    eprintln!(
        "30-day stay: {} facts, {} instants",
        stay::fact_count(&facts),
        instants(&facts, stay::INFUSED, until, &policy, &params).len()
    );
    let mut g = c.benchmark_group("course-30-days");
    g.bench_function("sliding", |b| {
        b.iter(|| course(black_box(&facts), stay::INFUSED, until, &policy, &params))
    });
    g.bench_function("naive", |b| {
        b.iter(|| course_naive(black_box(&facts), stay::INFUSED, until, &policy, &params))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
