//! Arbitrary text as a FHIR document (prefetch value) and as draft orders, through the
//! adapter and the engine. Nothing may panic.
#![no_main]

use crs_cds::adapter::{Document, Terminology, map_documents};
use crs_cds::domain::{Policy, Timestamp, assess};
use libfuzzer_sys::fuzz_target;

/// libfuzzer-sys aborts on every panic, even a caught one. fhirbolt's panics on malformed
/// input are caught by `crates/fhir-r4` on purpose (they became parse errors after the first
/// fuzz runs), so they are let through here; any other panic still aborts.
fn allow_contained_fhirbolt_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let in_fhirbolt = info.location().is_some_and(|l| l.file().contains("fhirbolt"));
            if !in_fhirbolt {
                eprintln!("{info}");
                std::process::abort();
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    allow_contained_fhirbolt_panics();
    let Ok(text) = std::str::from_utf8(data) else { return };
    let terminology = Terminology::embedded();
    let now = Timestamp(1_763_899_200_000);
    let doc = Document { origin: "fuzz", json: text };
    let mapped = map_documents(&[doc], Some(doc), &[], now, &terminology);
    let _ = assess(&mapped.facts, &mapped.orders, now, &Policy::default());
});
