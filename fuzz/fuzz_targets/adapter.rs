//! Arbitrary text as a FHIR document (prefetch value) and as draft orders, through the
//! adapter and the engine. Nothing may panic.
#![no_main]

use crs_cds::adapter::{Document, Terminology, map_documents};
use crs_cds::domain::{Policy, Timestamp, assess};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::allow_contained_fhirbolt_panics;

fuzz_target!(|data: &[u8]| {
    allow_contained_fhirbolt_panics();
    let Ok(text) = std::str::from_utf8(data) else { return };
    let terminology = Terminology::embedded();
    let now = Timestamp(1_763_899_200_000);
    let doc = Document { origin: "fuzz", json: text };
    let mapped = map_documents(&[doc], Some(doc), &[], now, &terminology);
    let _ = assess(&mapped.facts, &mapped.orders, now, &Policy::default());
});
