//! Shared by the fuzz targets.

/// libfuzzer-sys aborts on every panic, even a caught one. fhirbolt's panics on malformed
/// input are caught by `crates/fhir-r4` on purpose (they became parse errors after the first
/// fuzz runs), so they are let through here; any other panic still aborts.
pub fn allow_contained_fhirbolt_panics() {
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
