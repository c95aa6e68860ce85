//! Vendors' OpenAPI documents as JSON Schema: loading a spec, inlining its `$ref`s, reading
//! `nullable`, validating with `jsonschema`, and the "undeclared key" check on top.
//!
//! Each vendor's spec-fidelity test describes how its documents are read with a [`Dialect`]
//! (the draft, the keywords dropped, how `$ref` siblings and `nullable` are read) and keeps
//! its own spec-defect patches.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Map, Value};

/// `$SEATSCOPE_VENDOR_SPECS` (default: `<CARGO_MANIFEST_DIR>/../../../shared/vendor-specs`).
pub fn vendor_specs_dir() -> PathBuf {
    std::env::var_os("SEATSCOPE_VENDOR_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vendor-specs")
        })
}

/// OpenAPI-only and annotation keywords that every [`Dialect`] drops.
pub const DROPPED: &[&str] = &[
    "example",
    "examples",
    "discriminator",
    "xml",
    "externalDocs",
    "nullable",
    "deprecated",
];

/// How a `$ref` with sibling keywords is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefSiblings {
    /// OpenAPI 3.0: the `$ref` replaces the whole node, its siblings are ignored.
    Ignored,
    /// OpenAPI 3.1: the target becomes `allOf: [target]` next to the siblings (or the node
    /// itself when there are none).
    AllOf,
}

/// How OpenAPI 3.0's `nullable: true` is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nullable {
    /// Literally, as JSON Schema does: the keyword is dropped and means nothing.
    Ignored,
    /// `anyOf: [{type: null}, <schema>]`, whatever the schema.
    AnyOf,
    /// `type: T` (or `type: [T, ...]`) gains `"null"`, and so does an `enum`; a schema
    /// without a `type` becomes `anyOf: [{type: null}, <schema>]`.
    NullType,
}

/// Which `oneOf`/`anyOf` variants declare an object's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variants {
    /// Every variant.
    All,
    /// The variants that fit the object: by JSON type, then by their `type` property's
    /// enum (how polymorphic schemas discriminate).
    Fitting,
}

/// How one vendor's OpenAPI documents become JSON Schema and are checked.
#[derive(Clone, Copy, Debug)]
pub struct Dialect {
    /// The vendor, as named in assertion messages ("… does not match PagerDuty's spec").
    pub vendor: &'static str,
    pub draft: jsonschema::Draft,
    /// Keywords dropped on top of [`DROPPED`].
    pub also_dropped: &'static [&'static str],
    /// Whether `x-…` vendor extensions are dropped too.
    pub drop_extensions: bool,
    pub ref_siblings: RefSiblings,
    pub nullable: Nullable,
    pub variants: Variants,
    /// Whether a failed [`Dialect::assert_conforms`] prints the instance as well.
    pub show_instance: bool,
}

impl Dialect {
    /// The vendor's OpenAPI document at `relative` (e.g. `pagerduty/openapiv3.json`) under
    /// [`vendor_specs_dir`]. A missing spec fails the test: a fidelity check that silently
    /// passes would be worse than none.
    pub fn load_spec(&self, relative: &str) -> Value {
        let path = vendor_specs_dir().join(relative);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}'s OpenAPI spec is required for this test and could not be read at {} \
                 ({e}). Set SEATSCOPE_VENDOR_SPECS to the vendor-specs directory.",
                self.vendor,
                path.display()
            )
        });
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    }

    /// Inlines local `$ref`s and converts OpenAPI schema keywords to JSON Schema.
    pub fn json_schema(&self, node: &Value, spec: &Value) -> Value {
        self.convert(node, spec, &mut Vec::new())
    }

    fn convert(&self, node: &Value, spec: &Value, stack: &mut Vec<String>) -> Value {
        match node {
            Value::Object(map) => {
                let reference = match map.get("$ref") {
                    Some(Value::String(reference)) => Some(reference),
                    _ => None,
                };
                if let Some(reference) = reference {
                    if self.ref_siblings == RefSiblings::Ignored {
                        return self.resolve(reference, spec, stack);
                    }
                }
                let mut out = Map::new();
                for (key, value) in map {
                    match key.as_str() {
                        "$ref" => {}
                        k if DROPPED.contains(&k) || self.also_dropped.contains(&k) => {}
                        k if self.drop_extensions && k.starts_with("x-") => {}
                        // Data, not schemas.
                        "enum" | "default" | "const" | "required" => {
                            out.insert(key.clone(), value.clone());
                        }
                        // Property names are not keywords; their values are schemas.
                        "properties" => {
                            let props = value
                                .as_object()
                                .map(|p| {
                                    p.iter()
                                        .map(|(name, s)| {
                                            (name.clone(), self.convert(s, spec, stack))
                                        })
                                        .collect::<Map<_, _>>()
                                })
                                .unwrap_or_default();
                            out.insert(key.clone(), Value::Object(props));
                        }
                        _ => {
                            out.insert(key.clone(), self.convert(value, spec, stack));
                        }
                    }
                }
                if let Some(reference) = reference {
                    let resolved = self.resolve(reference, spec, stack);
                    if out.is_empty() {
                        out = resolved.as_object().cloned().unwrap_or_default();
                    } else {
                        out.insert("allOf".into(), json!([resolved]));
                    }
                }
                if map.get("nullable") == Some(&Value::Bool(true)) {
                    match self.nullable {
                        Nullable::Ignored => {}
                        Nullable::AnyOf => {
                            return json!({ "anyOf": [{ "type": "null" }, Value::Object(out)] })
                        }
                        Nullable::NullType => {
                            match out.get("type").cloned() {
                                Some(Value::String(t)) => {
                                    out.insert("type".into(), json!([t, "null"]));
                                }
                                Some(Value::Array(mut types)) => {
                                    types.push(json!("null"));
                                    out.insert("type".into(), Value::Array(types));
                                }
                                _ => {
                                    return json!({ "anyOf": [{ "type": "null" }, Value::Object(out)] })
                                }
                            }
                            if let Some(Value::Array(values)) = out.get_mut("enum") {
                                values.push(Value::Null);
                            }
                        }
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.convert(item, spec, stack))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn resolve(&self, reference: &str, spec: &Value, stack: &mut Vec<String>) -> Value {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {reference} is not supported"));
        assert!(
            !stack.iter().any(|r| r == reference),
            "recursive $ref {reference}"
        );
        let target = spec
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {reference}"));
        stack.push(reference.to_string());
        let resolved = self.convert(target, spec, stack);
        stack.pop();
        resolved
    }

    /// The JSON Schema of `method path`'s `status` response, `application/json`.
    pub fn response_schema(&self, spec: &Value, path: &str, method: &str, status: &str) -> Value {
        self.json_schema(raw_response_schema(spec, path, method, status), spec)
    }

    /// The JSON Schema of `components/responses/<name>`.
    pub fn shared_response_schema(&self, spec: &Value, name: &str) -> Value {
        let response = json!({ "$ref": format!("#/components/responses/{name}") });
        self.json_schema(raw_schema_of_response(spec, &response, name), spec)
    }

    /// The JSON Schema of `components/schemas/<name>`.
    pub fn component_schema(&self, spec: &Value, name: &str) -> Value {
        let schema = spec
            .pointer(&format!("/components/schemas/{name}"))
            .unwrap_or_else(|| panic!("no components/schemas/{name}"));
        self.json_schema(schema, spec)
    }

    pub fn validator(&self, schema: &Value) -> jsonschema::Validator {
        jsonschema::options()
            .with_draft(self.draft)
            .should_validate_formats(true)
            .build(schema)
            .unwrap_or_else(|e| panic!("the converted schema does not compile: {e}"))
    }

    /// Schema errors plus keys that the schema does not declare, each with its location.
    pub fn problems(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let mut out: Vec<String> = self
            .validator(schema)
            .iter_errors(instance)
            .map(|e| format!("{}: {e}", e.instance_path))
            .collect();
        self.undeclared(schema, instance, "", &mut out);
        out
    }

    #[track_caller]
    pub fn assert_conforms(&self, what: &str, schema: &Value, instance: &Value) {
        let found = self.problems(schema, instance);
        let vendor = self.vendor;
        let listed = || {
            found
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        if self.show_instance {
            assert!(
                found.is_empty(),
                "{what} does not match {vendor}'s spec:\n  {}\n{instance}",
                listed()
            );
        } else {
            assert!(
                found.is_empty(),
                "{what} does not match {vendor}'s spec:\n  {}",
                listed()
            );
        }
    }

    /// Property name → the schemas that declare it, through `allOf` and the variants
    /// [`Dialect::variants`] admits.
    fn declared_properties(
        &self,
        schema: &Value,
        instance: &Value,
        out: &mut BTreeMap<String, Vec<Value>>,
    ) {
        if let Some(props) = schema["properties"].as_object() {
            for (name, s) in props {
                out.entry(name.clone()).or_default().push(s.clone());
            }
        }
        for sub in schema["allOf"].as_array().into_iter().flatten() {
            self.declared_properties(sub, instance, out);
        }
        for key in ["anyOf", "oneOf"] {
            for sub in schema[key].as_array().into_iter().flatten() {
                if self.variants == Variants::All || variant_fits(sub, instance) {
                    self.declared_properties(sub, instance, out);
                }
            }
        }
    }

    fn undeclared(&self, schema: &Value, instance: &Value, at: &str, out: &mut Vec<String>) {
        match instance {
            Value::Object(map) => {
                let mut props = BTreeMap::new();
                self.declared_properties(schema, instance, &mut props);
                if props.is_empty() {
                    return; // a free-form object (e.g. PagerDuty's `details`)
                }
                for (key, value) in map {
                    let here = format!("{at}/{key}");
                    match props.get(key) {
                        None => out.push(format!("{here}: not declared by the spec")),
                        Some(schemas) => {
                            for s in schemas {
                                self.undeclared(s, value, &here, out);
                            }
                        }
                    }
                }
            }
            Value::Array(items) => {
                let mut schemas = Vec::new();
                item_schemas(schema, &mut schemas);
                for (i, item) in items.iter().enumerate() {
                    for s in &schemas {
                        self.undeclared(s, item, &format!("{at}/{i}"), out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The raw (OpenAPI) schema of `method path`'s `status` response, `application/json`.
pub fn raw_response_schema<'a>(
    spec: &'a Value,
    path: &str,
    method: &str,
    status: &str,
) -> &'a Value {
    let operation = &spec["paths"][path][method];
    assert!(operation.is_object(), "no {method} {path} in the spec");
    let response = &operation["responses"][status];
    assert!(
        response.is_object(),
        "{method} {path} declares no {status} response"
    );
    raw_schema_of_response(spec, response, &format!("{method} {path} {status}"))
}

/// The raw schema of a response object (inline or a `$ref` into `components/responses`).
fn raw_schema_of_response<'a>(spec: &'a Value, response: &'a Value, what: &str) -> &'a Value {
    let mut response = response;
    if let Some(reference) = response["$ref"].as_str() {
        response = spec
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {reference}"));
    }
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{what} declares no application/json schema"
    );
    schema
}

/// Whether a variant of a `oneOf`/`anyOf` can describe `instance`: by JSON type, then by
/// its `type` property's enum.
fn variant_fits(variant: &Value, instance: &Value) -> bool {
    fn type_enums(schema: &Value, out: &mut Vec<Value>) {
        if let Some(values) = schema
            .pointer("/properties/type/enum")
            .and_then(Value::as_array)
        {
            out.push(Value::Array(values.clone()));
        }
        for sub in schema["allOf"].as_array().into_iter().flatten() {
            type_enums(sub, out);
        }
    }
    if variant["type"] == "null" {
        return instance.is_null();
    }
    let Some(kind) = instance.get("type") else {
        return true;
    };
    let mut enums = Vec::new();
    type_enums(variant, &mut enums);
    enums
        .iter()
        .all(|values| values.as_array().is_some_and(|v| v.contains(kind)))
}

fn item_schemas(schema: &Value, out: &mut Vec<Value>) {
    if schema["items"].is_object() {
        out.push(schema["items"].clone());
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for sub in schema[key].as_array().into_iter().flatten() {
            item_schemas(sub, out);
        }
    }
}
