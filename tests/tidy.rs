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
fn render_draws_from_domain_and_protocol_only() {
    let v = violations(
        "render",
        &[
            "crate::http",
            "crate::adapter",
            "crate::demo",
            "crate::auth",
            "actix",
            "reqwest",
            "tokio",
            "fhirbolt",
            "fhir_r4",
            "tracing",
            "std::fs",
            "std::env",
        ],
    );
    assert!(
        v.is_empty(),
        "render draws engine results, it decides and fetches nothing:\n{}",
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

/// The heading identifiers of `docs/clinical-rules.md`: the first word of every heading
/// (`A.1`, `B.3`, `6-U3`, `7-S3`, `C`, …).
fn clinical_rule_sections() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/clinical-rules.md");
    let text = std::fs::read_to_string(path).expect("docs/clinical-rules.md exists");
    text.lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The section a citation names, normalised to the headings' form: `A.1`, `§6-U3` and
/// `6-U3` → `6-U3`, `§7 S3` and `S3` → `7-S3`, `U1` → `6-U1`, `section 6` → `6`.
fn cited_section(after: &str) -> Option<String> {
    let s = after.trim_start_matches([' ', '§']);
    let s = s.strip_prefix("section").map_or(s, str::trim_start);
    let word: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    let word = word.trim_end_matches(['.', '-']).to_string();
    if word.is_empty() {
        return None;
    }
    // "§7 S3": the decision follows after a space.
    if word == "7" || word == "6" {
        let rest = s[word.len()..].trim_start_matches([' ', '-']);
        let next: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if next.len() >= 2 && (next.starts_with('S') || next.starts_with('U')) {
            return Some(format!("{word}-{next}"));
        }
        return Some(word);
    }
    match word.chars().next() {
        Some('S') if word[1..].chars().all(|c| c.is_ascii_digit()) && word.len() > 1 => {
            Some(format!("7-{word}"))
        }
        Some('U') if word[1..].chars().all(|c| c.is_ascii_digit()) && word.len() > 1 => {
            Some(format!("6-{word}"))
        }
        // A section letter, optionally with its number: `A`, `B.3`.
        Some('A'..='D')
            if word.len() == 1
                || (word.as_bytes()[1] == b'.'
                    && word[2..].chars().all(|c| c.is_ascii_digit())) =>
        {
            Some(word)
        }
        Some('0'..='9')
            if word.len() == 1 || word.starts_with("6-U") || word.starts_with("7-S") =>
        {
            Some(word)
        }
        // Prose such as "RULES.md states": not a citation.
        _ => None,
    }
}

#[test]
fn every_rules_citation_resolves_to_a_section_of_clinical_rules() {
    let sections = clinical_rule_sections();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut unresolved = Vec::new();
    let mut cited = 0;
    for file in rust_files(&root) {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(i) = rest.find("RULES") {
                let after = &rest[i + "RULES".len()..];
                let after = after.strip_prefix(".md").unwrap_or(after);
                rest = after;
                let Some(section) = cited_section(after) else {
                    continue;
                };
                cited += 1;
                if !sections.contains(&section) {
                    unresolved.push(format!("{}:{}: {section}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        cited > 50,
        "expected the code to cite the rules ({cited} found)"
    );
    assert!(
        unresolved.is_empty(),
        "citations without a section in docs/clinical-rules.md:\n{}",
        unresolved.join("\n")
    );
}

#[test]
fn every_test_named_in_the_hazard_log_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = std::fs::read_to_string(root.join("docs/clinical-safety/hazard-log.md"))
        .expect("docs/clinical-safety/hazard-log.md exists");
    let mut sources = String::new();
    for dir in ["src", "tests", "crates"] {
        for file in rust_files(&root.join(dir)) {
            sources.push_str(&std::fs::read_to_string(file).expect("readable source"));
        }
    }
    let mut named = 0;
    let mut missing = Vec::new();
    // Every table row but the header and its rule.
    let rows = log
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| id ") && !l.starts_with("|---"));
    for row in rows {
        let test_cell = row.trim_end_matches('|').rsplit('|').next().unwrap_or("");
        for name in test_cell.split('`').skip(1).step_by(2) {
            named += 1;
            // A fixture case (`toci-29-9kg-358-8mg-passes`) or a test function.
            let exists = if name.contains('-') {
                ["fixtures/requests", "fixtures/courses/requests"]
                    .iter()
                    .any(|dir| root.join(dir).join(format!("{name}.json")).exists())
            } else {
                let fn_name = name.rsplit("::").next().unwrap_or(name);
                sources.contains(&format!("fn {fn_name}("))
            };
            if !exists {
                missing.push(name.to_string());
            }
        }
    }
    assert!(named > 10, "the hazard log names its tests ({named} found)");
    assert!(
        missing.is_empty(),
        "hazard-log tests that do not exist: {missing:?}"
    );
}
