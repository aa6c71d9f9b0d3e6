//! The project's single entry into fhirbolt's R4 JSON parser.
//!
//! fhirbolt's generated parsing code is generic and is compiled again in every crate
//! that instantiates it. Keeping the one instantiation here, behind non-generic
//! functions, halves cold builds (see `../shared/reference/stack-notes.md`).
//! This crate re-exports the typed model so callers never name `fhirbolt::json`.

pub use fhirbolt::model::r4::{Resource, resources, types};

/// How strictly unknown or missing elements are treated while parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Unknown elements are dropped, as an integration partner expects.
    Compatibility,
    /// Unknown elements are an error.
    Strict,
}

/// Parses one FHIR R4 resource from JSON text into the typed model.
///
/// `Strict` refuses unknown elements. `Compatibility` drops them (see
/// [`parse_resource_dropping_unknown`], which also says which were dropped).
pub fn parse_resource(json: &str, mode: Mode) -> Result<Resource, String> {
    match mode {
        Mode::Strict => parse_strict(json),
        Mode::Compatibility => parse_resource_dropping_unknown(json).map(|(r, _)| r),
    }
}

/// The most unknown elements dropped from one resource before giving up.
const MAX_DROPPED: usize = 32;

fn parse_strict(json: &str) -> Result<Resource, String> {
    let config = fhirbolt::serde::DeserializationConfig {
        mode: fhirbolt::serde::DeserializationMode::Strict,
    };
    // Always through the `Resource` enum: `from_slice::<Bundle>` in fhirbolt 0.4.0 fails
    // on bundles with more than one entry.
    //
    // fhirbolt 0.4.0 also panics on some malformed input (an `unwrap` on a `None` in its
    // element deserializer, e.g. for a key repeated in one object; found by `cargo
    // fuzz`). The panic is contained here and becomes an ordinary parse error, so one
    // bad resource never takes a request, or a server worker, down with it.
    std::panic::catch_unwind(|| fhirbolt::json::from_str::<Resource>(json, Some(config)))
        .map_err(|_| {
            "the FHIR parser failed on this resource (malformed JSON structure)".to_string()
        })?
        .map_err(|e| e.to_string())
}

/// Parses a resource, dropping elements the R4 model does not know, and returns the
/// names of the dropped elements.
///
/// Why not fhirbolt's own `Compatibility` mode: in fhirbolt 0.4.0 it loops forever on an
/// unknown element whose value is an array (`"foo": [1]`, at any depth), which would
/// hang a worker on one misspelt element (found by `cargo fuzz`, see `fuzz/`). Instead
/// this parses strictly; on "unknown field `x`, expected one of …" it removes `x` from
/// every object whose other keys all belong to that expected list (the object of the
/// type that refused it) and tries again.
pub fn parse_resource_dropping_unknown(json: &str) -> Result<(Resource, Vec<String>), String> {
    let first = match parse_strict(json) {
        Ok(r) => return Ok((r, Vec::new())),
        Err(e) => e,
    };
    let Some(mut unknown) = UnknownField::parse(&first) else {
        return Err(first);
    };
    let mut value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut dropped = Vec::new();
    loop {
        if dropped.len() >= MAX_DROPPED || !unknown.remove_from(&mut value) {
            return Err(format!("{first} (unknown elements could not be dropped)"));
        }
        dropped.push(unknown.field.clone());
        let text = value.to_string();
        match parse_strict(&text) {
            Ok(r) => return Ok((r, dropped)),
            Err(e) => match UnknownField::parse(&e) {
                Some(next) => unknown = next,
                None => return Err(e),
            },
        }
    }
}

/// A serde "unknown field" error: the field and the fields its type accepts.
struct UnknownField {
    field: String,
    expected: Vec<String>,
}

impl UnknownField {
    fn parse(message: &str) -> Option<UnknownField> {
        let rest = message.split("unknown field `").nth(1)?;
        let (field, rest) = rest.split_once('`')?;
        let expected = rest
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        Some(UnknownField {
            field: field.to_string(),
            expected,
        })
    }

    /// Whether `key` may sit beside the unknown field in an object of the refusing type:
    /// the field itself, an expected field, its `_field` primitive extension, or
    /// `resourceType`.
    fn belongs(&self, key: &str) -> bool {
        let plain = key.strip_prefix('_').unwrap_or(key);
        key == self.field || key == "resourceType" || self.expected.iter().any(|e| e == plain)
    }

    /// How many keys of an object holding the field do not belong to the refusing type.
    fn foreign_keys(&self, map: &serde_json::Map<String, serde_json::Value>) -> usize {
        map.keys().filter(|k| !self.belongs(k)).count()
    }

    /// The fewest foreign keys among the objects holding the field (0 for an object of
    /// the refusing type with only this unknown element).
    fn fewest_foreign(&self, value: &serde_json::Value) -> Option<usize> {
        match value {
            serde_json::Value::Object(map) => {
                let here = map
                    .contains_key(&self.field)
                    .then(|| self.foreign_keys(map));
                map.values()
                    .filter_map(|v| self.fewest_foreign(v))
                    .chain(here)
                    .min()
            }
            serde_json::Value::Array(items) => {
                items.iter().filter_map(|v| self.fewest_foreign(v)).min()
            }
            _ => None,
        }
    }

    /// Removes the field from the objects most like the refusing type (those with the
    /// fewest keys foreign to it: none, unless several unknown elements share the object);
    /// whether any was removed.
    fn remove_from(&self, value: &mut serde_json::Value) -> bool {
        match self.fewest_foreign(value) {
            Some(fewest) => self.remove_where(value, fewest),
            None => false,
        }
    }

    fn remove_where(&self, value: &mut serde_json::Value, foreign: usize) -> bool {
        let mut removed = false;
        match value {
            serde_json::Value::Object(map) => {
                if map.contains_key(&self.field) && self.foreign_keys(map) == foreign {
                    map.remove(&self.field);
                    removed = true;
                }
                for v in map.values_mut() {
                    removed |= self.remove_where(v, foreign);
                }
            }
            serde_json::Value::Array(items) => {
                for v in items {
                    removed |= self.remove_where(v, foreign);
                }
            }
            _ => {}
        }
        removed
    }
}
