//! IAM least privilege, proven by the calls themselves: the local stack records every
//! AWS SDK operation each function performs (`seatscope_local::iam`: an interceptor on
//! the stack's clients, attributed to the function the gateway or the SQS worker is
//! running), the test drives every write and read path of every function through the
//! real HTTP gateway, then compares per function with the IAM actions its role grants
//! in template.yaml. A granted action no function call used fails, and so does a call
//! its role does not grant.

mod common;

use std::collections::BTreeSet;

use common::*;
use seatscope_local::gateway::Function;
use seatscope_local::iam::{covers, role_grants};
use seatscope_local::stack::{template_path, Stack, StackOptions};
use seatscope_sandbox::{PagerDutyConfig, SendGridSandboxKey};
use serde_json::{json, Value};

/// Granted actions the functions' code never calls, because Lambda itself uses the
/// role for them (none of them is an SDK call of ours):
/// - `logs:*`: Lambda writes the function's output to its log group.
/// - `xray:*`: `Tracing: Active`, Lambda's X-Ray integration sends the trace segments.
/// - `ec2:*`: the ENI management of a function in a VPC (AWSLambdaVPCAccessExecutionRole,
///   a managed policy, not read here anyway).
/// - `kms:*`: none is granted today; were one, Secrets Manager and DynamoDB call KMS on
///   the function's behalf, never our code.
const USED_BY_LAMBDA_ITSELF: [&str; 4] = ["logs:", "xray:", "ec2:", "kms:"];

fn used_by_lambda_itself(action: &str) -> bool {
    USED_BY_LAMBDA_ITSELF
        .iter()
        .any(|prefix| action.to_ascii_lowercase().starts_with(prefix))
}

async fn call(
    stack: &Stack,
    org: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = http()
        .request(method, format!("{}{path}", stack.api_url()))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("the local API answers");
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn expect(
    stack: &Stack,
    org: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    want: u16,
) {
    let (status, text) = call(stack, org, method.clone(), path, body).await;
    assert_eq!(status, want, "{method} {path} as {org}: {text}");
}

async fn api_key(stack: &Stack, org: &str, provider: &str, key: &str) {
    let path = format!("/api/connections/{provider}/api-key");
    expect(
        stack,
        org,
        reqwest::Method::POST,
        &path,
        Some(json!({ "api_key": key })),
        200,
    )
    .await;
}

async fn disconnect(stack: &Stack, org: &str, provider: &str, query: &str) {
    let path = format!("/api/connections/{provider}{query}");
    expect(stack, org, reqwest::Method::DELETE, &path, None, 200).await;
}

async fn create_invite(stack: &Stack, org: &str, provider: &str) -> String {
    let path = format!("/api/connections/{provider}/invites");
    let (status, body) = call(stack, org, reqwest::Method::POST, &path, None).await;
    assert_eq!(status, 201, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    body["url"].as_str().unwrap().to_string()
}

/// The schedule fires (scheduled-sync enqueues the due connections), then the local
/// event source mapping drains the queue through scheduled-sync, as the other suites
/// tick. (`POST /_local/tick` runs the same in the gateway's connection task, whose
/// 2 MiB stack a debug build's sync overflows.)
async fn tick(stack: &Stack) -> Value {
    Box::pin(stack.tick())
        .await
        .expect("the tick and the queue's batches run")
}

/// The cookies a response sets, as a browser sends them back (`a=1; b=2`).
fn set_cookies(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The sandbox's consent page, a button pressed, our callback followed by the browser
/// that started the connect (with the `cookie` it was given): the callback's status.
async fn consent_and_callback(authorize_url: &str, decision: &str, cookie: &str) -> u16 {
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
    let mut callback = http().get(location(&decided).unwrap());
    if !cookie.is_empty() {
        callback = callback.header(reqwest::header::COOKIE, cookie);
    }
    callback.send().await.unwrap().status().as_u16()
}

/// Every write and read path of every function, through the gateway.
async fn drive_every_path(stack: &Stack) {
    let org = "acme";
    let full_key = SendGridSandboxKey::full().key;

    // connect-start + oauth-callback: OAuth connects (new secrets), a denied consent.
    connect_to(stack, org, "pagerduty")
        .await
        .expect("PagerDuty OAuth connect");
    connect_to(stack, org, "pandadoc")
        .await
        .expect("PandaDoc OAuth connect");
    let started = http()
        .post(format!(
            "{}/api/connections/pagerduty/connect",
            stack.api_url()
        ))
        .bearer_auth(stack.token("denied", "admin@denied.example"))
        .json(&json!({ "return_to": "/connections" }))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let cookie = set_cookies(&started);
    let body: Value = started.json().await.unwrap();
    let authorize_url = body["authorize_url"].as_str().unwrap();
    let status = consent_and_callback(authorize_url, "deny", &cookie).await;
    assert!(
        (300..400).contains(&status),
        "a denied consent redirects ({status})"
    );
    // connect-start: an API-key connect (new secret).
    api_key(stack, org, "sendgrid", &full_key).await;

    // Invites: created, opened, continued to the vendor and approved; an API-key
    // invite form submitted.
    let url = create_invite(stack, "invited", "pagerduty").await;
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200);
    let continued = http()
        .post(&url)
        .form(&[("continue", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(continued.status(), 302);
    let authorize_url = location(&continued).unwrap();
    let cookie = set_cookies(&continued);
    assert_eq!(
        consent_and_callback(&authorize_url, "approve", &cookie).await,
        200
    );
    let url = create_invite(stack, "invited", "sendgrid").await;
    let submitted = http()
        .post(&url)
        .form(&[("api_key", full_key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 200);

    // scheduled-sync: the tick enqueues, the worker's batches sync every connection.
    let report = tick(stack).await;
    assert_eq!(report["synced"], 5, "{report}");
    assert_eq!(report["failed"], 0, "{report}");

    // A token refresh: the vendor refuses the access token, the sync refreshes it and
    // stores the new token set. "Sync now" asks for it.
    stack.sandbox.expire_access_tokens();
    let tokens_before = stack.sandbox.token_requests();
    expect(
        stack,
        org,
        reqwest::Method::POST,
        "/api/connections/pagerduty/sync",
        None,
        202,
    )
    .await;
    let report = tick(stack).await;
    assert!(report["synced"].as_u64().unwrap() >= 1, "{report}");
    assert!(stack.sandbox.token_requests() > tokens_before, "no refresh");

    // dashboard-api: settings saved, then every GET route of the template (every read
    // and export).
    let settings =
        json!({"inactive_days": 60, "grace_days": 14, "exempt_seats": [], "seat_price": 21.5});
    expect(
        stack,
        org,
        reqwest::Method::PUT,
        "/api/apps/pagerduty/settings",
        Some(settings),
        200,
    )
    .await;
    let today = stack.today();
    let from = today - time::Duration::days(29);
    for route in &stack.routes.routes {
        if route.function != Function::DashboardApi || route.method != "GET" {
            continue;
        }
        let files: &[&str] = if route.path.ends_with("/export/{file}") {
            &["seats.csv", "inactive-seats.csv", "trends.csv"]
        } else {
            &["app.js"]
        };
        for file in files {
            let mut path = route
                .path
                .replace("{provider}", "pagerduty")
                .replace("{file}", file);
            if route.path.starts_with("/api/") {
                path.push_str(&format!("?from={from}&to={today}"));
            }
            let (status, text) = call(stack, org, reqwest::Method::GET, &path, None).await;
            assert!(status < 500, "GET {path}: {status} {text}");
        }
    }

    // Reconnects while connected: new versions of the existing secrets.
    connect_to(stack, org, "pagerduty")
        .await
        .expect("OAuth reconnect");
    api_key(stack, org, "sendgrid", &full_key).await;
    // Disconnect (secret scheduled for deletion), then Reconnect restores it: through
    // OAuth and with an API key.
    disconnect(stack, org, "pagerduty", "").await;
    connect_to(stack, org, "pagerduty")
        .await
        .expect("OAuth reconnect after a disconnect");
    disconnect(stack, org, "sendgrid", "").await;
    api_key(stack, org, "sendgrid", &full_key).await;
    // Purge: the app's partition and the connection item go.
    disconnect(stack, org, "pandadoc", "?purge=true").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_is_granted_exactly_the_aws_actions_it_calls() {
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 5,
            days: 3,
            events_per_day: 10,
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    // Boxed: a debug build's futures are large, and the test's own is on its stack.
    Box::pin(drive_every_path(&stack)).await;

    let grants = role_grants(&template_path()).expect("reading the roles from template.yaml");
    let recorded = stack.calls.snapshot();
    let mut table = String::new();
    let mut problems = Vec::new();
    for function in Function::ALL {
        let grant = grants
            .get(&function)
            .unwrap_or_else(|| panic!("template.yaml has no function {}", function.binary()));
        let calls = recorded.get(&function).cloned().unwrap_or_default();
        let granted: BTreeSet<&String> = grant
            .allowed
            .iter()
            .filter(|a| !used_by_lambda_itself(a))
            .collect();
        table.push_str(&format!("{} ({}):\n", function.binary(), grant.role_id));
        for (action, count) in &calls {
            let ok = grant.allowed.iter().any(|g| covers(g, action));
            table.push_str(&format!(
                "  {action:<36} {count:>4} calls  {}\n",
                if ok { "granted" } else { "NOT GRANTED" }
            ));
            if !ok {
                problems.push(format!(
                    "{} calls {action} but {} does not grant it",
                    function.binary(),
                    grant.role_id
                ));
            }
        }
        for action in granted {
            if !calls.keys().any(|called| covers(action, called)) {
                table.push_str(&format!("  {action:<36}    0 calls  granted, UNUSED\n"));
                problems.push(format!(
                    "{} grants {action} to {} ({}), which no call of it used",
                    grant.role_id,
                    function.binary(),
                    grant.function_id
                ));
            }
        }
    }
    println!("{table}");
    assert!(
        problems.is_empty(),
        "IAM is not least privilege:\n  {}\n\n{table}",
        problems.join("\n  ")
    );
}
