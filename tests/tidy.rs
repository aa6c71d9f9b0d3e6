//! Architecture invariants (ARCHITECTURE.md), enforced by scanning each layer's code
//! for the crates and std modules it must not touch.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)
        .expect("source folder exists")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Lines of code in a layer that mention a forbidden path (comments skipped).
fn violations(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    let mut found = Vec::new();
    for file in rust_files(&root) {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for f in forbidden {
                if code.contains(f) {
                    found.push(format!(
                        "{}:{}: `{f}` in {layer}: {}",
                        file.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn domain_depends_on_std_only_and_does_no_io() {
    let v = violations(
        "domain",
        &[
            "serde",
            "tracing",
            "fhirbolt",
            "fhir_r4",
            "tokio",
            "actix",
            "reqwest",
            "chrono",
            "std::fs",
            "std::net",
            "std::env",
            "std::io",
            "SystemTime",
            "Instant::now",
            "println!",
            "eprintln!",
            "crate::adapter",
            "crate::protocol",
            "crate::http",
        ],
    );
    assert!(v.is_empty(), "domain must stay pure:\n{}", v.join("\n"));
}

#[test]
fn adapter_does_no_io_logging_or_http() {
    let v = violations(
        "adapter",
        &[
            "tracing",
            "tokio",
            "actix",
            "reqwest",
            "std::fs",
            "std::net",
            "std::env",
            "SystemTime",
            "crate::http",
            "crate::protocol",
            "println!",
        ],
    );
    assert!(
        v.is_empty(),
        "adapter must stay synchronous and IO-free:\n{}",
        v.join("\n")
    );
}

#[test]
fn protocol_never_sees_fhirbolt_or_the_http_stack() {
    let v = violations(
        "protocol",
        &[
            "fhirbolt",
            "fhir_r4",
            "actix",
            "reqwest",
            "tokio",
            "crate::http",
            "std::fs",
        ],
    );
    assert!(
        v.is_empty(),
        "protocol owns JSON shapes only:\n{}",
        v.join("\n")
    );
}

#[test]
fn auth_knows_nothing_about_grading_or_fhir() {
    let v = violations(
        "auth",
        &[
            "crate::domain",
            "crate::adapter",
            "crate::protocol",
            "crate::http",
            "fhirbolt",
            "fhir_r4",
            "std::env",
        ],
    );
    assert!(
        v.is_empty(),
        "auth verifies tokens and nothing else:\n{}",
        v.join("\n")
    );
}
