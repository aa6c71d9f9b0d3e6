//! The triage prefilter (issue 9, "Triage performance"): a byte-level search of the
//! documents for anything that could name a CAR-T infusion, before any JSON parsing.
//! Most patients are not CAR-T patients, and for them the whole request is then
//! answered without reading the JSON.
//!
//! Never a false negative (the property test `prefilter_negative_means_no_infusion`
//! checks it over generated and real documents). The full triage finds an infusion
//! only through
//! - a coding whose `code` is one of the infusion procedure or product codes (CPT
//!   38228/0540T, the product RxNorm and NDC codes of `fhir-profiles/`), or a local
//!   code a site ConceptMap maps onto one of them: each is searched as the JSON string
//!   `"code"`, quotes included, because the triage compares codes exactly;
//! - an NDC, which the triage normalises (`00078-0846-15` is `78-846`): any mention of
//!   the NDC system URL sends the documents to the full triage, and so does an escaped
//!   solidus `\/` (JSON may write the URL as `http:\/\/hl7.org\/fhir\/sid\/ndc`);
//! - a product name or brand (`text-match` terms) in a `text` or `display`, matched in
//!   lowercase: searched ignoring ASCII case. The two characters whose Unicode
//!   lowercase is (or starts with) an ASCII letter, KELVIN SIGN (U+212A, lowercase `k`)
//!   and LATIN CAPITAL LETTER I WITH DOT ABOVE (U+0130, lowercase `i̇`), send the
//!   documents to the full triage;
//! - any of the above written with a JSON `\u` escape: a `\u` anywhere sends the
//!   documents to the full triage. Other escapes (`\n`, `\"`, `\/` …) decode to
//!   characters that are in no code or term, so they cannot make or break a match.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// What sends a document to the full triage whatever the codes and terms are.
const ALWAYS: [&str; 5] = ["\\u", "\\/", "hl7.org/fhir/sid/ndc", "\u{212A}", "\u{130}"];

/// A compiled search for the infusion's codes and names.
#[derive(Clone, Debug)]
pub struct Prefilter {
    automaton: AhoCorasick,
    patterns: usize,
}

impl Prefilter {
    /// Builds the search from the codes (searched quoted) and the lowercase terms.
    /// `None` when the search cannot be built (then every document gets the full
    /// triage).
    pub(crate) fn new<'c>(
        codes: impl IntoIterator<Item = &'c str>,
        terms: impl IntoIterator<Item = &'c str>,
    ) -> Option<Prefilter> {
        let mut patterns: Vec<String> = ALWAYS.iter().map(|s| (*s).to_string()).collect();
        patterns.extend(codes.into_iter().map(|c| format!("\"{c}\"")));
        patterns.extend(terms.into_iter().map(str::to_string));
        patterns.retain(|p| !p.is_empty());
        patterns.sort();
        patterns.dedup();
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(&patterns)
            .ok()?;
        Some(Prefilter {
            automaton,
            patterns: patterns.len(),
        })
    }

    /// Whether `json` may hold a CAR-T infusion (then it needs the full triage).
    pub fn may_hold_infusion(&self, json: &str) -> bool {
        self.automaton.is_match(json)
    }

    /// How many patterns are searched (for tests and the README).
    pub fn pattern_count(&self) -> usize {
        self.patterns
    }
}
