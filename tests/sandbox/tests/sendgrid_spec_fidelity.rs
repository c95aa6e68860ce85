//! Spec fidelity: the SendGrid sandbox's actual responses validate against the response
//! schemas of Twilio SendGrid's official OpenAPI documents (`tsg_*_v3.json`) for the same
//! operations.
//!
//! The specs are read from `$SEATSCOPE_VENDOR_SPECS/sendgrid/` (default:
//! `<CARGO_MANIFEST_DIR>/../../../shared/vendor-specs`), as the PagerDuty fidelity test does.
//! A missing spec fails the test.
//!
//! The documents are OpenAPI 3.1, whose schemas are JSON Schema 2020-12: they are validated
//! with that draft after inlining every local `$ref` (a `$ref` with sibling keywords, which
//! 3.1 allows, becomes `allOf: [target]` next to the siblings) and dropping annotations.
//! One known drift is handled: SendGrid's 3.1 documents still use OpenAPI 3.0's
//! `nullable: true` (e.g. the error `field`, which SendGrid sends as `null`). JSON Schema
//! ignores that keyword, so `{"field": null}` would fail `type: string`; it is read with its
//! evident 3.0 meaning (`type: [T, "null"]`), and a test asserts the drift is still there.
//!
//! On top of the schema check, every object key the sandbox emits must be declared by the
//! schema (the specs do not forbid extra keys, so a misspelt field would otherwise pass).
//!
//! Where an operation declares no schema for an error the sandbox sends, the closest one in
//! the same document is used and named in the assertion (e.g. `GET /v3/teammates` 400 is
//! checked against `POST /v3/teammates` 400; `GET /v3/stats` 400 against
//! `GET /v3/categories` 400; 403 and 429 against SendGrid's generic `ErrorResponse`).

mod support;

use reqwest::StatusCode;
use seatscope_sandbox::{SendGridConfig, SendGridSandboxKey};
use serde_json::{json, Map, Value};
use support::sendgrid::*;
use support::spec::{raw_response_schema, Dialect, Nullable, RefSiblings, Variants};

/// How SendGrid's OpenAPI 3.1 documents are read (see the module documentation).
const SENDGRID: Dialect = Dialect {
    vendor: "SendGrid",
    draft: jsonschema::Draft::Draft202012,
    also_dropped: &["description", "title"],
    drop_extensions: false,
    ref_siblings: RefSiblings::AllOf,
    nullable: Nullable::NullType,
    variants: Variants::All,
    show_instance: true,
};

fn load_spec(file: &str) -> Value {
    let spec = SENDGRID.load_spec(&format!("sendgrid/{file}"));
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{file} is not OpenAPI 3.1: re-check the conversion"
    );
    spec
}

async fn body(response: reqwest::Response, status: StatusCode) -> Value {
    let (got, body, _) = json(response).await;
    assert_eq!(got, status, "{body}");
    body
}

#[tokio::test]
async fn responses_validate_against_the_sendgrid_openapi_schemas() {
    let scopes_spec = load_spec("tsg_scopes_v3.json");
    let teammates_spec = load_spec("tsg_teammates_v3.json");
    let stats_spec = load_spec("tsg_stats_v3.json");
    let user_spec = load_spec("tsg_user_v3.json");
    let sandbox = start(SendGridConfig {
        teammates: 23,
        pending_invites: 4,
        ..config()
    })
    .await;
    let client = http();
    let key = full_key();
    let key = Some(key.as_str());

    // GET /v3/scopes: 200 for both keys, 401 without one.
    let schema = SENDGRID.response_schema(&scopes_spec, "/v3/scopes", "get", "200");
    for k in [full_key(), nostats_key()] {
        let scopes = body(
            get(&client, &sandbox, Some(&k), "/v3/scopes").await,
            StatusCode::OK,
        )
        .await;
        SENDGRID.assert_conforms("GET /v3/scopes", &schema, &scopes);
    }
    let unauthorized = body(
        get(&client, &sandbox, None, "/v3/scopes").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    SENDGRID.assert_conforms(
        "GET /v3/scopes 401",
        &SENDGRID.response_schema(&scopes_spec, "/v3/scopes", "get", "401"),
        &unauthorized,
    );
    let unknown_key = body(
        get(&client, &sandbox, Some("SG.unknown.key"), "/v3/teammates").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    SENDGRID.assert_conforms(
        "GET /v3/teammates 401 (scopes' 401 schema)",
        &SENDGRID.response_schema(&scopes_spec, "/v3/scopes", "get", "401"),
        &unknown_key,
    );

    // 403: a key without stats.read, against SendGrid's 403 (the generic ErrorResponse).
    let forbidden = body(
        get(
            &client,
            &sandbox,
            Some(&nostats_key()),
            "/v3/stats?start_date=2026-03-01",
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    SENDGRID.assert_conforms(
        "GET /v3/stats 403 (scopes' 403 schema)",
        &SENDGRID.response_schema(&scopes_spec, "/v3/scopes", "get", "403"),
        &forbidden,
    );

    // GET /v3/teammates: every page of 5, and the default page.
    let schema = SENDGRID.response_schema(&teammates_spec, "/v3/teammates", "get", "200");
    let mut seen = 0;
    for offset in (0..25).step_by(5) {
        let page = body(
            get(
                &client,
                &sandbox,
                key,
                &format!("/v3/teammates?limit=5&offset={offset}"),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        SENDGRID.assert_conforms(
            &format!("GET /v3/teammates offset={offset}"),
            &schema,
            &page,
        );
        seen += page["result"].as_array().map_or(0, Vec::len);
    }
    assert_eq!(seen, 23);
    let all = body(
        get(&client, &sandbox, key, "/v3/teammates").await,
        StatusCode::OK,
    )
    .await;
    SENDGRID.assert_conforms("GET /v3/teammates", &schema, &all);
    let types: std::collections::BTreeSet<&str> = all["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["user_type"].as_str())
        .collect();
    assert_eq!(
        types.len(),
        3,
        "owner, admin and teammate validated: {types:?}"
    );

    // GET /v3/teammates 400 (limit > 500): ListTeammate declares no 400; InviteTeammate's.
    let error = body(
        get(&client, &sandbox, key, "/v3/teammates?limit=501").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    SENDGRID.assert_conforms(
        "GET /v3/teammates 400 (POST /v3/teammates' 400 schema)",
        &SENDGRID.response_schema(&teammates_spec, "/v3/teammates", "post", "400"),
        &error,
    );

    // GET /v3/teammates/pending.
    let pending = body(
        get(&client, &sandbox, key, "/v3/teammates/pending").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(pending["result"].as_array().map(Vec::len), Some(4));
    SENDGRID.assert_conforms(
        "GET /v3/teammates/pending",
        &SENDGRID.response_schema(&teammates_spec, "/v3/teammates/pending", "get", "200"),
        &pending,
    );

    // GET /v3/stats, by day, week and month, over days with and without data.
    let schema = SENDGRID.response_schema(&stats_spec, "/v3/stats", "get", "200");
    for aggregated in ["day", "week", "month"] {
        let stats = body(
            get(
                &client,
                &sandbox,
                key,
                &format!(
                    "/v3/stats?start_date=2026-02-20&end_date=2026-04-02&aggregated_by={aggregated}"
                ),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        SENDGRID.assert_conforms(&format!("GET /v3/stats by {aggregated}"), &schema, &stats);
    }
    // Every metric the sandbox emits is one of the spec's global stats.
    let metrics = SENDGRID.component_schema(&stats_spec, "StatsAdvancedGlobalStats");
    let declared = metrics["properties"].as_object().map_or(0, Map::len);
    assert_eq!(declared, 16, "the spec's global metrics changed");

    // GET /v3/stats 400 (no start_date): ListStat declares no 400; ListCategory's.
    let error = body(
        get(&client, &sandbox, key, "/v3/stats").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    SENDGRID.assert_conforms(
        "GET /v3/stats 400 (GET /v3/categories' 400 schema)",
        &SENDGRID.response_schema(&stats_spec, "/v3/categories", "get", "400"),
        &error,
    );

    // GET /v3/user/credits and /v3/user/username.
    let credits = body(
        get(&client, &sandbox, key, "/v3/user/credits").await,
        StatusCode::OK,
    )
    .await;
    SENDGRID.assert_conforms(
        "GET /v3/user/credits",
        &SENDGRID.response_schema(&user_spec, "/v3/user/credits", "get", "200"),
        &credits,
    );
    let username = body(
        get(&client, &sandbox, key, "/v3/user/username").await,
        StatusCode::OK,
    )
    .await;
    SENDGRID.assert_conforms(
        "GET /v3/user/username",
        &SENDGRID.response_schema(&user_spec, "/v3/user/username", "get", "200"),
        &username,
    );

    // 429 from a sandbox allowing one request a minute, against the generic ErrorResponse.
    let limited = start(SendGridConfig {
        rate_limit_per_minute: 1,
        ..config()
    })
    .await;
    body(
        get(&client, &limited, key, "/v3/user/credits").await,
        StatusCode::OK,
    )
    .await;
    let error = body(
        get(&client, &limited, key, "/v3/user/credits").await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    for spec in [&user_spec, &scopes_spec] {
        SENDGRID.assert_conforms(
            "GET /v3/user/credits 429 (ErrorResponse)",
            &SENDGRID.component_schema(spec, "ErrorResponse"),
            &error,
        );
    }
}

#[test]
fn the_nullable_drift_is_real_and_the_conversion_is_what_makes_sendgrids_errors_valid() {
    let spec = load_spec("tsg_scopes_v3.json");
    let field = spec
        .pointer("/components/schemas/ErrorResponse/properties/errors/items/properties/field")
        .expect("ErrorResponse's field");
    assert_eq!(
        field["nullable"],
        json!(true),
        "SendGrid's specs no longer use 3.0's nullable: drop the conversion"
    );
    let raw = raw_response_schema(&spec, "/v3/scopes", "get", "401");
    let literal = Dialect {
        nullable: Nullable::Ignored,
        ..SENDGRID
    }
    .json_schema(raw, &spec);
    let converted = SENDGRID.response_schema(&spec, "/v3/scopes", "get", "401");
    // SendGrid's own example for this response.
    let example = spec
        .pointer("/paths/~1v3~1scopes/get/responses/401/content/application~1json/examples/response/value")
        .cloned()
        .expect("the 401 example");
    assert_eq!(example["errors"][0]["field"], Value::Null);
    assert!(
        !SENDGRID.validator(&literal).is_valid(&example),
        "read literally (3.1), the spec rejects its own example"
    );
    SENDGRID.assert_conforms("the spec's own 401 example", &converted, &example);
}

#[test]
fn the_spec_examples_that_drift_from_their_schemas_are_caught_by_the_key_check() {
    // The teammates example says `results` (and has `company`); the pending example says
    // `pending_id` where the schema has `token`. The schemas require nothing, so only the
    // undeclared-key check notices: which is why the sandbox follows the schemas.
    let spec = load_spec("tsg_teammates_v3.json");
    let example = |path: &str| {
        spec.pointer(&format!(
            "/paths/{}/get/responses/200/content/application~1json/examples/response/value",
            path.replace('/', "~1")
        ))
        .cloned()
        .unwrap_or_else(|| panic!("the {path} example"))
    };
    let teammates = example("/v3/teammates");
    let found = SENDGRID
        .problems(
            &SENDGRID.response_schema(&spec, "/v3/teammates", "get", "200"),
            &teammates,
        )
        .join("\n");
    assert!(found.contains("/results: not declared"), "{found}");
    let mut fixed = teammates.clone();
    if let Some(map) = fixed.as_object_mut() {
        let results = map.remove("results").unwrap_or_default();
        map.insert("result".into(), results);
    }
    let found = SENDGRID
        .problems(
            &SENDGRID.response_schema(&spec, "/v3/teammates", "get", "200"),
            &fixed,
        )
        .join("\n");
    assert!(found.contains("/result/0/company: not declared"), "{found}");

    let pending = example("/v3/teammates/pending");
    let found = SENDGRID
        .problems(
            &SENDGRID.response_schema(&spec, "/v3/teammates/pending", "get", "200"),
            &pending,
        )
        .join("\n");
    assert!(
        found.contains("/result/0/pending_id: not declared"),
        "{found}"
    );
}

#[test]
fn a_wrong_enum_a_wrong_type_an_undeclared_key_and_a_missing_field_are_all_reported() {
    let teammates = load_spec("tsg_teammates_v3.json");
    let schema = SENDGRID.response_schema(&teammates, "/v3/teammates", "get", "200");
    let good = json!({ "result": [{ "username": "ada", "email": "ada@example.com",
        "first_name": "Ada", "last_name": "Berg", "user_type": "owner", "is_admin": true }] });
    SENDGRID.assert_conforms("a minimal valid page", &schema, &good);
    let mut bad = good.clone();
    bad["result"][0]["user_type"] = json!("superuser");
    bad["result"][0]["is_admin"] = json!("yes");
    bad["result"][0]["usrname"] = json!("ada");
    let found = SENDGRID.problems(&schema, &bad).join("\n");
    for expected in [
        "/result/0/user_type",
        "/result/0/is_admin",
        "/result/0/usrname",
    ] {
        assert!(
            found.contains(expected),
            "{expected} not reported in:\n{found}"
        );
    }

    let user = load_spec("tsg_user_v3.json");
    let schema = SENDGRID.response_schema(&user, "/v3/user/credits", "get", "200");
    let credits = json!({ "remain": 1, "total": 2, "overage": 0, "last_reset": "2026-03-01",
        "next_reset": "2026-04-01", "reset_frequency": "monthly" });
    let found = SENDGRID.problems(&schema, &credits).join("\n");
    assert!(found.contains("used"), "a missing required field: {found}");

    let scopes = load_spec("tsg_scopes_v3.json");
    let schema = SENDGRID.response_schema(&scopes, "/v3/scopes", "get", "200");
    let found = SENDGRID
        .problems(&schema, &json!({ "scopes": ["a", "a"] }))
        .join("\n");
    assert!(!found.is_empty(), "scopes are uniqueItems");
    assert!(SendGridSandboxKey::full().scopes.len() > 1);
}
