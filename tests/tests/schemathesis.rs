//! The API document tells the truth: schemathesis (pinned, installed into
//! `.tools/schemathesis` by `Tools::ensure`) runs every check it has against the local
//! stack, from `GET /api/openapi.json` as served, with a token, and finds 0 failures.
//!
//! The run uses an org of its own: it exercises the writes too (connect, API-key
//! connect, invites, sync, settings, disconnect). PagerDuty is connected and synced
//! first, so the provider-scoped reads have data to answer with.
//! `tests/schemathesis/seatscope_hooks.py` applies only the date rules openapi.json
//! states in prose (JSON Schema cannot express today + 366 days or relate `from` to
//! `to`) to the cases the document calls valid.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use seatscope_local::services::Tools;
use seatscope_local::stack::{workspace_root, Stack, StackOptions};
use seatscope_sandbox::{PagerDutyConfig, PandaDocConfig, SendGridSandboxKey};

const ORG: &str = "schemathesis-run-4b7";
/// Fixed, so a failure reproduces; bounded, so the run stays well under 90 s.
const SEED: &str = "20261123";
const MAX_EXAMPLES: &str = "25";
/// The keys the sandboxes accept, which the hooks put into well-formed API-key connects.
const PAGERDUTY_KEY: &str = "st-pagerduty-u2Rk7wQp";
const PANDADOC_KEY: &str = "st-pandadoc-9fJx3LmZ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_with_every_check() {
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 5,
            days: 10,
            events_per_day: 20,
            api_token: Some(PAGERDUTY_KEY.to_string()),
            ..PagerDutyConfig::default()
        },
        pandadoc: PandaDocConfig {
            api_key: Some(PANDADOC_KEY.to_string()),
            ..PandaDocConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    connect(&stack, ORG).await.expect("PagerDuty connects");
    let report = stack.tick().await.expect("tick");
    assert_eq!(report["synced"], 1, "{report}");

    let tools = Tools::locate().expect("the workspace");
    let st = tools.schemathesis();
    assert!(st.exists(), "Tools::ensure installs {}", st.display());
    let token = stack.token(ORG, &format!("admin@{ORG}.example"));
    let vendor_keys = serde_json::json!({
        "pagerduty": PAGERDUTY_KEY,
        "pandadoc": PANDADOC_KEY,
        "sendgrid": SendGridSandboxKey::full().key,
    });
    let hooks = workspace_root().join("tests").join("schemathesis");
    // Its working directory: schemathesis keeps state in ./.schemathesis.
    let cwd = std::env::temp_dir().join(format!("seatscope-schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).expect("a temporary directory");
    let started = Instant::now();
    let child = tokio::process::Command::new(&st)
        .arg("run")
        .arg(format!("{}/api/openapi.json", stack.api_url()))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all"])
        .args(["--seed", SEED, "--max-examples", MAX_EXAMPLES])
        .args(["--workers", "1", "--generation-database", "none"])
        .args(["--no-color", "--output-sanitize", "true"])
        .current_dir(&cwd)
        .env("PYTHONPATH", &hooks)
        .env("SCHEMATHESIS_HOOKS", "seatscope_hooks")
        .env("SEATSCOPE_API_TODAY", stack.today().to_string())
        .env("SEATSCOPE_VENDOR_KEYS", vendor_keys.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), child)
        .await
        .expect("schemathesis finishes within 5 minutes")
        .expect("schemathesis runs");
    let _ = std::fs::remove_dir_all(&cwd);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    println!("schemathesis took {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        output.status.success(),
        "schemathesis failed ({}); its output is above",
        output.status
    );
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('=') && l.contains(" in "))
        .unwrap_or_default();
    assert!(
        summary.contains("No issues found") && !stdout.contains('❌'),
        "not a clean run: {summary}"
    );
}

/// The catch-all route, as schemathesis's unsupported-method check sees it and
/// without a token: 405 with `Allow` for a documented path, 404 in the error shape
/// for any other /api path, and nothing else (no data, no token needed or read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_a_documented_path_does_not_serve_get_405_with_allow() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("the local stack starts");
    let send = |method: &str, path: &str| {
        http().request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("a method"),
            format!("{}{path}", stack.api_url()),
        )
    };
    for (method, path, allow) in [
        ("TRACE", "/api/config", "GET"),
        ("POST", "/api/openapi.json", "GET"),
        ("DELETE", "/api/overview", "GET"),
        ("PATCH", "/api/apps/pagerduty/settings", "GET, PUT"),
        ("HEAD", "/api/apps/pagerduty/seats", "GET"),
        ("GET", "/api/connections/pagerduty/api-key", "POST"),
        ("PUT", "/api/connections/nosuch", "DELETE"),
    ] {
        let resp = send(method, path).send().await.expect("an answer");
        assert_eq!(resp.status(), 405, "{method} {path}");
        assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
        if method != "HEAD" {
            let body: serde_json::Value = resp.json().await.expect("JSON");
            assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
        }
    }
    for (method, path) in [
        ("GET", "/api/nope"),
        ("POST", "/api/apps/pagerduty/seats/extra"),
        ("GET", "/api/apps//seats"),
    ] {
        let resp = send(method, path).send().await.expect("an answer");
        assert_eq!(resp.status(), 404, "{method} {path}");
        assert!(resp.headers().get("allow").is_none());
        let body: serde_json::Value = resp.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], "not_found", "{body}");
        assert!(!body.to_string().contains("nope"), "the path is not echoed");
    }
    // The routes themselves still come first: their authorizer answers.
    let resp = send("GET", "/api/overview")
        .send()
        .await
        .expect("an answer");
    assert_eq!(resp.status(), 401);
    // Outside /api, API Gateway's own 404.
    let resp = send("TRACE", "/connections")
        .send()
        .await
        .expect("an answer");
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text().await.unwrap(), r#"{"message":"Not Found"}"#);
}
