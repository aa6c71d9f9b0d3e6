//! The fhirbolt wrapper (`crates/fhir-r4`): unknown elements are dropped and reported,
//! never looped on (fhirbolt 0.4.0's compatibility mode hangs on unknown arrays).

use fhir_r4::{Mode, Parser, Resource, parse_resource, parse_resource_dropping_unknown};

const OBS: &str = r#"{"resourceType":"Observation","status":"final","code":{"text":"x"}"#;

fn with(extra: &str) -> String {
    format!("{OBS},{extra}}}")
}

#[test]
fn an_unknown_array_element_is_dropped_not_looped_on() {
    for extra in [
        r#""foo":[{"a":1}]"#,
        r#""foo":[1,2]"#,
        r#""foo":{"a":1}"#,
        r#""foo":1"#,
    ] {
        let (r, dropped) = parse_resource_dropping_unknown(&with(extra)).expect("parsed");
        assert!(matches!(r, Resource::Observation(_)));
        assert_eq!(dropped, vec!["foo".to_string()], "{extra}");
    }
}

#[test]
fn a_nested_unknown_element_is_dropped_where_it_is_unknown_only() {
    let json = r#"{"resourceType":"Observation","status":"final","code":{"text":"x","component":[1]},"component":[{"code":{"text":"y"},"valueInteger":3}]}"#;
    let (r, dropped) = parse_resource_dropping_unknown(json).expect("parsed");
    assert_eq!(dropped, vec!["component".to_string()]);
    let Resource::Observation(o) = r else {
        panic!("an Observation")
    };
    assert_eq!(
        o.component.len(),
        1,
        "the valid Observation.component stays"
    );
}

#[test]
fn several_unknown_elements_are_all_dropped() {
    let (_, mut dropped) =
        parse_resource_dropping_unknown(&with(r#""a":[1],"b":{"c":[2]},"d":"e""#)).expect("parsed");
    dropped.sort();
    assert_eq!(
        dropped,
        vec!["a".to_string(), "b".to_string(), "d".to_string()]
    );
}

#[test]
fn strict_mode_refuses_unknown_elements() {
    assert!(parse_resource(&with(r#""foo":1"#), Mode::Strict).is_err());
    assert!(parse_resource(&format!("{OBS}}}"), Mode::Strict).is_ok());
}

#[test]
fn a_key_repeated_in_one_object_is_an_error_not_a_panic() {
    let json = r#"{"resourceType":"Procedure","status":"completed","code":{"text":"x"},"performedPeriod":{"start":"2026-11-18"},"performedPeriod":{"start":"2026-11-19"}}"#;
    assert!(parse_resource_dropping_unknown(json).is_err());
    assert!(parse_resource(json, Mode::Strict).is_err());
}

/// An Observation with `n` unknown elements beside its own, all in the resource object.
fn with_unknown(n: usize, id: usize) -> String {
    let extra: Vec<String> = (0..n).map(|i| format!(r#""vendor{i}":[{i}]"#)).collect();
    format!(
        r#"{{"resourceType":"Observation","id":"o{id}","status":"final","code":{{"text":"x"}},{}}}"#,
        extra.join(",")
    )
}

#[test]
fn thirty_two_unknown_elements_in_one_object_cost_three_parses_not_thirty_three() {
    // One parse meets the first unknown element, one probe confirms which type refused
    // it, one parse after every key outside that type was dropped: 3 (was 1 + 32).
    let mut parser = Parser::new();
    let (r, dropped) = parser
        .parse_dropping_unknown(&with_unknown(32, 0))
        .expect("parsed");
    assert!(matches!(r, Resource::Observation(_)));
    assert_eq!(dropped.len(), 32);
    for i in 0..32 {
        assert!(dropped.contains(&format!("vendor{i}")), "vendor{i}");
    }
    assert_eq!(parser.parses(), 3);
}

#[test]
fn a_hundred_entries_of_one_shape_cost_one_parse_each_plus_two() {
    // The first entry costs 3 (see above); the list it confirmed cleans the 99 others
    // before their first parse: 3 + 99 = N + 2 (was 33 × 100).
    let mut parser = Parser::new();
    for id in 0..100 {
        let (_, dropped) = parser
            .parse_dropping_unknown(&with_unknown(32, id))
            .expect("parsed");
        assert_eq!(dropped.len(), 32, "entry {id} reports what was dropped");
    }
    assert_eq!(parser.parses(), 102);
}

#[test]
fn a_bundle_of_a_hundred_such_entries_parsed_whole_costs_three_parses() {
    // All 100 resource objects sit at one path (Bundle.entry.resource, Observation):
    // one failing parse, one probe, one parse after dropping.
    let entries: Vec<String> = (0..100)
        .map(|id| format!(r#"{{"resource":{}}}"#, with_unknown(32, id)))
        .collect();
    let bundle = format!(
        r#"{{"resourceType":"Bundle","type":"collection","entry":[{}]}}"#,
        entries.join(",")
    );
    let mut parser = Parser::new();
    let (r, dropped) = parser.parse_dropping_unknown(&bundle).expect("parsed");
    let Resource::Bundle(b) = r else {
        panic!("a Bundle")
    };
    assert_eq!(b.entry.len(), 100);
    assert_eq!(dropped.len(), 32, "each name once");
    assert_eq!(parser.parses(), 3);
}

#[test]
fn thirty_three_unknown_elements_are_still_refused() {
    assert!(parse_resource_dropping_unknown(&with_unknown(33, 0)).is_err());
    assert!(parse_resource_dropping_unknown(&with_unknown(32, 0)).is_ok());
    // Also when a learnt list cleans them before the first parse.
    let mut parser = Parser::new();
    parser
        .parse_dropping_unknown(&with_unknown(32, 0))
        .expect("parsed");
    assert!(parser.parse_dropping_unknown(&with_unknown(33, 1)).is_err());
}

#[test]
fn a_valid_element_named_like_an_unknown_one_in_a_nested_type_is_kept() {
    // `text` is unknown in the Coding but valid in the CodeableConcept around it, which
    // has fewer keys foreign to Coding (1: `coding`) than the Coding has (2). The probe
    // shows the CodeableConcept is not the type that refused `text`.
    let json = r#"{"resourceType":"Observation","status":"final","code":{"text":"Temperature","coding":[{"system":"http://loinc.org","code":"8310-5","text":"bad","zz1":1,"zz2":[2]}]}}"#;
    let (r, mut dropped) = parse_resource_dropping_unknown(json).expect("parsed");
    dropped.sort();
    assert_eq!(dropped, vec!["text", "zz1", "zz2"]);
    let Resource::Observation(o) = r else {
        panic!("an Observation")
    };
    assert_eq!(
        o.code.text.as_ref().and_then(|t| t.value.as_deref()),
        Some("Temperature")
    );
    assert_eq!(o.code.coding.len(), 1);
    assert_eq!(
        o.code.coding[0]
            .code
            .as_ref()
            .and_then(|c| c.value.as_deref()),
        Some("8310-5")
    );
}

#[test]
fn a_learnt_list_cleans_only_its_own_path() {
    // The Observation's list, learnt at the root, must not clean a Coding elsewhere.
    let mut parser = Parser::new();
    parser
        .parse_dropping_unknown(&with_unknown(3, 0))
        .expect("parsed");
    let json = r#"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8310-5"}]},"valueQuantity":{"value":38.5,"code":"Cel"}}"#;
    let (r, dropped) = parser.parse_dropping_unknown(json).expect("parsed");
    assert!(dropped.is_empty(), "{dropped:?}");
    let Resource::Observation(o) = r else {
        panic!("an Observation")
    };
    assert!(o.value.is_some());
    assert_eq!(o.code.coding.len(), 1);
}

#[test]
fn a_resource_that_already_holds_the_probe_key_is_dropped_element_by_element() {
    let json = r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"\u0001crs-cds-probe":1,"a":[1],"b":2}"#;
    let mut parser = Parser::new();
    let (_, mut dropped) = parser.parse_dropping_unknown(json).expect("parsed");
    dropped.sort();
    assert_eq!(dropped, vec!["\u{1}crs-cds-probe", "a", "b"]);
    // No probe could be trusted: one parse per element, and the first (as before).
    assert_eq!(parser.parses(), 4);
}
