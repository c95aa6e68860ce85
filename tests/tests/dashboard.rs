//! The dashboard's query API against DynamoDB Local, moto and the PagerDuty
//! sandbox: every answer validates against the OpenAPI document it serves, the
//! numbers equal the sandbox's ground truth under the app's settings (threshold,
//! grace period, exemptions, seat price), the CSV exports equal the JSON, and the
//! page and its files are served without sign-in.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use seatscope_local::gateway::TemplateRoutes;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::PagerDutyConfig;
use serde_json::{json, Value};
use time::{Date, Duration};

fn openapi() -> Value {
    serde_json::from_str(dashboard_api::OPENAPI_JSON).expect("openapi.json is JSON")
}

/// Problems of `instance` against the document's component schema `name`.
fn problems(doc: &Value, name: &str, instance: &Value) -> Vec<String> {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "$ref": format!("#/components/schemas/{name}"),
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .unwrap_or_else(|e| panic!("components/schemas/{name} does not compile: {e}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

fn assert_valid(doc: &Value, name: &str, instance: &Value) {
    let p = problems(doc, name, instance);
    assert!(p.is_empty(), "{name} does not match openapi.json: {p:#?}");
}

fn day(s: &str) -> Date {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).expect("a date")
}

fn cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

async fn request(
    stack: &Stack,
    org: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http()
        .request(method, format!("{}{path}", stack.api_url()))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("the local API answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(stack: &Stack, org: &str, path: &str) -> (u16, Value) {
    get_json(stack, org, path)
        .await
        .expect("the local API answers with JSON")
}

async fn text(
    stack: &Stack,
    org: Option<&str>,
    path: &str,
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut req = http().get(format!("{}{path}", stack.api_url()));
    if let Some(org) = org {
        req = req.bearer_auth(stack.token(org, &format!("admin@{org}.example")));
    }
    let resp = req.send().await.expect("the local API answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.text().await.unwrap_or_default(), headers)
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    r.records()
        .map(|rec| {
            rec.expect("a CSV record")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What the CSV holds for a JSON value: vendor text neutralized against formulas
/// (the JSON keeps it as it is), our own values unchanged.
fn csv_cell(column: &str, v: &Value) -> String {
    let raw = cell(v);
    match column {
        "email" | "name" | "role" | "license" => {
            seatscope_core::ops::export::text_cell(&raw).into_owned()
        }
        _ => raw,
    }
}

/// A seat's cell in the seats CSV, from its JSON: `on_call` is the label ("on call,
/// quiet", "on call" or empty) and `on_call_schedule` the schedule's name (or the
/// escalation policy's, for a direct target).
fn seat_csv_cell(column: &str, seat: &Value) -> String {
    let on_call = &seat["on_call"];
    match column {
        "on_call" if on_call.is_null() => String::new(),
        "on_call" if on_call["quiet"] == true => "on call, quiet".into(),
        "on_call" => "on call".into(),
        "on_call_schedule" => seatscope_core::ops::export::text_cell(
            on_call["schedule"]
                .as_str()
                .or(on_call["escalation_policy"].as_str())
                .unwrap_or_default(),
        )
        .into_owned(),
        "downgrade_to" => seatscope_core::ops::export::text_cell(
            seat["downgrade"]["to"].as_str().unwrap_or_default(),
        )
        .into_owned(),
        "downgrade_monthly_saving" => csv_cell(
            "downgrade_monthly_saving",
            &seat["downgrade"]["monthly_saving"],
        ),
        c => csv_cell(c, &seat[c]),
    }
}

#[test]
fn openapi_documents_exactly_the_api_routes_of_the_template() {
    let doc = openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    let template = seatscope_local::stack::template_path();
    let routes = TemplateRoutes::load(&template).unwrap().routes;
    // `ANY /api/{proxy+}` is not an operation: API Gateway picks it only for a method
    // or path no route serves, and dashboard-api answers it with 405 (Allow) or 404
    // from this document (tests/schemathesis.rs). Excluded by name, so any other
    // route still has to be documented.
    let catch_all = "ANY /api/{proxy+}";
    assert!(
        routes.iter().any(|r| r.key() == catch_all),
        "template.yaml has {catch_all}"
    );
    let served: BTreeSet<String> = routes
        .iter()
        .filter(|r| r.path.starts_with("/api/") && r.key() != catch_all)
        .map(|r| r.key())
        .collect();
    assert_eq!(documented, served);
    // Every $ref resolves.
    let text = dashboard_api::OPENAPI_JSON;
    for (i, _) in text.match_indices("#/components/schemas/") {
        let name: String = text[i + 21..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(doc["components"]["schemas"][&name].is_object(), "{name}");
    }
    for (i, _) in text.match_indices("#/components/responses/") {
        let name: String = text[i + 23..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(doc["components"]["responses"][&name].is_object(), "{name}");
    }
}

/// The `provider` path parameters are the catalog's ids, so an unknown one is a
/// schema violation and a new provider cannot be left out of the document.
#[test]
fn provider_parameters_are_the_catalogs_ids() {
    use seatscope_core::domain::catalog::{AuthMode, Catalog};
    let doc = openapi();
    let catalog = Catalog::load(|_| None).unwrap();
    let ids = |mode: Option<AuthMode>| -> Vec<Value> {
        catalog
            .providers()
            .iter()
            .filter(|p| mode.is_none_or(|m| p.supports(m)))
            .map(|p| json!(p.id))
            .collect()
    };
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["ProviderId"]["enum"], json!(ids(None)));
    assert_eq!(
        schemas["OAuthProviderId"]["enum"],
        json!(ids(Some(AuthMode::Oauth2)))
    );
    assert_eq!(
        schemas["ApiKeyProviderId"]["enum"],
        json!(ids(Some(AuthMode::ApiKey)))
    );
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["name"] != "provider" {
                    continue;
                }
                seen += 1;
                let want = if path.ends_with("/connect") {
                    "OAuthProviderId"
                } else if path.ends_with("/api-key") {
                    "ApiKeyProviderId"
                } else {
                    "ProviderId"
                };
                assert_eq!(
                    p["schema"]["$ref"],
                    format!("#/components/schemas/{want}"),
                    "{method} {path}"
                );
            }
        }
    }
    assert!(seen >= 10, "{seen} provider parameters");
}

/// Every operation behind the authorizer declares its 401 as API Gateway answers it
/// (`{"message": "Unauthorized"}`), and every operation API Gateway's throttle (429).
#[test]
fn every_operation_declares_what_api_gateway_answers_before_the_function() {
    let doc = openapi();
    let unauthorized = json!({"message": "Unauthorized"});
    assert!(
        problems(&doc, "GatewayMessage", &unauthorized).is_empty(),
        "GatewayMessage takes API Gateway's body"
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = &op["responses"];
            let public = op["security"] == json!([]);
            assert_eq!(
                responses.get("401").is_some(),
                !public,
                "{method} {path}: a 401 exactly where the authorizer is"
            );
            if !public {
                assert_eq!(
                    responses["401"]["$ref"], "#/components/responses/Unauthorized",
                    "{method} {path}"
                );
            }
            assert_eq!(
                responses["429"]["$ref"], "#/components/responses/TooManyRequests",
                "{method} {path}"
            );
            if op.get("requestBody").is_some() {
                assert!(responses.get("413").is_some(), "{method} {path}: 413");
            }
        }
    }
}

#[test]
fn the_numbers_equal_the_ground_truth_at_a_month_end_a_leap_day_and_new_year() {
    rerun_at_days(
        &["numbers_equal_the_ground_truth_under_the_apps_settings_and_exports_equal_the_json"],
        &PINNED_DAYS,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_equal_the_ground_truth_under_the_apps_settings_and_exports_equal_the_json() {
    // Today by the sandboxes' and the functions' clock (pinned by SEATSCOPE_TODAY).
    let today = seatscope_sandbox::clock::today();
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 30,
            days: 90,
            events_per_day: 6,
            // The data ends with yesterday, the last whole day (the default): a sync
            // reads up to now, and the sandbox's day "today" would hold hours still to come.
            end_date: today.previous_day().unwrap(),
            // Seats idle for 30 but not 60 days, whatever the calendar.
            went_quiet_days_ago: vec![35, 45],
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "initech";
    let doc = openapi();
    let truth = stack.sandbox.ground_truth();

    // Before connecting: every card says not connected; the shapes already hold.
    let (status, overview) = get(&stack, org, "/api/overview").await;
    assert_eq!(status, 200, "{overview}");
    assert_valid(&doc, "Overview", &overview);

    connect(&stack, org).await.expect("connect");
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");

    // The truth, by the documented definitions.
    let last_active: BTreeMap<&str, Date> =
        truth
            .daily
            .iter()
            .filter(|d| d.count > 0)
            .fold(BTreeMap::new(), |mut m, d| {
                let e = m.entry(d.user_id.as_str()).or_insert(day(&d.date));
                *e = (*e).max(day(&d.date));
                m
            });
    let active_days_30 = |user: &str| {
        truth
            .daily
            .iter()
            .filter(|d| {
                d.user_id == user && d.count > 0 && day(&d.date) > today - Duration::days(30)
            })
            .map(|d| d.date.as_str())
            .collect::<BTreeSet<_>>()
            .len() as u64
    };
    // Seats on call (the sandbox's schedules and direct targets) are never inactive.
    let on_call: BTreeSet<&str> = truth.on_call.iter().map(|o| o.user_id.as_str()).collect();
    let inactive_under = |n: i64, exempt: &BTreeSet<String>| -> BTreeSet<String> {
        truth
            .seats
            .iter()
            .filter(|s| !exempt.contains(&s.id) && !on_call.contains(s.id.as_str()))
            .filter(|s| {
                last_active
                    .get(s.id.as_str())
                    .is_none_or(|d| *d <= today - Duration::days(n))
            })
            .map(|s| s.id.clone())
            .collect()
    };
    let none = BTreeSet::new();
    let inactive_30 = inactive_under(30, &none);
    let inactive_60 = inactive_under(60, &none);
    assert!(
        !inactive_30.is_empty() && inactive_60.len() < inactive_30.len(),
        "the data set must have seats idle for 30 but not 60 days ({} / {})",
        inactive_30.len(),
        inactive_60.len()
    );
    // The headline is of the last complete day (yesterday: the stack's clock reads
    // 12:00 UTC of `today`), never of today's unfinished day.
    let yesterday = today.previous_day().unwrap();
    let headline = expected_actives(&truth, &[yesterday.to_string()])[&yesterday.to_string()];
    let (dau, mau) = (headline.0 as u64, headline.2 as u64);
    let seats_n = truth.seats.len() as u64;

    // Overview with the default settings: no price, so no money figures.
    let (_, overview) = get(&stack, org, "/api/overview").await;
    assert_valid(&doc, "Overview", &overview);
    let pd = card(&overview, "pagerduty");
    assert_eq!(pd["seats"], seats_n);
    assert_eq!(pd["active_30d"], mau);
    assert_eq!(pd["dau"], dau);
    assert!(dau > 0, "the sandbox has users active yesterday");
    assert_eq!(pd["headline_day"], yesterday.to_string());
    assert_eq!(pd["as_of_date"], today.to_string(), "the latest synced day");
    assert_eq!(pd["inactive_days"], 30);
    assert_eq!(pd["inactive_seats"], inactive_30.len() as u64);
    assert_eq!(
        pd["utilization_percent"].as_f64().unwrap(),
        (mau as f64 * 1000.0 / seats_n as f64).round() / 10.0
    );
    assert!(
        pd["seat_price"].is_null()
            && pd["monthly_cost"].is_null()
            && pd["potential_savings"].is_null()
    );
    assert!(pd["sources"]["seats"].is_string() && pd["sources"]["activity"].is_string());
    assert!(overview["definitions"]["active_30d"].is_string());

    // Seats: served from the snapshot the sync wrote with the summary (one part for
    // 30 seats); last activity and active days per seat equal the truth.
    let parts = items_with_prefix(&stack, &format!("ORG#{org}#APP#pagerduty"), "SEATLIST#")
        .await
        .unwrap();
    assert_eq!(parts.len(), 1);
    assert!(
        !serde_json::to_string(&parts).unwrap().contains("@"),
        "emails only gzipped"
    );
    let (status, seats) = get(&stack, org, "/api/apps/pagerduty/seats").await;
    assert_eq!(status, 200, "{seats}");
    assert_valid(&doc, "SeatsList", &seats);
    assert_eq!(seats["total"], seats_n);
    for s in seats["seats"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        assert_eq!(
            s["last_activity_on"].as_str(),
            last_active.get(id).map(|d| d.to_string()).as_deref(),
            "{id}"
        );
        assert_eq!(s["active_days_30"], active_days_30(id), "{id}");
        assert_eq!(s["inactive"], inactive_30.contains(id), "{id}");
        let idle_30 = last_active
            .get(id)
            .is_none_or(|d| *d <= today - Duration::days(30));
        assert_eq!(s["on_call"].is_null(), !on_call.contains(id), "{id}");
        if on_call.contains(id) {
            assert_eq!(s["on_call"]["quiet"], idle_30, "{id}: on call, quiet");
        }
        assert_eq!(
            s["in_grace"], false,
            "seats of the first import get no grace: {id}"
        );
    }

    // Settings: a 60-day threshold, one exempt seat (idle for 60+ days if there is
    // one), a price. The overview follows at once.
    let exempt_id = inactive_60
        .iter()
        .next()
        .cloned()
        .unwrap_or_else(|| truth.seats[0].id.clone());
    let settings = json!({"inactive_days": 60, "grace_days": 14, "exempt_seats": [exempt_id], "seat_price": 21.5});
    let (status, saved) = request(
        &stack,
        org,
        reqwest::Method::PUT,
        "/api/apps/pagerduty/settings",
        Some(settings.clone()),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_valid(&doc, "Settings", &saved);
    // What was sent, and the defaults of what was not (no license prices, monthly, no
    // renewal date, USD).
    let mut stored = settings.clone();
    for (field, default) in [
        ("license_prices", json!({})),
        ("billing_period", json!("monthly")),
        ("renewal_date", Value::Null),
        ("currency", json!("USD")),
    ] {
        stored[field] = default;
    }
    assert_eq!(saved, stored);
    let (_, got) = get(&stack, org, "/api/apps/pagerduty/settings").await;
    assert_eq!(got, stored);

    let exempt: BTreeSet<String> = [exempt_id.clone()].into();
    let inactive = inactive_under(60, &exempt).len() as u64;
    let (_, overview) = get(&stack, org, "/api/overview").await;
    assert_valid(&doc, "Overview", &overview);
    let pd = card(&overview, "pagerduty");
    assert_eq!(pd["inactive_days"], 60);
    assert_eq!(pd["inactive_seats"], inactive);
    assert_eq!(pd["seat_price"].as_f64(), Some(21.5));
    assert_eq!(
        pd["monthly_cost"].as_f64(),
        Some(cents(21.5 * seats_n as f64))
    );
    assert_eq!(
        pd["cost_per_active_user"].as_f64(),
        Some(cents(21.5 * seats_n as f64 / mau as f64))
    );
    assert_eq!(
        pd["potential_savings"].as_f64(),
        Some(cents(21.5 * inactive as f64))
    );
    let totals = &overview["totals"];
    assert_eq!(totals["seats"], seats_n);
    assert_eq!(totals["inactive_seats"], inactive);
    assert_eq!(totals["monthly_cost"], pd["monthly_cost"]);
    assert_eq!(totals["potential_savings"], pd["potential_savings"]);

    // App detail over 3 months: same summary, a point per synced day, schema-valid.
    let from = (today - Duration::days(89)).to_string();
    let path = format!("/api/apps/pagerduty?from={from}&to={today}");
    let (status, detail) = get(&stack, org, &path).await;
    assert_eq!(status, 200, "{detail}");
    assert_valid(&doc, "AppDetail", &detail);
    assert_eq!(detail["settings"], stored);
    for k in [
        "headline_day",
        "as_of_date",
        "dau",
        "seats",
        "active_30d",
        "inactive_seats",
        "monthly_cost",
        "potential_savings",
    ] {
        assert_eq!(detail["summary"][k], pd[k], "{k}");
    }
    let dates: Vec<String> = detail["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["date"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(dates.len(), 90);
    let expected = expected_actives(&truth, &dates);
    for p in detail["daily"].as_array().unwrap() {
        let (dau, wau, mau) = expected[p["date"].as_str().unwrap()];
        assert_eq!(
            (p["dau"].as_u64(), p["wau"].as_u64(), p["mau"].as_u64()),
            (Some(dau as u64), Some(wau as u64), Some(mau as u64))
        );
        // Only today's point is partial ("so far"): every earlier day was rewritten
        // by this sync after it ended.
        assert_eq!(p["partial"], p["date"] == today.to_string().as_str(), "{p}");
    }
    assert_eq!(
        dates.last().map(String::as_str),
        Some(today.to_string().as_str())
    );
    // The headline equals yesterday's point, not today's partial one.
    let point = |d: Date| {
        detail["daily"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["date"] == d.to_string().as_str())
            .cloned()
            .unwrap()
    };
    assert_eq!(detail["summary"]["dau"], point(yesterday)["dau"]);
    assert_eq!(detail["summary"]["active_30d"], point(yesterday)["mau"]);

    // Days before the first synced day: absent from the API, empty cells in the CSV,
    // never 0.
    let early = today - Duration::days(120);
    let (status, wide) = get(
        &stack,
        org,
        &format!("/api/apps/pagerduty?from={early}&to={today}"),
    )
    .await;
    assert_eq!(status, 200, "{wide}");
    assert_valid(&doc, "AppDetail", &wide);
    let first_synced = day(wide["daily"][0]["date"].as_str().unwrap());
    assert!(first_synced > early, "{first_synced}");
    assert_eq!(
        wide["daily"].as_array().unwrap().len() as i64,
        (today - first_synced).whole_days() + 1,
        "a point for every synced day, none before"
    );
    let (_, body, _) = text(
        &stack,
        Some(org),
        &format!("/api/apps/pagerduty/export/trends.csv?from={early}&to={today}"),
    )
    .await;
    let rows = csv_rows(&body);
    assert_eq!(
        rows.len() as i64 - 1,
        (today - early).whole_days() + 1,
        "a row per day"
    );
    for r in &rows[1..] {
        if day(&r[0]) < first_synced {
            assert!(
                r[1..].iter().all(String::is_empty),
                "no data is not 0: {r:?}"
            );
        } else {
            assert!(r[1..].iter().all(|c| !c.is_empty()), "{r:?}");
        }
    }
    assert_eq!(rows.last().unwrap()[5], "true", "today is partial");

    // CSV exports equal the JSON, row by row.
    let (_, seats) = get(&stack, org, "/api/apps/pagerduty/seats").await;
    let (status, body, headers) =
        text(&stack, Some(org), "/api/apps/pagerduty/export/seats.csv").await;
    assert_eq!(status, 200, "{body}");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("pagerduty-seats.csv"));
    let rows = csv_rows(&body);
    let columns = seatscope_core::ops::export::SEAT_COLUMNS;
    assert_eq!(rows[0], columns.map(str::to_string).to_vec());
    let want: Vec<Vec<String>> = seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| columns.iter().map(|c| seat_csv_cell(c, s)).collect())
        .collect();
    assert_eq!(rows[1..].to_vec(), want);
    let (_, body, _) = text(
        &stack,
        Some(org),
        "/api/apps/pagerduty/export/inactive-seats.csv",
    )
    .await;
    let inactive_rows = csv_rows(&body);
    assert_eq!(inactive_rows.len() as u64 - 1, inactive);
    assert!(inactive_rows[1..].iter().all(|r| r[7] == "true"));
    let (_, body, _) = text(
        &stack,
        Some(org),
        &format!("/api/apps/pagerduty/export/trends.csv?from={from}&to={today}"),
    )
    .await;
    let trend_rows = csv_rows(&body);
    assert_eq!(trend_rows[0], seatscope_core::ops::export::TREND_COLUMNS);
    let want: Vec<Vec<String>> = detail["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            seatscope_core::ops::export::TREND_COLUMNS
                .iter()
                .map(|c| cell(&p[*c]))
                .collect()
        })
        .collect();
    assert_eq!(trend_rows[1..].to_vec(), want);

    // Bad input: 4xx with a message that says what is wrong; nothing changes.
    for (body, code) in [
        (
            json!({"inactive_days": 0, "grace_days": 14, "exempt_seats": [], "seat_price": null}),
            "invalid_inactive_days",
        ),
        (
            json!({"inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": -3}),
            "invalid_seat_price",
        ),
        (
            json!({"inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": null, "x": 1}),
            "invalid_body",
        ),
        (json!({"inactive_days": 30}), "invalid_body"),
    ] {
        let (status, err) = request(
            &stack,
            org,
            reqwest::Method::PUT,
            "/api/apps/pagerduty/settings",
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{err}");
        assert_valid(&doc, "Error", &err);
        assert_eq!(err["error"]["code"], code, "{err}");
    }
    let (_, got) = get(&stack, org, "/api/apps/pagerduty/settings").await;
    assert_eq!(got, stored);
    let (status, _) = get(&stack, org, "/api/apps/nope/settings").await;
    assert_eq!(status, 404);
    let (status, _, _) = text(&stack, Some(org), "/api/apps/pagerduty/export/all.xlsx").await;
    assert_eq!(status, 404);
    let (status, err) = get(&stack, org, "/api/apps/pagerduty?from=2026-13-01").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_date"))
    );

    // Another org sees none of it.
    let (_, other) = get(&stack, "umbrella", "/api/overview").await;
    assert_eq!(
        card(&other, "pagerduty")["connection"]["status"],
        "not_connected"
    );
    assert!(card(&other, "pagerduty")["seats"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_its_files_and_the_sign_in_config_are_served_without_a_token() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("the local stack starts");
    for path in ["/", "/connections", "/apps/pagerduty", "/signin/callback"] {
        let (status, body, headers) = text(&stack, None, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(body.contains("/assets/app.js"), "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        // A <meta name="referrer"> overrides the header inside the page: it must not be
        // weaker than the header's no-referrer.
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let metas: Vec<&str> = body
            .match_indices("<meta name=\"referrer\" content=\"")
            .map(|(i, m)| body[i + m.len()..].split('"').next().unwrap_or(""))
            .collect();
        assert!(
            metas.iter().all(|m| *m == "no-referrer"),
            "{path}: the page's referrer policy {metas:?} is weaker than the header"
        );
    }
    let (status, body, headers) = text(&stack, None, "/assets/chart.umd.min.js").await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(
        body.contains("Chart.js v4"),
        "the pinned chart.js build is embedded"
    );
    let (status, body, _) = text(&stack, None, "/assets/oidc-client-ts.min.js").await;
    assert_eq!(status, 200);
    assert!(body.contains("UserManager"));
    for asset in ["app.js", "app.css"] {
        let (status, _, _) = text(&stack, None, &format!("/assets/{asset}")).await;
        assert_eq!(status, 200, "{asset}");
    }
    let (status, _, _) = text(&stack, None, "/assets/../Cargo.toml").await;
    assert_eq!(status, 404);
    let (status, _, _) = text(&stack, None, "/assets/secrets.js").await;
    assert_eq!(status, 404);

    let (status, body, _) = text(&stack, None, "/api/config").await;
    assert_eq!(status, 200, "{body}");
    let config: Value = serde_json::from_str(&body).unwrap();
    assert_valid(&openapi(), "SignInConfig", &config);
    assert_eq!(
        config["oidc"]["issuer"],
        format!("{}/dev-issuer", stack.api_url())
    );
    assert_eq!(config["org_claim"], "org_id");
    let (status, body, _) = text(&stack, None, "/api/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), openapi());

    // The data itself needs a token.
    let (status, body, _) = text(&stack, None, "/api/overview").await;
    assert_eq!(status, 401, "{body}");
}
