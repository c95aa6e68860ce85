//! Attacks on the local stack over real HTTP, each a whole class of input tried on
//! every place it can enter: hostile `return_to` values through the OAuth callback on
//! approve and deny, spreadsheet formulas in vendor data, dates and numbers that
//! overflow, and the security headers on every route of template.yaml.

mod common;

use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::{PagerDutyConfig, SendGridSandboxKey, TokenOverride};
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
            let resp = consent.callback().send().await.unwrap();
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
            let resp = consent.callback().send().await.unwrap();
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
        .deps
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
            .replace("{id}", "0123456789abcdef")
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

// --- the OAuth state is bound to the browser that started the connect -------------

/// What a request could have written: every item of the table except OAuth states
/// (a refused callback consumes its state, on purpose: it cannot be retried), and
/// the names of the secrets.
async fn written(stack: &Stack) -> (Vec<Value>, Vec<String>) {
    let mut items: Vec<Value> = all_items(stack)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| {
            !i["pk"]
                .as_str()
                .unwrap_or_default()
                .starts_with("OAUTH_STATE#")
        })
        .collect();
    items.sort_by_key(|i| format!("{}|{}", i["pk"], i["sk"]));
    let mut secrets = secret_names(stack).await.unwrap();
    secrets.sort();
    (items, secrets)
}

async fn oauth_states(stack: &Stack) -> usize {
    all_items(stack)
        .await
        .unwrap()
        .iter()
        .filter(|i| {
            i["pk"]
                .as_str()
                .unwrap_or_default()
                .starts_with("OAUTH_STATE#")
        })
        .count()
}

/// A refused callback: the 400 page saying the browser is not the one that started.
async fn assert_refused_other_browser(resp: reqwest::Response, context: &str) {
    assert_eq!(resp.status(), 400, "{context}");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{context}"
    );
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("started in another browser") && page.contains("Nothing was connected"),
        "{context}: {page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_call_sets_a_host_only_lax_httponly_binding_cookie() {
    let stack = stack(StackOptions::default()).await;
    let consent = consent(&stack, "acme", "approve").await.unwrap();
    // Local stack over http: the plain name (OAUTH_COOKIE_SECURE=false), a 43-char nonce.
    let (name, nonce) = consent.cookie.split_once('=').unwrap();
    assert_eq!(name, "seatscope_oauth");
    assert_eq!(nonce.len(), 43, "32 random bytes, base64url");
    // The nonce is stored only as its hash, and appears in no URL.
    let dump = serde_json::to_string(&every_item(&stack).await.unwrap()).unwrap();
    assert!(!dump.contains(nonce), "the nonce is stored in clear");
    assert!(!consent.authorize_url.contains(nonce) && !consent.callback_url.contains(nonce));
    // The callback clears it, whatever the outcome.
    let resp = consent.callback().send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let cleared = resp.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("seatscope_oauth=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_without_the_browser_cookie_is_refused_and_writes_nothing() {
    let stack = stack(StackOptions::default()).await;
    let org = "acme";
    let consent = consent(&stack, org, "approve").await.unwrap();
    let before = written(&stack).await;
    let tokens_before = stack.sandbox.token_requests();
    let resp = callback_from(&consent.callback_url, None)
        .send()
        .await
        .unwrap();
    assert_refused_other_browser(resp, "no cookie").await;
    assert_eq!(
        written(&stack).await,
        before,
        "a refused callback wrote something"
    );
    assert_eq!(
        stack.sandbox.token_requests(),
        tokens_before,
        "the code was exchanged"
    );
    // Decided: the state is consumed, so even the right browser cannot use it now.
    assert_eq!(oauth_states(&stack).await, 0);
    let resp = consent.callback().send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(written(&stack).await, before);
    // A cookie of the right name with garbage in it is no better.
    let again = consent_to(&stack, org, "pagerduty", "approve")
        .await
        .unwrap();
    let resp = callback_from(&again.callback_url, Some("seatscope_oauth=<script>"))
        .send()
        .await
        .unwrap();
    assert_refused_other_browser(resp, "garbage cookie").await;
    assert_eq!(written(&stack).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_with_another_browsers_cookie_is_refused_and_writes_nothing() {
    let stack = stack(StackOptions::default()).await;
    // The attacker starts a connect into their org and has the victim (whose browser
    // holds its own binding cookie from a connect of its own) approve it.
    let attackers = consent_to(&stack, "evil", "pagerduty", "approve")
        .await
        .unwrap();
    let victims = consent_to(&stack, "acme", "pagerduty", "approve")
        .await
        .unwrap();
    let before = written(&stack).await;
    let resp = callback_from(&attackers.callback_url, Some(&victims.cookie))
        .send()
        .await
        .unwrap();
    assert_refused_other_browser(resp, "another browser's cookie").await;
    assert_eq!(written(&stack).await, before);
    // The same with the production cookie name (a browser over https) sent here.
    let (_, nonce) = attackers.cookie.split_once('=').unwrap();
    let third = consent_to(&stack, "evil", "pagerduty", "approve")
        .await
        .unwrap();
    let resp = callback_from(
        &third.callback_url,
        Some(&format!("__Host-seatscope_oauth={nonce}")),
    )
    .send()
    .await
    .unwrap();
    assert_refused_other_browser(resp, "wrong cookie name").await;
    assert_eq!(written(&stack).await, before);
    // The victim's own flow still works in the victim's browser.
    let resp = victims.callback().send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert!(location(&resp).unwrap().contains("result=connected"));
}

/// The sandbox's consent page at `authorize_url`, Approve or Deny pressed: our callback URL.
async fn decide(authorize_url: &str, decision: &str) -> String {
    let page = http().get(authorize_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let form = parse_consent(&page.text().await.unwrap()).unwrap();
    let action = url::Url::parse(authorize_url)
        .unwrap()
        .join(&form.action)
        .unwrap();
    let mut fields = form.fields.clone();
    fields.retain(|(k, _)| k != "decision");
    fields.push(("decision".into(), decision.into()));
    let decided = http().post(action).form(&fields).send().await.unwrap();
    assert!(decided.status().is_redirection());
    location(&decided).unwrap()
}

async fn create_invite(stack: &Stack, org: &str, provider: &str) -> Value {
    let resp = http()
        .post(format!(
            "{}/api/connections/{provider}/invites",
            stack.api_url()
        ))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_link_finished_in_a_second_browser_is_refused() {
    let stack = stack(StackOptions::default()).await;
    let org = "acme";
    let invite = create_invite(&stack, org, "pagerduty").await;
    let url = invite["url"].as_str().unwrap();
    // The page names the organization and who asked.
    let page = http().get(url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("<strong>acme</strong> — admin@acme.example asked you to connect PagerDuty"),
        "{page}"
    );
    // Browser A presses Continue (and gets the cookie); the authorize URL is finished
    // in browser B, with no cookie or with B's own.
    let continued = http()
        .post(url)
        .form(&[("continue", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(continued.status(), 302);
    let cookie_a = binding_cookie(&continued).unwrap();
    let authorize_url = location(&continued).unwrap();
    let other = consent_to(&stack, "someone-else", "pagerduty", "approve")
        .await
        .unwrap();
    let callback = decide(&authorize_url, "approve").await;
    let before = written(&stack).await;
    let resp = callback_from(&callback, Some(&other.cookie))
        .send()
        .await
        .unwrap();
    assert_refused_other_browser(resp, "invite finished in browser B").await;
    assert_eq!(written(&stack).await, before);
    assert!(stack
        .deps
        .store
        .connection(&org_id(org), "pagerduty")
        .await
        .unwrap()
        .is_none());
    // Consumed on refusal: browser A cannot finish it afterwards either.
    let resp = callback_from(&callback, Some(&cookie_a))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(written(&stack).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_replay_and_code_replay_are_refused() {
    let stack = stack(StackOptions::default()).await;
    let first = connect_to(&stack, "acme", "pagerduty").await.unwrap();
    let before = written(&stack).await;
    // The same callback again, from the same browser: the state is gone.
    let resp = first.callback().send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("cannot be used"));
    assert_eq!(written(&stack).await, before);
    // The used code with a fresh, valid state (and its browser's cookie), into another
    // org: the vendor refuses the code, nothing is connected or stored.
    let code = query_value(&first.callback_url, "code").unwrap();
    let fresh = consent_to(&stack, "evil", "pagerduty", "approve")
        .await
        .unwrap();
    let state = query_value(&fresh.callback_url, "state").unwrap();
    let replay = format!(
        "{}/oauth/callback?code={code}&state={state}",
        stack.api_url()
    );
    let before = written(&stack).await;
    let resp = callback_from(&replay, Some(&fresh.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let to = location(&resp).unwrap();
    assert!(to.contains("result=error"), "{to}");
    assert_eq!(written(&stack).await, before);
    assert!(stack
        .deps
        .store
        .connection(&org_id("evil"), "pagerduty")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_consent_writes_nothing() {
    let stack = stack(StackOptions::default()).await;
    let before = written(&stack).await;
    let denied = consent(&stack, "acme", "deny").await.unwrap();
    let resp = denied.callback().send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let to = location(&resp).unwrap();
    assert!(
        to.contains("result=error") && to.contains("reason=access_denied"),
        "{to}"
    );
    assert_eq!(written(&stack).await, before);
    assert_eq!(oauth_states(&stack).await, 0);
}

// --- the token response is checked ------------------------------------------------

/// The vendor answers the code exchange with `answer`: the callback refuses with a
/// page naming the problem, and nothing is stored.
async fn assert_token_refused(answer: TokenOverride, says: &str) {
    let stack = stack(StackOptions::default()).await;
    stack.sandbox.set_token_response(answer.clone());
    let before = written(&stack).await;
    let consent = consent(&stack, "acme", "approve").await.unwrap();
    let tokens_before = stack.sandbox.token_requests();
    let resp = consent.callback().send().await.unwrap();
    assert_eq!(resp.status(), 400, "{answer:?}");
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("PagerDuty was not connected") && page.contains(says),
        "{answer:?}: {page}"
    );
    assert!(page.contains("Nothing was stored"), "{page}");
    assert_eq!(
        stack.sandbox.token_requests(),
        tokens_before + 1,
        "the code was exchanged once"
    );
    assert_eq!(
        written(&stack).await,
        before,
        "{answer:?}: something was stored"
    );
    // The truth again: the same flow connects.
    stack.sandbox.set_token_response(TokenOverride::default());
    connect(&stack, "acme").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widened_scope_is_refused_and_nothing_is_stored() {
    assert_token_refused(
        TokenOverride {
            scope: Some("openid read write".into()),
            token_type: None,
        },
        "granted the scope 'read write' where Seatscope asked for 'read'",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_scope_is_refused_and_nothing_is_stored() {
    assert_token_refused(
        TokenOverride {
            scope: Some("openid".into()),
            token_type: None,
        },
        "granted the scope '' where Seatscope asked for 'read'",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_is_not_bearer_is_refused_and_nothing_is_stored() {
    assert_token_refused(
        TokenOverride {
            scope: None,
            token_type: Some("mac".into()),
        },
        "not a Bearer token",
    )
    .await;
}

// --- invite links: listed, revoked, and burnt by refused keys --------------------

async fn invites_call(
    stack: &Stack,
    org: &str,
    method: reqwest::Method,
    path: &str,
) -> (u16, Value) {
    let resp = http()
        .request(method, format!("{}{path}", stack.api_url()))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_invites_are_listed_without_tokens_and_a_revoked_link_is_410() {
    let stack = stack(StackOptions::default()).await;
    let org = "acme";
    let list = "/api/connections/pagerduty/invites";
    let (status, body) = invites_call(&stack, org, reqwest::Method::GET, list).await;
    assert_eq!((status, body), (200, serde_json::json!({"invites": []})));
    let a = create_invite(&stack, org, "pagerduty").await;
    let b = create_invite(&stack, org, "pagerduty").await;
    let (status, body) = invites_call(&stack, org, reqwest::Method::GET, list).await;
    assert_eq!(status, 200, "{body}");
    let listed = body["invites"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{body}");
    for inv in listed {
        assert_eq!(inv["invited_by"], "admin@acme.example");
        assert!(inv["created_at"].is_string() && inv["expires_at"].is_string());
        assert_eq!(
            inv.as_object().unwrap().len(),
            4,
            "only id, dates, who: {inv}"
        );
    }
    let text = body.to_string();
    for created in [&a, &b] {
        let token = created["url"].as_str().unwrap().rsplit('/').next().unwrap();
        assert!(!text.contains(token), "a token is listed");
        assert!(listed.iter().any(|i| i["id"] == created["id"]));
    }
    // Other apps' lists are their own.
    let (_, other) = invites_call(
        &stack,
        org,
        reqwest::Method::GET,
        "/api/connections/pandadoc/invites",
    )
    .await;
    assert_eq!(other["invites"].as_array().unwrap().len(), 0);
    // Revoke A: 204, its link answers 410 (GET and POST), B is still listed and usable.
    let id = a["id"].as_str().unwrap();
    let (status, _) = invites_call(
        &stack,
        org,
        reqwest::Method::DELETE,
        &format!("{list}/{id}"),
    )
    .await;
    assert_eq!(status, 204);
    let url_a = a["url"].as_str().unwrap();
    assert_eq!(http().get(url_a).send().await.unwrap().status(), 410);
    let resp = http()
        .post(url_a)
        .form(&[("continue", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 410);
    let (_, body) = invites_call(&stack, org, reqwest::Method::GET, list).await;
    let ids: Vec<&Value> = body["invites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["id"])
        .collect();
    assert_eq!(ids, vec![&b["id"]]);
    assert_eq!(
        http()
            .get(b["url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Revoking again, or an id that never existed: 404.
    let (status, _) = invites_call(
        &stack,
        org,
        reqwest::Method::DELETE,
        &format!("{list}/{id}"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) =
        invites_call(&stack, org, reqwest::Method::DELETE, &format!("{list}/zz")).await;
    assert_eq!(status, 404);
    // A used invite leaves the list.
    let resp = http()
        .post(b["url"].as_str().unwrap())
        .form(&[("continue", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let (_, body) = invites_call(&stack, org, reqwest::Method::GET, list).await;
    assert_eq!(body["invites"].as_array().unwrap().len(), 0, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_org_can_neither_list_nor_revoke_an_invite() {
    let stack = stack(StackOptions::default()).await;
    let invite = create_invite(&stack, "acme", "pagerduty").await;
    let id = invite["id"].as_str().unwrap();
    let list = "/api/connections/pagerduty/invites";
    let before = written(&stack).await;
    let (status, body) = invites_call(&stack, "evil", reqwest::Method::GET, list).await;
    assert_eq!((status, body), (200, serde_json::json!({"invites": []})));
    let (status, body) = invites_call(
        &stack,
        "evil",
        reqwest::Method::DELETE,
        &format!("{list}/{id}"),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        written(&stack).await,
        before,
        "another org's revoke changed something"
    );
    assert_eq!(
        http()
            .get(invite["url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (_, body) = invites_call(&stack, "acme", reqwest::Method::GET, list).await;
    assert_eq!(body["invites"][0]["id"], id);
    // Without a token: the authorizer's 401.
    let resp = http()
        .get(format!("{}{list}", stack.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_refused_keys_burn_an_api_key_invite() {
    let stack = stack(StackOptions::default()).await;
    let org = "acme";
    let invite = create_invite(&stack, org, "sendgrid").await;
    let url = invite["url"].as_str().unwrap();
    let page = http().get(url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("<strong>acme</strong> — admin@acme.example asked you to connect SendGrid"),
        "{page}"
    );
    let post = |key: String| async move {
        let resp = http()
            .post(url)
            .form(&[("api_key", key)])
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    };
    for i in 1..=4 {
        let (status, page) = post(format!("SG.wrong-key-{i}")).await;
        assert!(
            status == 422 || status == 400,
            "refusal {i}: {status} {page}"
        );
        assert!(page.contains("not accepted"), "{page}");
    }
    // The 5th refusal burns it, and the page says so.
    let (status, page) = post("SG.wrong-key-5".into()).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("no longer valid"), "{page}");
    // The right key now: 410, nothing stored.
    let before = written(&stack).await;
    let (status, _) = post(SendGridSandboxKey::full().key).await;
    assert_eq!(status, 410);
    assert_eq!(http().get(url).send().await.unwrap().status(), 410);
    assert_eq!(written(&stack).await, before);
    assert!(stack
        .deps
        .store
        .connection(&org_id(org), "sendgrid")
        .await
        .unwrap()
        .is_none());
    let (_, body) = invites_call(
        &stack,
        org,
        reqwest::Method::GET,
        "/api/connections/sendgrid/invites",
    )
    .await;
    assert_eq!(body["invites"].as_array().unwrap().len(), 0, "{body}");
}
