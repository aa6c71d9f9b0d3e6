//! The fhirbolt wrapper (`crates/fhir-r4`): unknown elements are dropped and reported,
//! never looped on (fhirbolt 0.4.0's compatibility mode hangs on unknown arrays).

use fhir_r4::{Mode, Resource, parse_resource, parse_resource_dropping_unknown};

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
