//! Attacks on the local stack over real HTTP, each a whole class of input tried on
//! every place it can enter: hostile `return_to` values through the OAuth callback on
//! approve and deny, spreadsheet formulas in vendor data, dates and numbers that
//! overflow, and the security headers on every route of template.yaml.

mod common;

use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::PagerDutyConfig;
use serde_json::Value;

async fn stack(options: StackOptions) -> Stack {
    Stack::start(options).await.expect("the local stack starts")
}

/// Every way found to make `return_to` leave the dashboard's origin.
const HOSTILE_RETURN_TO: &[&str] = &[
    "/.//evil.example/x",
    "/%2e//evil.example/x",
    "/%2E//evil.example/x",
    "/a/..//evil.example/x",
    "/connections/../..//evil.example/x",
    "/%2e%2e//evil.example/x",
    "/%252e//evil.example/x",
    "/%2f/evil.example/x",
    "/%2F%2Fevil.example/x",
    "/%5cevil.example/x",
    "/%5C%5Cevil.example",
    "/\\evil.example",
    "/\\/evil.example",
    "\\\\evil.example",
    "//evil.example",
    "//evil.example/x",
    "///evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r//evil.example",
    "/%09/evil.example",
    "/%0a/evil.example",
    "https://evil.example",
    "https://evil.example/connections",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "/connections?x=1#//evil.example",
    "/connections?next=//evil.example",
    "/apps/unknown-app",
    "/apps/pagerduty/../../..//evil.example",
];

/// A same-origin path to one of the dashboard's own pages.
fn assert_dashboard_location(to: &str, context: &str) {
    let mut chars = to.chars();
    assert_eq!(chars.next(), Some('/'), "{context}: {to}");
    assert!(
        !matches!(chars.next(), Some('/' | '\\')),
        "{context}: leaves the origin: {to}"
    );
    let path = to.split('?').next().unwrap_or_default();
    let ok = matches!(path, "/" | "/connections")
        || path
            .strip_prefix("/apps/")
            .is_some_and(|p| ["pagerduty", "pandadoc", "sendgrid"].contains(&p));
    assert!(ok, "{context}: not a dashboard route: {to}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_return_to_never_leaves_the_origin_on_approve_or_deny() {
    let stack = stack(StackOptions::default()).await;
    let org = "acme";
    for return_to in HOSTILE_RETURN_TO {
        for decision in ["approve", "deny"] {
            let context = format!("{return_to:?} on {decision}");
            let consent = consent_returning_to(&stack, org, "pagerduty", decision, return_to)
                .await
                .unwrap_or_else(|e| panic!("{context}: {e:#}"));
            let resp = http().get(&consent.callback_url).send().await.unwrap();
            assert_eq!(resp.status(), 302, "{context}");
            let to = location(&resp).unwrap();
            assert_dashboard_location(&to, &context);
            assert!(
                to.starts_with("/connections?provider=pagerduty&"),
                "{context}: {to}"
            );
            let want = if decision == "approve" {
                "result=connected"
            } else {
                "result=error"
            };
            assert!(to.contains(want), "{context}: {to}");
        }
    }
    // The dashboard's own routes still come back as they were asked for.
    for (return_to, want) in [
        ("/", "/?"),
        ("/apps/pagerduty?range=90", "/apps/pagerduty?range=90&"),
        ("/apps/./pagerduty", "/apps/pagerduty?"),
    ] {
        for decision in ["approve", "deny"] {
            let consent = consent_returning_to(&stack, org, "pagerduty", decision, return_to)
                .await
                .unwrap();
            let resp = http().get(&consent.callback_url).send().await.unwrap();
            let to = location(&resp).unwrap();
            assert_dashboard_location(&to, return_to);
            assert!(to.starts_with(want), "{return_to} on {decision}: {to}");
        }
    }
}

const FORMULA_NAMES: [&str; 6] = [
    "=HYPERLINK(\"http://evil.example\",\"x\")",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
];

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| {
            r.expect("a CSV record")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

async fn get_text(stack: &Stack, org: &str, path: &str) -> (u16, String) {
    let resp = http()
        .get(format!("{}{path}", stack.api_url()))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")))
        .send()
        .await
        .expect("the local API answers");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_names_that_are_formulas_are_neutralized_in_every_csv_export() {
    let renamed_users = FORMULA_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (i as u32 + 2, n.to_string()))
        .collect();
    let stack = stack(StackOptions {
        sandbox: PagerDutyConfig {
            renamed_users,
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await;
    let org = "initech";
    connect(&stack, org).await.expect("connect");
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");

    // The JSON keeps the vendor's value as it is.
    let (status, seats) = get_json(&stack, org, "/api/apps/pagerduty/seats")
        .await
        .unwrap();
    assert_eq!(status, 200, "{seats}");
    let json_names: Vec<String> = seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect();
    for name in FORMULA_NAMES {
        assert!(json_names.iter().any(|n| n == name), "{name:?} in the JSON");
    }

    for export in ["seats.csv", "inactive-seats.csv"] {
        let (status, body) =
            get_text(&stack, org, &format!("/api/apps/pagerduty/export/{export}")).await;
        assert_eq!(status, 200, "{body}");
        let rows = csv_rows(&body);
        // No cell of any row can start a formula.
        for row in &rows {
            for cell in row {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{export}: formula cell {cell:?}"
                );
            }
        }
        let names: Vec<&str> = rows.iter().skip(1).map(|r| r[1].as_str()).collect();
        if export == "seats.csv" {
            for name in FORMULA_NAMES {
                let neutral = format!("'{name}");
                assert!(names.contains(&neutral.as_str()), "{export}: {neutral:?}");
            }
            assert_eq!(names.len(), json_names.len());
        }
    }
}

/// Queries a handler once panicked on (date overflow), and their cousins.
const HOSTILE_RANGES: [&str; 12] = [
    "to=9999-12-31",
    "from=-9999-01-01",
    "from=-9999-01-01&to=-9999-01-01",
    "from=-9999-01-01&to=-9999-01-30",
    "from=9999-12-31&to=9999-12-31",
    "from=9999-12-01",
    "to=%2B10000-01-01",
    "from=0000-01-01&to=0000-01-02",
    "from=1999-12-31&to=2000-01-05",
    "from=2026-02-30",
    "to=99999999999999999999",
    "from=2026-11-01%00",
];

async fn assert_400_with_code(
    stack: &Stack,
    org: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) {
    let mut req = http()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", stack.api_url()),
        )
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path} {body:?}: no answer ({e})"));
    let status = resp.status().as_u16();
    let json: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 400, "{method} {path} {body:?}: {json}");
    assert!(
        json["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{method} {path} {body:?}: no error code in {json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflowing_dates_and_numbers_get_400_with_a_code_and_the_stack_keeps_answering() {
    let stack = stack(StackOptions::default()).await;
    let org = "globex";
    connect(&stack, org).await.expect("connect");
    stack.tick().await.unwrap();

    let providers: Vec<String> = stack
        .app
        .config
        .catalog
        .providers()
        .iter()
        .map(|p| p.id.clone())
        .collect();
    // Every route that reads from/to: the app page and the trends export.
    for provider in &providers {
        for query in HOSTILE_RANGES {
            for path in [
                format!("/api/apps/{provider}?{query}"),
                format!("/api/apps/{provider}/export/trends.csv?{query}"),
            ] {
                assert_400_with_code(&stack, org, "GET", &path, None).await;
            }
        }
        for v in ["99999999999999999999", "-1", "0", "366", "NaN", "1e3"] {
            let path = format!("/api/apps/{provider}/seats?inactive_days={v}");
            assert_400_with_code(&stack, org, "GET", &path, None).await;
        }
    }
    // Settings bodies with numbers out of range, of the wrong type or too big.
    for body in [
        r#"{"inactive_days": 99999999999999999999, "grace_days": 14, "exempt_seats": [], "seat_price": null}"#,
        r#"{"inactive_days": 4294967295, "grace_days": 14, "exempt_seats": [], "seat_price": null}"#,
        r#"{"inactive_days": 30, "grace_days": 4294967295, "exempt_seats": [], "seat_price": null}"#,
        r#"{"inactive_days": -30, "grace_days": 14, "exempt_seats": [], "seat_price": null}"#,
        r#"{"inactive_days": 30.5, "grace_days": 14, "exempt_seats": [], "seat_price": null}"#,
        r#"{"inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": -1}"#,
        r#"{"inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": 1e400}"#,
        r#"{"inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": 1e300}"#,
        r#"{"inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": "NaN"}"#,
        r#"{"inactive_days": 30, "grace_days": 14, "exempt_seats": [""], "seat_price": null}"#,
    ] {
        assert_400_with_code(
            &stack,
            org,
            "PUT",
            "/api/apps/pagerduty/settings",
            Some(body),
        )
        .await;
    }
    assert_400_with_code(
        &stack,
        org,
        "DELETE",
        "/api/connections/pagerduty?purge=99999999999999999999",
        None,
    )
    .await;

    // Still answering, with the numbers of before.
    let (status, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    assert_eq!(status, 200, "{overview}");
    let (status, detail) = get_json(&stack, org, "/api/apps/pagerduty").await.unwrap();
    assert_eq!(status, 200, "{detail}");
    let (status, body) = get_text(&stack, org, "/api/apps/pagerduty/export/trends.csv").await;
    assert_eq!(status, 200, "{body}");
}

/// Each route of template.yaml as concrete requests: its path with ordinary and odd
/// path parameters.
fn concrete_paths(template_path: &str) -> Vec<String> {
    let fill = |provider: &str, file: &str, token: &str| {
        template_path
            .replace("{provider}", provider)
            .replace("{file}", file)
            .replace("{token}", token)
    };
    let file_ok = if template_path.starts_with("/assets/") {
        "app.js"
    } else {
        "seats.csv"
    };
    let mut paths = vec![
        fill("pagerduty", file_ok, "not-an-invite-token"),
        fill("no-such-app", "no-such-file", "x"),
    ];
    paths.dedup();
    paths
}

/// Sends every route of template.yaml with a valid, an invalid and no token; `check`
/// gets whether the route is behind the authorizer, a description and the response.
async fn walk_every_route(stack: &Stack, check: impl Fn(bool, &str, &reqwest::Response)) -> usize {
    let org = "hooli";
    let valid = stack.token(org, &format!("admin@{org}.example"));
    let mut seen = 0;
    for route in &stack.routes.routes {
        for path in concrete_paths(&route.path) {
            for token in [Some(valid.as_str()), Some("not.a.jwt"), None] {
                let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
                let mut req = http().request(method.clone(), format!("{}{path}", stack.api_url()));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                if method == reqwest::Method::POST || method == reqwest::Method::PUT {
                    req = if path.starts_with("/connect/invite/") {
                        req.form(&[("api_key", "not-a-key")])
                    } else {
                        req.json(&serde_json::json!({}))
                    };
                }
                let resp = req.send().await.expect("the local API answers");
                let context = format!(
                    "{} {path} ({}) → {}",
                    route.method,
                    match token {
                        Some(t) if t == valid => "valid token",
                        Some(_) => "invalid token",
                        None => "no token",
                    },
                    resp.status()
                );
                check(route.authorized, &context, &resp);
                seen += 1;
            }
        }
    }
    seen
}

/// API Gateway's JWT authorizer answers a refused token itself, before any function
/// runs: that 401 is the gateway's, not ours (see the report in the test below).
fn refused_by_the_authorizer(route_authorized: bool, resp: &reqwest::Response) -> bool {
    route_authorized && resp.status() == 401
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_nosniff_with_a_valid_an_invalid_or_no_token_and_no_hsts_over_http() {
    let stack = stack(StackOptions::default()).await;
    let gateway_401 = std::sync::Mutex::new(Vec::new());
    let seen = walk_every_route(&stack, |authorized, context, resp| {
        if refused_by_the_authorizer(authorized, resp) {
            gateway_401.lock().unwrap().push(context.to_string());
            return;
        }
        assert_eq!(
            resp.headers()
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap_or_default()),
            Some("nosniff"),
            "{context}"
        );
        assert!(
            resp.headers().get("strict-transport-security").is_none(),
            "{context}: HSTS over plain http"
        );
    })
    .await;
    assert!(seen >= stack.routes.routes.len() * 3, "{seen} requests");
    let refused = gateway_401.into_inner().unwrap();
    // Only requests without a valid token, on routes behind the authorizer.
    assert!(
        refused.iter().all(|c| !c.contains("(valid token)")),
        "{refused:#?}"
    );
    eprintln!(
        "{seen} responses checked; {} were the authorizer's own 401 (no function ran)",
        refused.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_deployment_sends_hsts_and_nosniff_on_every_route() {
    let stack = stack(StackOptions {
        extra_env: vec![(
            "OAUTH_REDIRECT_URI".into(),
            "https://seatscope.example/oauth/callback".into(),
        )],
        ..StackOptions::default()
    })
    .await;
    let seen = walk_every_route(&stack, |authorized, context, resp| {
        if refused_by_the_authorizer(authorized, resp) {
            return;
        }
        assert_eq!(
            resp.headers()["x-content-type-options"],
            "nosniff",
            "{context}"
        );
        assert_eq!(
            resp.headers()["strict-transport-security"],
            "max-age=31536000; includeSubDomains",
            "{context}"
        );
    })
    .await;
    assert!(seen >= stack.routes.routes.len() * 3, "{seen} requests");
}
