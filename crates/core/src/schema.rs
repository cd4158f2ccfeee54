//! Tool schemas that strict MCP clients accept (the MCP Inspector's `--strict`, Ajv).
//!
//! Rules, applied by [`Portable`] to every generated input and output schema:
//! - only formats JSON Schema defines: schemars' `uint`/`uint8`…`uint64`/`int8`…`int64`/
//!   `float`/`double` formats are dropped, and an integer format's range becomes
//!   `minimum`/`maximum` (a `u64` field says `minimum: 0`);
//! - one `type` per schema: `"type": ["string", "null"]` becomes
//!   `anyOf: [{"type": "string", …}, {"type": "null"}]`, annotations staying outside.
//!
//! A free-form JSON field (`serde_json::Value`) has no schema a client can check: its
//! schemars schema is a bare `true`. Such fields declare what they hold with
//! `#[schemars(schema_with = "…::schema::json_object")]` (or [`json_object_or_null`]).

use schemars::transform::{Transform, transform_subschemas};
use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value};

/// Formats JSON Schema 2020-12 defines (validators may check them; others are ignored).
pub const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Annotation keywords kept on the outer schema when a type list is split.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
    "$id",
    "$schema",
    "$defs",
    "definitions",
];

/// A JSON object with any members (a tool request, a report, an environment record).
pub(crate) fn json_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "object", "additionalProperties": true})
}

/// A JSON object with any members, or null.
pub fn json_object_or_null(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"anyOf": [
        {"type": "object", "additionalProperties": true},
        {"type": "null"}
    ]})
}

/// The range an integer format stands for.
fn integer_range(format: &str) -> Option<(Option<i128>, Option<i128>)> {
    Some(match format {
        "uint" | "uint64" | "uint128" | "usize" => (Some(0), None),
        "uint8" => (Some(0), Some(u8::MAX as i128)),
        "uint16" => (Some(0), Some(u16::MAX as i128)),
        "uint32" => (Some(0), Some(u32::MAX as i128)),
        "int8" => (Some(i8::MIN as i128), Some(i8::MAX as i128)),
        "int16" => (Some(i16::MIN as i128), Some(i16::MAX as i128)),
        "int32" => (Some(i32::MIN as i128), Some(i32::MAX as i128)),
        _ => return None,
    })
}

fn fix_format(o: &mut Map<String, Value>) {
    let Some(Value::String(f)) = o.get("format") else {
        return;
    };
    if STANDARD_FORMATS.contains(&f.as_str()) {
        return;
    }
    let f = f.clone();
    o.remove("format");
    if let Some((lo, hi)) = integer_range(&f) {
        if let Some(lo) = lo
            && !o.contains_key("minimum")
            && !o.contains_key("exclusiveMinimum")
        {
            o.insert("minimum".into(), Value::from(lo as i64));
        }
        if let Some(hi) = hi
            && !o.contains_key("maximum")
            && !o.contains_key("exclusiveMaximum")
        {
            o.insert("maximum".into(), Value::from(hi as i64));
        }
    }
}

/// `"type": [a, b]` → `anyOf` with one single-type branch per entry.
fn split_type_list(o: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = o.get("type") else {
        return;
    };
    let types = types.clone();
    o.remove("type");
    let mut validation = Map::new();
    for k in o.keys().cloned().collect::<Vec<_>>() {
        if !ANNOTATIONS.contains(&k.as_str()) {
            validation.insert(k.clone(), o.remove(&k).expect("key listed"));
        }
    }
    let branches: Vec<Value> = types
        .into_iter()
        .map(|t| {
            if t == "null" {
                return serde_json::json!({"type": "null"});
            }
            let mut b = validation.clone();
            if let Some(Value::Array(e)) = b.get_mut("enum") {
                e.retain(|v| !v.is_null());
            }
            b.insert("type".into(), t);
            Value::Object(b)
        })
        .collect();
    match o.get_mut("anyOf") {
        Some(_) => {
            // Both a type list and anyOf: keep both constraints.
            let prior = o.remove("anyOf").expect("present");
            o.insert(
                "allOf".into(),
                serde_json::json!([{"anyOf": prior}, {"anyOf": branches}]),
            );
        }
        None => {
            o.insert("anyOf".into(), Value::Array(branches));
        }
    }
}

/// The schemars transform of the rules above.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Portable;

impl Transform for Portable {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(o) = schema.as_object_mut() {
            fix_format(o);
            split_type_list(o);
        }
        transform_subschemas(self, schema);
    }
}

/// Apply [`Portable`] to a generated schema given as a JSON object.
pub fn portable(object: Map<String, Value>) -> Map<String, Value> {
    let mut s = Schema::from(object);
    Portable.transform(&mut s);
    match s.to_value() {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_formats_become_ranges_and_type_lists_become_any_of() {
        let o = serde_json::json!({
            "type": "object",
            "properties": {
                "n": {"type": "integer", "format": "uint64", "minimum": 0},
                "k": {"type": ["integer", "null"], "format": "uint32", "description": "k"},
                "m": {"type": ["string", "null"], "enum": ["a", "b", null]},
                "t": {"type": "string", "format": "date-time"}
            }
        });
        let Value::Object(o) = o else { unreachable!() };
        let p = Value::Object(portable(o));
        let props = &p["properties"];
        assert_eq!(
            props["n"],
            serde_json::json!({"type": "integer", "minimum": 0})
        );
        assert_eq!(
            props["k"],
            serde_json::json!({"description": "k", "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": 4294967295u64},
                {"type": "null"}
            ]})
        );
        assert_eq!(
            props["m"]["anyOf"][0],
            serde_json::json!({"type": "string", "enum": ["a", "b"]})
        );
        assert_eq!(props["t"]["format"], "date-time");
    }
}
