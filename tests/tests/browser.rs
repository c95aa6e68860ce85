//! The dashboard page in a real browser: starts the local stack (what `cargo xtask
//! dev` runs) on free ports, then runs `node --test tests/browser/dashboard.test.mjs`
//! (Playwright's `playwright-core` driving Debian's `chromium`, headless) against it,
//! and `tests/browser/page-load-bench.mjs` for three loads as a smoke run (it prints
//! figures, it asserts nothing about time).
//!
//! Needs Node.js ≥ 20, npm and a Chromium: `$CHROMIUM`, else `/usr/bin/chromium`
//! (Debian package `chromium`). `npm ci` runs in tests/browser when its
//! node_modules lacks playwright-core.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::PagerDutyConfig;
use seatscope_sandbox::SendGridSandboxKey;

/// The org the browser signs in to (through the dev issuer's form).
const ORG: &str = "browser";
const EMAIL: &str = "admin@browser.example";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "no Chromium at {} (install the Debian package `chromium`, or set CHROMIUM)",
        path.display()
    );
    path
}

/// `npm ci` in tests/browser when playwright-core is not installed there.
async fn npm_ci(dir: &Path) {
    if dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return;
    }
    let npm = std::env::var("NPM").unwrap_or_else(|_| "npm".into());
    let out = tokio::process::Command::new(&npm)
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running `{npm} ci` in {}: {e}", dir.display()));
    assert!(
        out.status.success(),
        "`{npm} ci` in {} failed:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `node args…` in `dir` with `env`, prints what it printed, returns whether it
/// exited 0. Killed after `limit`.
async fn node(dir: &Path, args: &[&str], env: &[(&str, String)], limit: Duration) -> bool {
    let started = Instant::now();
    let mut cmd =
        tokio::process::Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".into()));
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("node runs (install Node.js ≥ 20)");
    let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(out) => out.expect("node's output"),
        Err(_) => panic!("node {args:?} ran longer than {limit:?}"),
    };
    println!(
        "---- node {} (exit {:?}, {:.1} s) ----\n{}",
        args.join(" "),
        out.status.code(),
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        println!("---- stderr ----\n{stderr}");
    }
    out.status.success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_chromium_signs_in_connects_syncs_and_shows_the_ground_truth() {
    let root = workspace_root();
    let dir = root.join("tests/browser");
    let chromium = chromium();
    npm_ci(&dir).await;
    // More than one page of seats (pages of 100), a few weeks of activity.
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 130,
            days: 35,
            events_per_day: 300,
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let screenshots = root.join("tests/screenshots");
    std::fs::create_dir_all(&screenshots).expect("tests/screenshots");

    let env = [
        ("SEATSCOPE_API", stack.api_url()),
        ("SEATSCOPE_PAGERDUTY", stack.sandbox.base_url()),
        ("SEATSCOPE_SENDGRID", stack.sendgrid.base_url()),
        ("SEATSCOPE_SENDGRID_KEY", SendGridSandboxKey::full().key),
        ("SEATSCOPE_ORG", ORG.to_string()),
        ("SEATSCOPE_EMAIL", EMAIL.to_string()),
        ("SEATSCOPE_SCREENSHOTS", screenshots.display().to_string()),
        ("SEATSCOPE_TODAY_UTC", stack.today().to_string()),
        ("CHROMIUM", chromium.display().to_string()),
    ];
    let passed = node(
        &dir,
        &["--test", "--test-reporter=spec", "dashboard.test.mjs"],
        &env,
        Duration::from_secs(600),
    )
    .await;
    assert!(passed, "the browser tests failed (output above)");

    // The page-load bench, three loads: it must run; its figures are only printed.
    let mut bench_env = env.to_vec();
    bench_env.push(("SEATSCOPE_TOKEN", stack.token(ORG, EMAIL)));
    bench_env.push(("SEATSCOPE_BENCH_RUNS", "3".into()));
    let bench = node(
        &dir,
        &["page-load-bench.mjs"],
        &bench_env,
        Duration::from_secs(180),
    )
    .await;
    assert!(bench, "page-load-bench.mjs failed (output above)");
}

/// Roles on (`ROLE_CLAIM=groups`, `ADMIN_VALUES=seatscope-admins`): an admin connects
/// and syncs PagerDuty, then `tests/browser/roles.test.mjs` signs in as a viewer
/// through the dev issuer's form and finds no control that changes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_in_chromium_sees_everything_and_no_control_that_changes_it() {
    // Chromium first: without it there is nothing to start a stack for.
    chromium();
    npm_ci(&workspace_root().join("tests/browser")).await;
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 8,
            days: 10,
            events_per_day: 30,
            ..PagerDutyConfig::default()
        },
        extra_env: vec![
            (
                "ROLE_CLAIM".into(),
                seatscope_local::dev_issuer::ROLE_CLAIM.into(),
            ),
            (
                "ADMIN_VALUES".into(),
                seatscope_local::dev_issuer::ADMIN_GROUP.into(),
            ),
        ],
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "browser-roles";
    common::connect_to(&stack, org, "pagerduty")
        .await
        .expect("the admin connects PagerDuty");
    let report = stack.tick().await.expect("tick");
    assert_eq!(report["synced"], 1, "{report}");
    let passed = run_test_file(&stack, org, "roles.test.mjs", &[]).await;
    assert!(passed, "the viewer's browser tests failed (output above)");
}

/// Prices per license type and renewals: PandaDoc connected and synced, then
/// `tests/browser/spend.test.mjs` prices each license on the app page, sets an annual
/// renewal in 30 days and finds it in the overview's renewals with the saving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_in_chromium_prices_licenses_and_sees_the_renewal_in_the_overview() {
    // Chromium first: without it there is nothing to start a stack for.
    chromium();
    npm_ci(&workspace_root().join("tests/browser")).await;
    let stack = Stack::start(StackOptions {
        pandadoc: seatscope_sandbox::pandadoc::PandaDocConfig {
            users: 16,
            days: 45,
            events_per_day: 6,
            ..Default::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "browser-spend";
    common::connect_to(&stack, org, "pandadoc")
        .await
        .expect("the admin connects PandaDoc");
    let report = stack.tick().await.expect("tick");
    assert_eq!(report["synced"], 1, "{report}");
    let passed = run_test_file(&stack, org, "spend.test.mjs", &[]).await;
    assert!(passed, "the spend browser test failed (output above)");
}

/// PagerDuty's license types: 25 users connected and synced, then
/// `tests/browser/licenses.test.mjs` filters the seat table by each license and finds
/// exactly the sandbox's seats of it, and finds the downgrade hint on exactly the full
/// users who responded to nothing and are on no schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seat_table_in_chromium_filters_by_each_license() {
    // Chromium first: without it there is nothing to start a stack for.
    chromium();
    npm_ci(&workspace_root().join("tests/browser")).await;
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 25,
            days: 10,
            events_per_day: 30,
            // Two full users who only write notes: the downgrade hint's seats.
            notes_only_full_users: 2,
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "browser-licenses";
    common::connect_to(&stack, org, "pagerduty")
        .await
        .expect("the admin connects PagerDuty");
    let report = stack.tick().await.expect("tick");
    assert_eq!(report["synced"], 1, "{report}");
    let passed = run_test_file(
        &stack,
        org,
        "licenses.test.mjs",
        &[("SEATSCOPE_PAGERDUTY", stack.sandbox.base_url())],
    )
    .await;
    assert!(
        passed,
        "the license filter's browser test failed (output above)"
    );
}

/// Runs one file of `tests/browser/` (`node --test`) against `stack` as `org`'s admin,
/// with the page's and Chromium's environment and `extra`; true when it passed.
async fn run_test_file(stack: &Stack, org: &str, file: &str, extra: &[(&str, String)]) -> bool {
    let root = workspace_root();
    let screenshots = root.join("tests/screenshots");
    std::fs::create_dir_all(&screenshots).expect("tests/screenshots");
    let mut env = vec![
        ("SEATSCOPE_API", stack.api_url()),
        ("SEATSCOPE_ORG", org.to_string()),
        ("SEATSCOPE_SCREENSHOTS", screenshots.display().to_string()),
        ("CHROMIUM", chromium().display().to_string()),
    ];
    env.extend(extra.iter().cloned());
    node(
        &root.join("tests/browser"),
        &["--test", "--test-reporter=spec", file],
        &env,
        Duration::from_secs(300),
    )
    .await
}

/// People across apps: PagerDuty and PandaDoc connected and synced with six users
/// sharing an address across the two sandboxes, then `tests/browser/people.test.mjs`
/// pages through the People view, uses both filters and the CSV, and finds what the
/// sandboxes' ground truth (who holds which apps) and the API's filters say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_people_page_in_chromium_joins_seats_across_apps() {
    use std::collections::{BTreeMap, BTreeSet};
    chromium();
    npm_ci(&workspace_root().join("tests/browser")).await;
    let shared: Vec<(u32, String)> = (0..6)
        .map(|i| (2 + i, format!("person{i}.shared@people.example")))
        .collect();
    let upper: Vec<(u32, String)> = shared
        .iter()
        .map(|(i, e)| {
            (
                *i,
                if i % 2 == 0 {
                    e.to_uppercase()
                } else {
                    e.clone()
                },
            )
        })
        .collect();
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 25,
            days: 40,
            events_per_day: 40,
            shared_emails: shared,
            ..PagerDutyConfig::default()
        },
        pandadoc: seatscope_sandbox::pandadoc::PandaDocConfig {
            users: 16,
            days: 40,
            events_per_day: 6,
            shared_emails: upper,
            ..Default::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "browser-people";
    common::connect_to(&stack, org, "pagerduty")
        .await
        .expect("the admin connects PagerDuty");
    common::connect_to(&stack, org, "pandadoc")
        .await
        .expect("the admin connects PandaDoc");
    let report = stack.tick().await.expect("tick");
    assert_eq!(report["synced"], 2, "{report}");
    // Who holds which apps: the sandboxes' truth.
    let mut held: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let pd = stack.sandbox.ground_truth();
    let pandadoc = stack.pandadoc.ground_truth();
    let emails = pd
        .seats
        .iter()
        .map(|s| ("pagerduty", s.email.clone()))
        .chain(pandadoc.seats.iter().map(|s| ("pandadoc", s.email.clone())));
    let mut unmatched = BTreeMap::from([("pagerduty", 0), ("pandadoc", 0)]);
    for (app, email) in emails {
        let email = email.trim().to_lowercase();
        if email.is_empty() {
            *unmatched.get_mut(app).unwrap() += 1;
        } else {
            held.entry(email).or_default().insert(app);
        }
    }
    // The filters: the API's answer (tests/tests/people.rs checks it against the truth).
    let filtered = |query: &'static str| {
        let stack = &stack;
        async move {
            let (status, body) =
                common::get_json(stack, org, &format!("/api/people?limit=500&{query}"))
                    .await
                    .expect("people");
            assert_eq!(status, 200, "{body}");
            body["people"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["email"].clone())
                .collect::<Vec<_>>()
        }
    };
    let want = serde_json::json!({
        "people": held.iter().map(|(e, apps)| serde_json::json!([e, apps.len()])).collect::<Vec<_>>(),
        "unmatched": [["pagerduty", unmatched["pagerduty"]], ["pandadoc", unmatched["pandadoc"]]],
        "inactive_everywhere": filtered("inactive_everywhere=true").await,
        "two_apps_active_in_none": filtered("min_apps=2&active_in_none=true").await,
    });
    let passed = run_test_file(
        &stack,
        org,
        "people.test.mjs",
        &[("SEATSCOPE_PEOPLE_WANT", want.to_string())],
    )
    .await;
    assert!(
        passed,
        "the People page's browser test failed (output above)"
    );
}

/// A Reconnect that lands on another vendor account: PagerDuty connected and synced, then
/// the same vendor URL serves another account (a second sandbox, another seed and
/// subdomain), and `tests/browser/account-change.test.mjs` presses Reconnect, is warned
/// instead of having the history replaced, and switches keeping the old data apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_to_another_account_in_chromium_warns_and_keeps_the_old_data_apart() {
    chromium();
    npm_ci(&workspace_root().join("tests/browser")).await;
    let small = PagerDutyConfig {
        users: 8,
        days: 10,
        events_per_day: 30,
        ..PagerDutyConfig::default()
    };
    let mut stack = Stack::start(StackOptions {
        sandbox: small.clone(),
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "browser-account";
    common::connect_to(&stack, org, "pagerduty")
        .await
        .expect("the admin connects PagerDuty");
    let report = stack.tick().await.expect("tick");
    assert_eq!(report["synced"], 1, "{report}");
    let first = small.subdomain.clone();
    let other = "browser-account-eu".to_string();
    stack
        .sandbox
        .restart_as(PagerDutyConfig {
            seed: 4242,
            subdomain: other.clone(),
            ..small
        })
        .await
        .expect("the other account's sandbox starts on the same URL");
    let passed = run_test_file(
        &stack,
        org,
        "account-change.test.mjs",
        &[
            ("SEATSCOPE_PAGERDUTY", stack.sandbox.base_url()),
            ("SEATSCOPE_FIRST_ACCOUNT", first),
            ("SEATSCOPE_OTHER_ACCOUNT", other.clone()),
        ],
    )
    .await;
    assert!(
        passed,
        "the account-change browser test failed (output above)"
    );
    // What the page did is what the table holds.
    let conn = common::items_with_prefix(&stack, &format!("ORG#{org}"), "CONN#pagerduty")
        .await
        .unwrap()
        .remove(0);
    assert_eq!(conn["vendor_account_id"], other.as_str());
    assert_eq!(conn["archives"].as_array().map(Vec::len), Some(1));
}
