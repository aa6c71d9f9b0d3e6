//! The element-by-element way of dropping unknown elements, as it was before issue 10
//! (fault 3): one strict parse per dropped element, up to 33 per resource. Kept only
//! so `benches/unknown_elements.rs` can measure before and after in one run; nothing
//! else calls it.

use crate::{MAX_DROPPED, Resource, parse_strict};

/// As [`crate::parse_resource_dropping_unknown`], re-parsing after each dropped element.
pub fn parse_resource_dropping_unknown_one_by_one(
    json: &str,
) -> Result<(Resource, Vec<String>), String> {
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
