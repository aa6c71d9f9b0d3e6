//! The project's single entry into fhirbolt's R4 JSON parser.
//!
//! fhirbolt's generated parsing code is generic and is compiled again in every crate
//! that instantiates it. Keeping the one instantiation here, behind non-generic
//! functions, halves cold builds (see `../shared/reference/stack-notes.md`).
//! This crate re-exports the typed model so callers never name `fhirbolt::json`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::value::RawValue;

#[doc(hidden)]
pub mod legacy;

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

/// The most strict parses spent on one resource: the 33 of the element-by-element way
/// (one per dropped element, and the first) and a few probes. A round costs one parse,
/// or two when a probe confirms, and then drops at least two elements, so only probes
/// that do not confirm (a valid element of another type named like the unknown one),
/// or a path probed a second time, add parses; beyond this the resource is refused.
const MAX_PARSES: usize = MAX_DROPPED + 1 + 8;

/// The most objects probed for their type in one drop round.
const MAX_PROBES: usize = 2;

/// A key no FHIR element has, put in an object to learn its type's field list. A
/// resource that already holds it is never probed (nothing could tell the two apart).
const PROBE: &str = "\u{1}crs-cds-probe";

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
/// names of the dropped elements (see [`Parser`]; this one learns for one resource only).
pub fn parse_resource_dropping_unknown(json: &str) -> Result<(Resource, Vec<String>), String> {
    Parser::new().parse_dropping_unknown(json)
}

/// Parses the resources of one request or document, dropping elements the R4 model does
/// not know, and remembering where it found them so later resources of the same shape
/// are cleaned before their first parse.
///
/// Why not fhirbolt's own `Compatibility` mode: in fhirbolt 0.4.0 it loops forever on an
/// unknown element whose value is an array (`"foo": [1]`, at any depth), which would
/// hang a worker on one misspelt element (found by `cargo fuzz`, see `fuzz/`). Instead
/// this parses strictly. fhirbolt's error, "unknown field `x`, expected one of …", names
/// the field and every field of the type that refused it, but not where that object
/// is (the resource is buffered before it is typed, so the error has no position).
///
/// One round per refusing object, not one per unknown element (issue 10, fault 3):
/// - the objects holding `x` are grouped by their *path* (the keys from the root, array
///   indices left out, each resource marked by its `resourceType`). In FHIR JSON a path
///   determines the type (choice elements have concrete names, `valueQuantity`), so all
///   objects at one path share one field list;
/// - the path whose objects look most like the refusing type (fewest keys outside its
///   list) is tried first. An object whose only key outside the list is `x` loses `x`,
///   as before. An object with more such keys is first *probed*: its keys outside the
///   list are replaced by a key no type has and the resource parsed again (fhirbolt
///   visits an object's known keys first and its unknown keys last). Only when fhirbolt
///   refuses that key with the same field list is the object of the refusing type; then
///   every key outside the list is dropped from every object at that path at once, and
///   the list is remembered for the path (for this [`Parser`]'s later resources). A
///   probe that does not confirm puts the object back as it was, so a valid element of
///   another type that happens to be called `x` is never dropped with its neighbours;
/// - `_x` primitive extensions belong to a type when `x` does.
///
/// Bounds: at most [`MAX_DROPPED`] elements per resource (beyond, an error, as before)
/// and at most [`MAX_PARSES`] strict parses per resource, so no input loops.
#[derive(Debug, Default)]
pub struct Parser {
    /// Field lists confirmed by a probe, by path.
    learnt: HashMap<String, Fields>,
    /// Paths where an element was dropped without a probe: a second time, probe.
    seen: HashSet<String>,
    parses: usize,
    /// Whether the resource being parsed may be probed (`None`: not looked at yet).
    probing: Option<bool>,
}

/// The fields of one type, as fhirbolt names them in its "expected one of" list.
#[derive(Debug, Clone)]
struct Fields(HashSet<String>);

impl Fields {
    /// Whether `key` may sit in an object of this type: an expected field, its `_field`
    /// primitive extension, or `resourceType`.
    fn has(&self, key: &str) -> bool {
        let plain = key.strip_prefix('_').unwrap_or(key);
        key == "resourceType" || self.0.contains(plain)
    }
}

/// What one round did to the resource.
enum Round {
    /// These elements were dropped; parse again.
    Dropped(Vec<String>),
    /// Nothing could be dropped.
    Stuck,
}

impl Parser {
    /// A parser that has learnt nothing yet.
    pub fn new() -> Parser {
        Parser::default()
    }

    /// How many times fhirbolt's parser has run (every attempt, probes included).
    pub fn parses(&self) -> usize {
        self.parses
    }

    fn strict(&mut self, json: &str) -> Result<Resource, String> {
        self.parses += 1;
        parse_strict(json)
    }

    /// Parses one resource, dropping elements the R4 model does not know; returns the
    /// names of the dropped elements.
    pub fn parse_dropping_unknown(
        &mut self,
        json: &str,
    ) -> Result<(Resource, Vec<String>), String> {
        let start = self.parses;
        self.probing = None;
        let mut dropped = Vec::new();
        let cleaned = if self.learnt.is_empty() {
            None
        } else {
            self.clean_learnt(json, &mut String::new(), &mut dropped)
        };
        let text = cleaned.as_deref().unwrap_or(json);
        let mut error = match self.strict(text) {
            Ok(r) if dropped.len() <= MAX_DROPPED => return Ok((r, dropped)),
            Ok(_) => return Err(too_many(&dropped)),
            Err(e) => e,
        };
        let first = error.clone();
        if UnknownField::parse(&error).is_none() {
            return Err(error);
        }
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        loop {
            let Some(unknown) = UnknownField::parse(&error) else {
                return Err(error);
            };
            if dropped.len() >= MAX_DROPPED || self.parses - start >= MAX_PARSES {
                return Err(format!("{first} (unknown elements could not be dropped)"));
            }
            match self.round(&mut value, &unknown, start) {
                Round::Dropped(names) => dropped.extend(names),
                Round::Stuck => {
                    return Err(format!("{first} (unknown elements could not be dropped)"));
                }
            }
            if dropped.len() > MAX_DROPPED {
                return Err(format!("{first} (unknown elements could not be dropped)"));
            }
            match self.strict(&value.to_string()) {
                Ok(r) => return Ok((r, dropped)),
                Err(e) => error = e,
            }
        }
    }

    /// Drops from every object at a learnt path the keys outside its type, working on
    /// the text: only the objects on the way to a learnt path are split into their keys
    /// (everything else is copied as it was sent, unparsed). `None` when nothing was
    /// dropped (or the text is not JSON: the strict parse then says why).
    fn clean_learnt(
        &self,
        text: &str,
        path: &mut String,
        dropped: &mut Vec<String>,
    ) -> Option<String> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('[') {
            let items: Vec<&RawValue> = serde_json::from_str(text).ok()?;
            let mut changed = false;
            let parts: Vec<std::borrow::Cow<'_, str>> = items
                .iter()
                .map(|item| match self.clean_learnt(item.get(), path, dropped) {
                    Some(c) => {
                        changed = true;
                        std::borrow::Cow::Owned(c)
                    }
                    None => std::borrow::Cow::Borrowed(item.get()),
                })
                .collect();
            return changed.then(|| format!("[{}]", parts.join(",")));
        }
        if !trimmed.starts_with('{') {
            return None;
        }
        let map: BTreeMap<String, &RawValue> = serde_json::from_str(text).ok()?;
        let len = path.len();
        if let Some(t) = map
            .get("resourceType")
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
        {
            path.push('=');
            path.push_str(&t);
        }
        let fields = self.learnt.get(path.as_str());
        let mut changed = false;
        let mut parts = Vec::with_capacity(map.len());
        for (k, v) in &map {
            if let Some(fields) = fields
                && !fields.has(k)
            {
                if !dropped.iter().any(|n| n == k) {
                    dropped.push(k.clone());
                }
                changed = true;
                continue;
            }
            let here = path.len();
            path.push('/');
            path.push_str(k);
            let below = self.learnt.keys().any(|p| {
                p.strip_prefix(path.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '=']))
            });
            let inner = if below {
                self.clean_learnt(v.get(), path, dropped)
            } else {
                None
            };
            path.truncate(here);
            let key = serde_json::to_string(k).ok()?;
            match inner {
                Some(c) => {
                    changed = true;
                    parts.push(format!("{key}:{c}"));
                }
                None => parts.push(format!("{key}:{}", v.get())),
            }
        }
        path.truncate(len);
        changed.then(|| format!("{{{}}}", parts.join(",")))
    }

    /// One round for the error "unknown field `x`": see [`Parser`].
    fn round(
        &mut self,
        value: &mut serde_json::Value,
        unknown: &UnknownField,
        start: usize,
    ) -> Round {
        // The paths of the objects holding `x`, each with the fewest keys outside the
        // refusing type's list among its objects, in document order.
        let mut paths: Vec<(String, usize)> = Vec::new();
        let mut path = String::new();
        each_object(value, &mut path, &mut |path, map| {
            if !map.contains_key(&unknown.field) {
                return;
            }
            let foreign = unknown.foreign_keys(map);
            match paths.iter_mut().find(|(p, _)| p == path) {
                Some((_, f)) => *f = (*f).min(foreign),
                None => paths.push((path.to_string(), foreign)),
            }
        });
        paths.sort_by_key(|(_, foreign)| *foreign); // stable: document order within ties
        for (probes, (path, foreign)) in paths.iter().enumerate() {
            if *foreign == 0 && !self.seen.contains(path) {
                // Only `x` is foreign here: drop just `x`, as before the probes (no
                // neighbour can be lost; a second time at this path, probe and learn).
                self.seen.insert(path.clone());
                let mut names = Vec::new();
                at_path(value, path, &mut |map| {
                    if map.contains_key(&unknown.field) && unknown.foreign_keys(map) == 0 {
                        drop_foreign(map, &unknown.fields, Some(&unknown.field), &mut names);
                    }
                });
                return Round::Dropped(names);
            }
            if probes == MAX_PROBES || self.parses - start + 1 >= MAX_PARSES {
                break;
            }
            if self.probing.is_none() {
                let mut clean = true;
                let mut p = String::new();
                each_object(value, &mut p, &mut |_, map| {
                    clean &= !map.contains_key(PROBE);
                });
                self.probing = Some(clean);
            }
            if self.probing == Some(false) {
                break;
            }
            if let Some(mut names) = self.confirms(value, path, unknown) {
                at_path(value, path, &mut |map| {
                    drop_foreign(map, &unknown.fields, Some(&unknown.field), &mut names);
                });
                self.learnt.insert(path.clone(), unknown.fields.clone());
                return Round::Dropped(names);
            }
        }
        // No path confirmed: drop `x` from the objects most like the refusing type, as
        // before the probes (one element per round).
        let Some(&(_, fewest)) = paths.first() else {
            return Round::Stuck;
        };
        let mut removed = false;
        for (path, foreign) in &paths {
            if *foreign != fewest {
                continue;
            }
            at_path(value, path, &mut |map| {
                if map.contains_key(&unknown.field) && unknown.foreign_keys(map) == fewest {
                    map.retain(|k, _| k != &unknown.field);
                    removed = true;
                }
            });
        }
        if removed {
            Round::Dropped(vec![unknown.field.clone()])
        } else {
            Round::Stuck
        }
    }

    /// Whether the first object at `path` holding `x` is of the refusing type: with every
    /// key outside the refusing type's list replaced by the probe key, fhirbolt refuses
    /// the probe with the same list (fhirbolt visits an object's known keys first and
    /// its unknown keys last, so the probe is the only unknown key it can meet there).
    /// When it is, the object stays without those keys and their names are returned;
    /// when not, the object is put back as it was.
    fn confirms(
        &mut self,
        value: &mut serde_json::Value,
        path: &str,
        unknown: &UnknownField,
    ) -> Option<Vec<String>> {
        let mut saved: Option<Vec<(String, serde_json::Value)>> = None;
        at_path(value, path, &mut |map| {
            if saved.is_some() || !map.contains_key(&unknown.field) {
                return;
            }
            let mut foreign = Vec::new();
            for (k, v) in std::mem::take(map) {
                if unknown.fields.has(&k) && k != unknown.field {
                    map.insert(k, v);
                } else {
                    foreign.push((k, v));
                }
            }
            map.insert(PROBE.to_string(), serde_json::Value::Bool(true));
            saved = Some(foreign);
        });
        let saved = saved?;
        let answer = self.strict(&value.to_string());
        let confirmed = match answer {
            Ok(_) => false,
            Err(e) => UnknownField::parse(&e)
                .is_some_and(|p| p.field == PROBE && p.fields.0 == unknown.fields.0),
        };
        let names = saved.iter().map(|(k, _)| k.clone()).collect();
        let mut saved = Some(saved);
        at_path(value, path, &mut |map| {
            if map.remove(PROBE).is_some()
                && !confirmed
                && let Some(back) = saved.take()
            {
                map.extend(back);
            }
        });
        confirmed.then_some(names)
    }
}

fn too_many(dropped: &[String]) -> String {
    format!(
        "{} unknown elements ({}, …): unknown elements could not be dropped",
        dropped.len(),
        dropped.first().map(String::as_str).unwrap_or_default()
    )
}

/// Removes from `map` every key outside `fields` (and `also`), adding each removed name
/// to `names` once.
fn drop_foreign(
    map: &mut serde_json::Map<String, serde_json::Value>,
    fields: &Fields,
    also: Option<&str>,
    names: &mut Vec<String>,
) {
    map.retain(|k, _| {
        let keep = fields.has(k) && also != Some(k.as_str());
        if !keep && !names.iter().any(|n| n == k) {
            names.push(k.clone());
        }
        keep
    });
}

/// Calls `f` on every object of `value`, outermost first, in document order, with its
/// path: the keys leading to it (array indices left out), and `=Type` after the key of
/// an object with a `resourceType`. `f` may remove keys; the walk goes on into what is
/// left.
fn each_object(
    value: &mut serde_json::Value,
    path: &mut String,
    f: &mut impl FnMut(&str, &mut serde_json::Map<String, serde_json::Value>),
) {
    match value {
        serde_json::Value::Object(map) => {
            let len = path.len();
            if let Some(serde_json::Value::String(t)) = map.get("resourceType") {
                path.push('=');
                path.push_str(t);
            }
            f(path, map);
            for (k, v) in map.iter_mut() {
                if v.is_object() || v.is_array() {
                    let here = path.len();
                    path.push('/');
                    path.push_str(k);
                    each_object(v, path, f);
                    path.truncate(here);
                }
            }
            path.truncate(len);
        }
        serde_json::Value::Array(items) => {
            for v in items {
                each_object(v, path, f);
            }
        }
        _ => {}
    }
}

/// Calls `f` on every object at `path` (see [`each_object`]).
fn at_path(
    value: &mut serde_json::Value,
    path: &str,
    f: &mut impl FnMut(&mut serde_json::Map<String, serde_json::Value>),
) {
    let mut p = String::new();
    each_object(value, &mut p, &mut |here, map| {
        if here == path {
            f(map);
        }
    });
}

/// A serde "unknown field" error: the field and the fields its type accepts.
struct UnknownField {
    field: String,
    fields: Fields,
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
            fields: Fields(expected),
        })
    }

    /// How many keys of an object holding the field, other than the field, do not belong
    /// to the refusing type.
    fn foreign_keys(&self, map: &serde_json::Map<String, serde_json::Value>) -> usize {
        map.keys()
            .filter(|k| *k != &self.field && !self.fields.has(k))
            .count()
    }
}
