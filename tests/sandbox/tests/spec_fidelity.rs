//! Spec fidelity: the sandbox's actual responses validate against the response schemas that
//! PagerDuty's official OpenAPI document declares for the same operations.
//!
//! The spec is read from `$SEATSCOPE_VENDOR_SPECS/pagerduty/openapiv3.json` (default:
//! `<CARGO_MANIFEST_DIR>/../../../shared/vendor-specs`). A missing spec fails the test: a
//! fidelity check that silently passes would be worse than none.
//!
//! OpenAPI 3.0 schemas become JSON Schema (draft 4, the closest to OAS 3.0) by inlining
//! every local `$ref`, turning `nullable: true` into a `null` type, and dropping
//! OpenAPI-only keywords (`example`, `discriminator`, ...). Formats are validated
//! (`date-time`, `email`); OpenAPI's own formats (`url`, `tzinfo`) are not JSON Schema
//! formats and are ignored.
//!
//! Two places where the spec contradicts itself (and PagerDuty's real responses) are
//! patched, each asserted to still be present so the patch is dropped when the spec is
//! fixed — see [`patch_known_drift`]. Everything else is validated as written, and on top of
//! the schema check every object key the sandbox emits must be declared by the schema (the
//! spec does not forbid extra keys, so without this a misspelt field would pass).

use std::collections::BTreeMap;
use std::path::PathBuf;

mod common;

use common::*;
use reqwest::StatusCode;
use seatscope_sandbox::PagerDutyConfig;
use serde_json::{json, Map, Value};

fn spec_path() -> PathBuf {
    let dir = std::env::var_os("SEATSCOPE_VENDOR_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vendor-specs")
        });
    dir.join("pagerduty/openapiv3.json")
}

fn load_spec() -> Value {
    let path = spec_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "PagerDuty's OpenAPI spec is required for this test and could not be read at {} \
             ({e}). Set SEATSCOPE_VENDOR_SPECS to the vendor-specs directory.",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The spec's known self-contradictions, patched in place.
///
/// 1. `AcknowledgeLogEntry` is `allOf: [LogEntry, {type: enum ["acknowledgement_log_entry"]}]`
///    while `LogEntry.type` allows only `acknowledge_log_entry` — no document can satisfy
///    both. PagerDuty sends `acknowledge_log_entry` (the spec's own `LogEntry` enum, its
///    webhook docs, every client library), so the subtype's enum is corrected to that.
/// 2. `Channel` is a `oneOf` of five variants (Nagios, API, Email, WebTrigger, Website) that
///    do not constrain `type`, so e.g. `{"type": "api"}` matches all five and `oneOf` fails
///    for every channel PagerDuty sends (the spec's own `/log_entries` example fails this
///    way; see the research notes on spec drift). It is read as `anyOf`, the evident intent.
fn patch_known_drift(spec: &mut Value) {
    let ack = spec
        .pointer_mut("/components/schemas/AcknowledgeLogEntry/allOf/1/properties/type/enum")
        .expect("AcknowledgeLogEntry's type enum is where it was");
    assert_eq!(
        *ack,
        json!(["acknowledgement_log_entry"]),
        "the spec's AcknowledgeLogEntry type changed: re-check drift 1 and drop the patch"
    );
    *ack = json!(["acknowledge_log_entry"]);

    let channel = spec
        .pointer_mut("/components/schemas/Channel")
        .and_then(Value::as_object_mut)
        .expect("Channel schema");
    let variants = channel
        .remove("oneOf")
        .expect("Channel is still a oneOf: re-check drift 2 and drop the patch");
    channel.insert("anyOf".into(), variants);
}

/// Inlines local `$ref`s and converts OpenAPI 3.0 schema keywords to JSON Schema.
fn to_json_schema(node: &Value, spec: &Value, stack: &mut Vec<String>) -> Value {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let pointer = reference
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("external $ref {reference} is not supported"));
                assert!(!stack.contains(reference), "recursive $ref {reference}");
                let target = spec
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {reference}"));
                stack.push(reference.clone());
                let resolved = to_json_schema(target, spec, stack);
                stack.pop();
                return resolved;
            }
            let mut out = Map::new();
            for (key, value) in map {
                match key.as_str() {
                    // OpenAPI-only or annotation keywords.
                    "example" | "examples" | "discriminator" | "xml" | "externalDocs"
                    | "nullable" | "deprecated" => {}
                    // Data, not schemas.
                    "enum" | "default" | "const" => {
                        out.insert(key.clone(), value.clone());
                    }
                    // Property names are not keywords; their values are schemas.
                    "properties" => {
                        let props = value
                            .as_object()
                            .map(|p| {
                                p.iter()
                                    .map(|(name, s)| (name.clone(), to_json_schema(s, spec, stack)))
                                    .collect::<Map<_, _>>()
                            })
                            .unwrap_or_default();
                        out.insert(key.clone(), Value::Object(props));
                    }
                    _ => {
                        out.insert(key.clone(), to_json_schema(value, spec, stack));
                    }
                }
            }
            if map.get("nullable") == Some(&Value::Bool(true)) {
                match out.get("type").cloned() {
                    Some(Value::String(t)) => {
                        out.insert("type".into(), json!([t, "null"]));
                        if let Some(Value::Array(values)) = out.get_mut("enum") {
                            values.push(Value::Null);
                        }
                    }
                    _ => return json!({ "anyOf": [{ "type": "null" }, Value::Object(out)] }),
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| to_json_schema(item, spec, stack))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The JSON Schema of `method path`'s `status` response, `application/json`.
fn response_schema(spec: &Value, path: &str, method: &str, status: &str) -> Value {
    let operation = &spec["paths"][path][method];
    assert!(operation.is_object(), "no {method} {path} in the spec");
    let mut response = &operation["responses"][status];
    // A response may itself be a $ref into components/responses.
    if let Some(reference) = response["$ref"].as_str() {
        response = spec
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {reference}"));
    }
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} declares no application/json schema for {status}"
    );
    to_json_schema(schema, spec, &mut Vec::new())
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("the converted schema does not compile: {e}"))
}

/// Schema errors plus keys that the schema does not declare, each with its location.
fn problems(schema: &Value, instance: &Value) -> Vec<String> {
    let mut out: Vec<String> = validator(schema)
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    undeclared(schema, instance, "", &mut out);
    out
}

/// Whether a variant of a `oneOf`/`anyOf` can describe `instance`, judged by its `type` enum
/// (how PagerDuty's polymorphic schemas discriminate).
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
    let Some(kind) = instance.get("type") else {
        return true;
    };
    let mut enums = Vec::new();
    type_enums(variant, &mut enums);
    enums
        .iter()
        .all(|values| values.as_array().is_some_and(|v| v.contains(kind)))
}

/// Property name → the schemas that declare it, through `allOf` and fitting variants.
fn declared_properties(schema: &Value, instance: &Value, out: &mut BTreeMap<String, Vec<Value>>) {
    if let Some(props) = schema["properties"].as_object() {
        for (name, s) in props {
            out.entry(name.clone()).or_default().push(s.clone());
        }
    }
    for sub in schema["allOf"].as_array().into_iter().flatten() {
        declared_properties(sub, instance, out);
    }
    for key in ["anyOf", "oneOf"] {
        for sub in schema[key].as_array().into_iter().flatten() {
            if variant_fits(sub, instance) {
                declared_properties(sub, instance, out);
            }
        }
    }
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

fn undeclared(schema: &Value, instance: &Value, at: &str, out: &mut Vec<String>) {
    match instance {
        Value::Object(map) => {
            let mut props = BTreeMap::new();
            declared_properties(schema, instance, &mut props);
            if props.is_empty() {
                return; // a free-form object (e.g. `details`)
            }
            for (key, value) in map {
                let here = format!("{at}/{key}");
                match props.get(key) {
                    None => out.push(format!("{here}: not declared by the spec")),
                    Some(schemas) => {
                        for s in schemas {
                            undeclared(s, value, &here, out);
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
                    undeclared(s, item, &format!("{at}/{i}"), out);
                }
            }
        }
        _ => {}
    }
}

#[track_caller]
fn assert_conforms(what: &str, schema: &Value, instance: &Value) {
    let found = problems(schema, instance);
    assert!(
        found.is_empty(),
        "{what} does not match PagerDuty's spec:\n  {}",
        found.into_iter().take(20).collect::<Vec<_>>().join("\n  ")
    );
}

async fn body(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json")));
    response.json().await.expect("a JSON body")
}

#[tokio::test]
async fn responses_validate_against_the_pagerduty_openapi_schemas() {
    let mut spec = load_spec();
    patch_known_drift(&mut spec);
    let sandbox = start(PagerDutyConfig {
        api_token: Some("spec-key".into()),
        ..config()
    })
    .await;
    let client = http();
    let key = "Token token=spec-key";

    // GET /users (every user, total on).
    let schema = response_schema(&spec, "/users", "get", "200");
    let users = body(
        api_get(&client, &sandbox, key, "/users?limit=100&total=true").await,
        StatusCode::OK,
    )
    .await;
    assert_conforms("GET /users", &schema, &users);
    let users = body(
        api_get(&client, &sandbox, key, "/users?limit=3&offset=3").await,
        StatusCode::OK,
    )
    .await;
    assert_conforms("GET /users (page 2, total null)", &schema, &users);

    // GET /users/me with an OAuth token; 400 with the account key.
    let (access, _) = tokens(&client, &sandbox).await;
    let me = body(
        api_get(&client, &sandbox, &format!("Bearer {access}"), "/users/me").await,
        StatusCode::OK,
    )
    .await;
    assert_conforms(
        "GET /users/me",
        &response_schema(&spec, "/users/me", "get", "200"),
        &me,
    );
    let me_key = body(
        api_get(&client, &sandbox, key, "/users/me").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_conforms(
        "GET /users/me 400 (account key)",
        &response_schema(&spec, "/users/me", "get", "400"),
        &me_key,
    );

    // GET /log_entries: every page of the whole range, so every type/agent/channel is seen.
    let schema = response_schema(&spec, "/log_entries", "get", "200");
    let mut offset = 0;
    let mut kinds = std::collections::BTreeSet::new();
    loop {
        let page = body(
            api_get(
                &client,
                &sandbox,
                key,
                &format!(
                    "/log_entries?since=2026-03-02T00:00:00Z&until=2026-04-01T00:00:00Z\
                     &limit=100&offset={offset}&total=true&time_zone=UTC"
                ),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_conforms(&format!("GET /log_entries offset={offset}"), &schema, &page);
        let entries = page["log_entries"].as_array().expect("log_entries");
        for e in entries {
            kinds.insert(format!(
                "{} by {} via {}",
                e["type"].as_str().unwrap_or(""),
                e["agent"]["type"].as_str().unwrap_or(""),
                e["channel"]["type"].as_str().unwrap_or("")
            ));
        }
        if page["more"] != true {
            break;
        }
        offset += entries.len();
    }
    assert!(
        kinds.len() >= 15,
        "too few entry shapes validated: {kinds:?}"
    );

    // 400: offset + limit beyond 10 000, and an invalid since.
    let schema = response_schema(&spec, "/log_entries", "get", "400");
    let error = body(
        api_get(&client, &sandbox, key, "/log_entries?offset=9950&limit=100").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_conforms("GET /log_entries 400 (offset)", &schema, &error);
    let error = body(
        api_get(&client, &sandbox, key, "/log_entries?since=not-a-date").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_conforms("GET /log_entries 400 (since)", &schema, &error);

    // 401.
    let error = body(
        api_get(&client, &sandbox, "Bearer unknown", "/log_entries").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_conforms(
        "GET /log_entries 401",
        &response_schema(&spec, "/log_entries", "get", "401"),
        &error,
    );

    // 429, from a sandbox allowing one request a minute.
    let limited = start(PagerDutyConfig {
        api_token: Some("spec-key".into()),
        rate_limit_per_minute: 1,
        ..config()
    })
    .await;
    body(
        api_get(&client, &limited, key, "/log_entries?limit=1").await,
        StatusCode::OK,
    )
    .await;
    let error = body(
        api_get(&client, &limited, key, "/log_entries?limit=1").await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    for path in ["/log_entries", "/users"] {
        assert_conforms(
            &format!("GET {path} 429"),
            &response_schema(&spec, path, "get", "429"),
            &error,
        );
    }
}

#[test]
fn the_patched_drift_is_real_and_the_patches_are_what_make_pagerduty_shapes_valid() {
    let spec = load_spec();
    let mut patched = spec.clone();
    patch_known_drift(&mut patched);
    let ack = json!({
        "log_entries": [{
            "id": "R2XGXEI3W0FHMRBTCDG3UOVOG7",
            "type": "acknowledge_log_entry",
            "summary": "Acknowledged by Ada Berg",
            "self": "https://api.pagerduty.com/log_entries/R2XGXEI3W0FHMRBTCDG3UOVOG7",
            "html_url": null,
            "created_at": "2026-03-01T10:00:00Z",
            "agent": { "id": "PXPGF42", "type": "user_reference" },
            "channel": { "type": "website" },
            "contexts": []
        }],
        "limit": 1, "offset": 0, "more": false, "total": null
    });
    let example = spec
        .pointer("/paths/~1log_entries/get/responses/200/content/application~1json/examples/response/value")
        .cloned()
        .expect("the spec's /log_entries example");

    let original = response_schema(&spec, "/log_entries", "get", "200");
    let fixed = response_schema(&patched, "/log_entries", "get", "200");
    assert!(
        !validator(&original).is_valid(&ack),
        "drift 1/2 gone: drop the patches"
    );
    assert!(
        !validator(&original).is_valid(&example),
        "drift 2 gone: drop the patch"
    );
    assert_conforms("a real acknowledge entry", &fixed, &ack);
    assert!(
        validator(&fixed).is_valid(&example),
        "the spec's own example, patched"
    );
}

#[test]
fn a_wrong_enum_an_undeclared_key_and_a_missing_field_are_all_reported() {
    let spec = load_spec();
    let schema = response_schema(&spec, "/users", "get", "200");
    let good = json!({
        "users": [{ "id": "PXPGF42", "type": "user", "name": "Ada Berg", "email": "ada@example.com",
                    "role": "admin", "description": null }],
        "limit": 25, "offset": 0, "more": false, "total": null
    });
    assert_conforms("a minimal valid page", &schema, &good);
    let mut bad = good.clone();
    bad["users"][0]["role"] = json!("superuser");
    bad["users"][0]["html_ur"] = json!("https://x");
    bad["users"][0].as_object_mut().map(|u| u.remove("email"));
    bad["total"] = json!("3");
    let found = problems(&schema, &bad).join("\n");
    for expected in ["/users/0/role", "/users/0/html_ur", "email", "/total"] {
        assert!(
            found.contains(expected),
            "{expected} not reported in:\n{found}"
        );
    }
}
