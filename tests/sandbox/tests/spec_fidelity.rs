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
//! Four places where the spec contradicts itself (and PagerDuty's real responses) are
//! patched, each asserted to still be present so the patch is dropped when the spec is
//! fixed — see [`patch_known_drift`]. Everything else is validated as written, and on top of
//! the schema check every object key the sandbox emits must be declared by the schema (the
//! spec does not forbid extra keys, so without this a misspelt field would pass).

mod support;

use reqwest::StatusCode;
use seatscope_sandbox::PagerDutyConfig;
use serde_json::{json, Value};
use support::pagerduty::*;
use support::spec::{Dialect, Nullable, RefSiblings, Variants};

/// How PagerDuty's OpenAPI 3.0 document is read (see the module documentation).
const PAGERDUTY: Dialect = Dialect {
    vendor: "PagerDuty",
    draft: jsonschema::Draft::Draft4,
    also_dropped: &[],
    drop_extensions: false,
    ref_siblings: RefSiblings::Ignored,
    nullable: Nullable::NullType,
    variants: Variants::Fitting,
    show_instance: false,
};

fn load_spec() -> Value {
    PAGERDUTY.load_spec("pagerduty/openapiv3.json")
}

/// The spec's known self-contradictions (and omissions), patched in place.
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

    // 3. `Oncall.start`/`end` say "If `null`, the on-call is a permanent user on-call" /
    //    "the user does not go off-call", and PagerDuty sends `schedule: null` for those
    //    (a user an escalation rule targets directly), yet none of the three is nullable.
    //    They are read as nullable, the evident intent.
    let oncall = spec
        .pointer_mut("/components/schemas/Oncall/properties")
        .and_then(Value::as_object_mut)
        .expect("Oncall's properties");
    for key in ["start", "end", "schedule"] {
        let property = oncall
            .get_mut(key)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("Oncall.{key}"));
        assert!(
            !property.contains_key("nullable"),
            "Oncall.{key} is nullable now: re-check drift 3 and drop the patch"
        );
        property.insert("nullable".into(), json!(true));
    }

    // 4. A license's `self` and `html_url` are strings in `LicenseWithCounts`, yet every
    //    example of `/licenses`, `/license_allocations` and `/users/{id}/license` (what
    //    PagerDuty sends) has them `null`. They are read as nullable.
    let license = spec
        .pointer_mut("/components/schemas/LicenseWithCounts/allOf/0/properties")
        .and_then(Value::as_object_mut)
        .expect("LicenseWithCounts' properties");
    for key in ["self", "html_url"] {
        let property = license
            .get_mut(key)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("LicenseWithCounts.{key}"));
        assert!(
            !property.contains_key("nullable"),
            "LicenseWithCounts.{key} is nullable now: re-check drift 4 and drop the patch"
        );
        property.insert("nullable".into(), json!(true));
    }
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
    let schema = PAGERDUTY.response_schema(&spec, "/users", "get", "200");
    let users = body(
        api_get(&client, &sandbox, key, "/users?limit=100&total=true").await,
        StatusCode::OK,
    )
    .await;
    PAGERDUTY.assert_conforms("GET /users", &schema, &users);
    let users = body(
        api_get(&client, &sandbox, key, "/users?limit=3&offset=3").await,
        StatusCode::OK,
    )
    .await;
    PAGERDUTY.assert_conforms("GET /users (page 2, total null)", &schema, &users);

    // GET /users/me with an OAuth token; 400 with the account key.
    let (access, _) = tokens(&client, &sandbox).await;
    let me = body(
        api_get(&client, &sandbox, &format!("Bearer {access}"), "/users/me").await,
        StatusCode::OK,
    )
    .await;
    PAGERDUTY.assert_conforms(
        "GET /users/me",
        &PAGERDUTY.response_schema(&spec, "/users/me", "get", "200"),
        &me,
    );
    let me_key = body(
        api_get(&client, &sandbox, key, "/users/me").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    PAGERDUTY.assert_conforms(
        "GET /users/me 400 (account key)",
        &PAGERDUTY.response_schema(&spec, "/users/me", "get", "400"),
        &me_key,
    );

    // GET /log_entries: every page of the whole range, so every type/agent/channel is seen.
    let schema = PAGERDUTY.response_schema(&spec, "/log_entries", "get", "200");
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
        PAGERDUTY.assert_conforms(&format!("GET /log_entries offset={offset}"), &schema, &page);
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
    let schema = PAGERDUTY.response_schema(&spec, "/log_entries", "get", "400");
    let error = body(
        api_get(&client, &sandbox, key, "/log_entries?offset=9950&limit=100").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    PAGERDUTY.assert_conforms("GET /log_entries 400 (offset)", &schema, &error);
    let error = body(
        api_get(&client, &sandbox, key, "/log_entries?since=not-a-date").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    PAGERDUTY.assert_conforms("GET /log_entries 400 (since)", &schema, &error);

    // 401.
    let error = body(
        api_get(&client, &sandbox, "Bearer unknown", "/log_entries").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    PAGERDUTY.assert_conforms(
        "GET /log_entries 401",
        &PAGERDUTY.response_schema(&spec, "/log_entries", "get", "401"),
        &error,
    );

    // GET /oncalls: now (the default), a month's every shift with total, the permanent
    // on-calls alone, one user's earliest, and a page past the first.
    let schema = PAGERDUTY.response_schema(&spec, "/oncalls", "get", "200");
    let mut shapes = std::collections::BTreeSet::new();
    for query in [
        "/oncalls",
        "/oncalls?since=2026-03-01T00:00:00Z&until=2026-04-01T00:00:00Z&limit=100&total=true\
         &time_zone=UTC&include[]=schedules",
        "/oncalls?schedule_ids[]=null",
        "/oncalls?since=2026-03-01&until=2026-04-01&earliest=true",
        "/oncalls?since=2026-03-01&until=2026-04-01&limit=2&offset=2",
    ] {
        let page = body(api_get(&client, &sandbox, key, query).await, StatusCode::OK).await;
        PAGERDUTY.assert_conforms(&format!("GET {query}"), &schema, &page);
        for o in page["oncalls"].as_array().expect("oncalls") {
            shapes.insert(format!(
                "{} level {}",
                o["schedule"]["type"].as_str().unwrap_or("no schedule"),
                o["escalation_level"]
            ));
        }
    }
    assert_eq!(
        shapes.len(),
        2,
        "a scheduled and a permanent on-call: {shapes:?}"
    );
    let schema = PAGERDUTY.response_schema(&spec, "/oncalls", "get", "400");
    for query in [
        "/oncalls?since=2026-04-01T00:00:00Z&until=2026-03-01T00:00:00Z",
        "/oncalls?until=not-a-date",
        "/oncalls?earliest=maybe",
    ] {
        let error = body(
            api_get(&client, &sandbox, key, query).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        PAGERDUTY.assert_conforms(&format!("GET {query} 400"), &schema, &error);
    }
    let error = body(
        api_get(&client, &sandbox, "Bearer unknown", "/oncalls").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    PAGERDUTY.assert_conforms(
        "GET /oncalls 401",
        &PAGERDUTY.response_schema(&spec, "/oncalls", "get", "401"),
        &error,
    );

    // GET /licenses (both license types) and /license_allocations (every user, and a
    // page past the first); 401; 403 where licenses may not be read.
    let licenses = body(
        api_get(&client, &sandbox, key, "/licenses").await,
        StatusCode::OK,
    )
    .await;
    PAGERDUTY.assert_conforms(
        "GET /licenses",
        &PAGERDUTY.response_schema(&spec, "/licenses", "get", "200"),
        &licenses,
    );
    let groups: std::collections::BTreeSet<&str> = licenses["licenses"]
        .as_array()
        .expect("licenses")
        .iter()
        .filter_map(|l| l["role_group"].as_str())
        .collect();
    assert_eq!(groups.len(), 2, "FullUser and Stakeholder: {groups:?}");
    let schema = PAGERDUTY.response_schema(&spec, "/license_allocations", "get", "200");
    for query in [
        "/license_allocations?limit=100&total=true",
        "/license_allocations?limit=3&offset=3",
    ] {
        let page = body(api_get(&client, &sandbox, key, query).await, StatusCode::OK).await;
        PAGERDUTY.assert_conforms(&format!("GET {query}"), &schema, &page);
    }
    for path in ["/licenses", "/license_allocations"] {
        let error = body(
            api_get(&client, &sandbox, "Bearer unknown", path).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        PAGERDUTY.assert_conforms(
            &format!("GET {path} 401"),
            &PAGERDUTY.response_schema(&spec, path, "get", "401"),
            &error,
        );
    }
    let unreadable = start(PagerDutyConfig {
        api_token: Some("spec-key".into()),
        licenses_readable: false,
        ..config()
    })
    .await;
    for path in ["/licenses", "/license_allocations"] {
        let error = body(
            api_get(&client, &unreadable, key, path).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        PAGERDUTY.assert_conforms(
            &format!("GET {path} 403"),
            &PAGERDUTY.response_schema(&spec, path, "get", "403"),
            &error,
        );
    }

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
    for path in ["/log_entries", "/users", "/oncalls"] {
        PAGERDUTY.assert_conforms(
            &format!("GET {path} 429"),
            &PAGERDUTY.response_schema(&spec, path, "get", "429"),
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

    let original = PAGERDUTY.response_schema(&spec, "/log_entries", "get", "200");
    let fixed = PAGERDUTY.response_schema(&patched, "/log_entries", "get", "200");
    assert!(
        !PAGERDUTY.validator(&original).is_valid(&ack),
        "drift 1/2 gone: drop the patches"
    );
    assert!(
        !PAGERDUTY.validator(&original).is_valid(&example),
        "drift 2 gone: drop the patch"
    );
    PAGERDUTY.assert_conforms("a real acknowledge entry", &fixed, &ack);
    let permanent = json!({
        "oncalls": [{
            "escalation_policy": { "id": "PT20YPA", "type": "escalation_policy_reference" },
            "escalation_level": 2,
            "schedule": null,
            "user": { "id": "PT23IWX", "type": "user_reference" },
            "start": null,
            "end": null
        }],
        "limit": 25, "offset": 0, "more": false, "total": null
    });
    assert!(
        !PAGERDUTY
            .validator(&PAGERDUTY.response_schema(&spec, "/oncalls", "get", "200"))
            .is_valid(&permanent),
        "drift 3 gone: drop the patch"
    );
    PAGERDUTY.assert_conforms(
        "a permanent on-call",
        &PAGERDUTY.response_schema(&patched, "/oncalls", "get", "200"),
        &permanent,
    );
    assert!(
        PAGERDUTY.validator(&fixed).is_valid(&example),
        "the spec's own example, patched"
    );
}

#[test]
fn a_wrong_enum_an_undeclared_key_and_a_missing_field_are_all_reported() {
    let spec = load_spec();
    let schema = PAGERDUTY.response_schema(&spec, "/users", "get", "200");
    let good = json!({
        "users": [{ "id": "PXPGF42", "type": "user", "name": "Ada Berg", "email": "ada@example.com",
                    "role": "admin", "description": null }],
        "limit": 25, "offset": 0, "more": false, "total": null
    });
    PAGERDUTY.assert_conforms("a minimal valid page", &schema, &good);
    let mut bad = good.clone();
    bad["users"][0]["role"] = json!("superuser");
    bad["users"][0]["html_ur"] = json!("https://x");
    bad["users"][0].as_object_mut().map(|u| u.remove("email"));
    bad["total"] = json!("3");
    let found = PAGERDUTY.problems(&schema, &bad).join("\n");
    for expected in ["/users/0/role", "/users/0/html_ur", "email", "/total"] {
        assert!(
            found.contains(expected),
            "{expected} not reported in:\n{found}"
        );
    }
}
