//! Syncs under vendor faults, against DynamoDB Local, moto and the sandboxes over real
//! HTTP: with a 429 storm, a burst of 5xx, slow pages, truncated JSON or a 401 in the
//! middle of a sync, the run finishes (or a later one does) and what is stored equals
//! the sandbox's ground truth exactly: nothing lost, nothing counted twice. And the rate
//! budgets: a sync that needs several windows of a vendor's limit runs close to the
//! limit's bound with no (or next to no) 429.
//!
//! Each case prints its figures (requests, 429s, fault hits, wall time); nothing asserts
//! a time.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use seatscope_core::connectors;
use seatscope_core::domain::catalog::Catalog;
use seatscope_core::vault::Credentials;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::pandadoc::PandaDocConfig;
use seatscope_sandbox::sendgrid::SendGridConfig;
use seatscope_sandbox::{
    DayCount, Fault, FaultKind, GroundTruth, PagerDutyConfig, PandaDocSandbox, SendGridSandboxKey,
};
use serde_json::Value;

type Counts = BTreeMap<(String, String, String), u64>;

/// A sandbox's counters at one moment: API requests, 429s, fault hits.
#[derive(Clone, Copy, Default)]
struct Counters {
    requests: u64,
    rate_limited: u64,
    faults: u64,
}

fn counters(stack: &Stack, provider: &str) -> Counters {
    match provider {
        "pagerduty" => Counters {
            requests: stack.sandbox.api_requests(),
            rate_limited: stack.sandbox.rate_limited(),
            faults: stack.sandbox.fault_stats().injected,
        },
        "pandadoc" => {
            let s = stack.pandadoc.stats();
            Counters {
                requests: s.api_requests,
                rate_limited: s.rate_limited,
                faults: s.faults_injected,
            }
        }
        _ => Counters {
            requests: stack.sendgrid.api_requests(),
            rate_limited: stack.sendgrid.rate_limited(),
            faults: stack.sendgrid.fault_stats().injected,
        },
    }
}

fn arm(stack: &Stack, provider: &str, fault: Fault) {
    match provider {
        "pagerduty" => stack.sandbox.set_fault(fault),
        "pandadoc" => stack.pandadoc.set_fault(fault),
        _ => stack.sendgrid.set_fault(fault),
    }
    .expect("the fault is armed");
}

/// Syncs `org`'s connection to `provider` until a run succeeds (at most `runs` runs;
/// each later run is asked for like the dashboard's "sync now"). Returns the runs'
/// reports.
async fn sync_until_synced(stack: &Stack, org: &str, provider: &str, runs: usize) -> Vec<Value> {
    let mut reports = Vec::new();
    for run in 0..runs {
        if run > 0 {
            let (status, body) =
                post_json(stack, org, &format!("/api/connections/{provider}/sync"))
                    .await
                    .expect("sync now");
            assert!(status < 300, "sync now answered {status}: {body}");
        }
        let report = stack.tick().await.expect("tick");
        let synced = report["synced"].as_u64() == Some(1);
        reports.push(report);
        if synced {
            return reports;
        }
    }
    panic!("{org}/{provider}: no run succeeded in {runs}: {reports:?}");
}

/// Arms `fault`, syncs until a run succeeds, prints the figures; returns the number
/// of runs it took.
async fn sync_under(
    stack: &Stack,
    org: &str,
    provider: &str,
    label: &str,
    fault: Fault,
    runs: usize,
) -> usize {
    let before = counters(stack, provider);
    arm(stack, provider, fault);
    let started = Instant::now();
    let reports = sync_until_synced(stack, org, provider, runs).await;
    let wall = started.elapsed();
    let after = counters(stack, provider);
    eprintln!(
        "{provider} {label}: {} run(s), {} requests, {} 429s, {} fault hits (each one retried \
         or the run failed), {:.2} s",
        reports.len(),
        after.requests - before.requests,
        after.rate_limited - before.rate_limited,
        after.faults - before.faults,
        wall.as_secs_f64()
    );
    reports.len()
}

/// Day counts, DAU/WAU/MAU and feature totals of `org`'s `provider` equal `daily`.
async fn assert_equals_truth(stack: &Stack, org: &str, provider: &str, daily: &[DayCount]) {
    let pk = format!("ORG#{org}#APP#{provider}");
    let stored = stored_day_counts(&items_with_prefix(stack, &pk, DAY_ITEMS).await.unwrap());
    let want = truth_counts(daily);
    assert!(!want.is_empty());
    let lost = want
        .iter()
        .filter(|(k, v)| stored.get(*k) < Some(*v))
        .count();
    let extra = stored
        .iter()
        .filter(|(k, v)| want.get(*k) < Some(*v))
        .count();
    assert_eq!(
        (lost, extra),
        (0, 0),
        "{org}/{provider}: (seat, day, feature) counts lost / over-counted"
    );
    assert_eq!(stored, want);

    let mut dates: Vec<String> = daily.iter().map(|d| d.date.clone()).collect();
    dates.sort();
    dates.dedup();
    let (from, to) = (dates.first().unwrap(), dates.last().unwrap());
    let (status, detail) = get_json(
        stack,
        org,
        &format!("/api/apps/{provider}?from={from}&to={to}"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{detail}");
    let expected = expected_actives(
        &GroundTruth {
            seats: Vec::new(),
            daily: daily.to_vec(),
            on_call: Vec::new(),
        },
        &dates,
    );
    for point in detail["daily"].as_array().unwrap() {
        let d = point["date"].as_str().unwrap();
        let (dau, wau, mau) = expected[d];
        assert_eq!(
            (
                point["dau"].as_u64(),
                point["wau"].as_u64(),
                point["mau"].as_u64()
            ),
            (Some(dau as u64), Some(wau as u64), Some(mau as u64)),
            "{org}/{provider} {d}"
        );
    }
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for d in daily {
        *totals.entry(d.feature.clone()).or_default() += u64::from(d.count);
    }
    for f in detail["features"].as_array().unwrap() {
        let name = f["feature"].as_str().unwrap();
        assert_eq!(
            f["total"].as_u64(),
            Some(totals.get(name).copied().unwrap_or(0)),
            "{org}/{provider} {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_syncs_through_every_fault_kind_to_exactly_the_ground_truth() {
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 12,
            days: 12,
            events_per_day: 150,
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let truth = stack.sandbox.ground_truth();
    let p = "pagerduty";

    let cases: Vec<(&str, Fault, usize)> = vec![
        (
            "429 storm (ratelimit-reset 1 s)",
            Fault::new(FaultKind::RateLimitStorm).after(2).count(4),
            1,
        ),
        (
            "429 storm, bare (no headers, no body)",
            Fault::new(FaultKind::RateLimitStorm)
                .after(3)
                .count(2)
                .reset_secs(0),
            1,
        ),
        (
            "5xx burst (500, 502, 503)",
            Fault::new(FaultKind::ServerErrors)
                .after(1)
                .every(2)
                .count(3),
            1,
        ),
        (
            "slow pages (1.5 s each)",
            Fault::new(FaultKind::SlowPages)
                .after(1)
                .every(3)
                .count(3)
                .delay_ms(1_500),
            1,
        ),
        (
            "truncated JSON, twice",
            Fault::new(FaultKind::MalformedJson).after(2).count(2),
            1,
        ),
    ];
    for (i, (label, fault, max_runs)) in cases.into_iter().enumerate() {
        let org = format!("pd-fault-{i}");
        connect_to(&stack, &org, p).await.expect("connect");
        let runs = sync_under(&stack, &org, p, label, fault, max_runs).await;
        assert_eq!(runs, 1, "{label}: the run itself recovers");
        assert_equals_truth(&stack, &org, p, &truth.daily).await;
    }

    // Truncated JSON that does not go away: the run fails as a vendor error, the
    // connection stays connected, and the next run finishes.
    let org = "pd-fault-malformed-storm";
    connect_to(&stack, org, p).await.expect("connect");
    let runs = sync_under(
        &stack,
        org,
        p,
        "truncated JSON, 4 times running (past the retries)",
        Fault::new(FaultKind::MalformedJson).after(2).count(4),
        2,
    )
    .await;
    // Whether the failed run is retried by the queue or asked for again, a later one finishes.
    assert!(runs <= 2);
    let (_, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    assert_eq!(overview["apps"][0]["connection"]["status"], "connected");
    assert_equals_truth(&stack, org, p, &truth.daily).await;

    // 401 in the middle of the sync: the token is refreshed once and the run finishes.
    let org = "pd-fault-401";
    connect_to(&stack, org, p).await.expect("connect");
    let token_requests = stack.sandbox.token_requests();
    let runs = sync_under(
        &stack,
        org,
        p,
        "401 mid-sync (OAuth)",
        Fault::new(FaultKind::Unauthorized).after(4),
        1,
    )
    .await;
    assert_eq!(runs, 1);
    assert_eq!(
        stack.sandbox.token_requests() - token_requests,
        1,
        "refreshed exactly once"
    );
    assert_equals_truth(&stack, org, p, &truth.daily).await;
    let (_, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    assert_eq!(overview["apps"][0]["connection"]["status"], "connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pandadoc_and_sendgrid_sync_through_their_faults_to_exactly_the_ground_truth() {
    let stack = Stack::start(StackOptions {
        pandadoc: PandaDocConfig {
            users: 8,
            days: 12,
            events_per_day: 6,
            ..PandaDocConfig::default()
        },
        sendgrid: SendGridConfig {
            teammates: 5,
            pending_invites: 1,
            // Within the stack's 90 days of history.
            days: 80,
            ..SendGridConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");

    // PandaDoc: 429s never carry a header; the body hints the wait, or says nothing.
    let truth = stack.pandadoc.ground_truth();
    let p = "pandadoc";
    let cases: Vec<(&str, Fault)> = vec![
        (
            "429 storm, no header, body hint 2 s",
            Fault::new(FaultKind::RateLimitStorm)
                .after(3)
                .count(2)
                .reset_secs(2),
        ),
        (
            "429 storm, no header, no hint",
            Fault::new(FaultKind::RateLimitStorm)
                .after(5)
                .count(3)
                .reset_secs(0),
        ),
        (
            "5xx burst",
            Fault::new(FaultKind::ServerErrors).after(4).count(3),
        ),
        (
            "truncated JSON",
            Fault::new(FaultKind::MalformedJson).after(6).count(2),
        ),
    ];
    for (i, (label, fault)) in cases.into_iter().enumerate() {
        let org = format!("doc-fault-{i}");
        connect_to(&stack, &org, p).await.expect("connect");
        let runs = sync_under(&stack, &org, p, label, fault, 1).await;
        assert_eq!(runs, 1, "{label}");
        assert_equals_truth(&stack, &org, p, &truth.daily).await;
    }
    let org = "doc-fault-401";
    connect_to(&stack, org, p).await.expect("connect");
    let refreshes = stack.pandadoc.stats().token_requests_refresh_token;
    let runs = sync_under(
        &stack,
        org,
        p,
        "401 mid-sync (OAuth)",
        Fault::new(FaultKind::Unauthorized).after(7),
        1,
    )
    .await;
    assert_eq!(runs, 1);
    assert_eq!(
        stack.pandadoc.stats().token_requests_refresh_token - refreshes,
        1,
        "refreshed exactly once"
    );
    assert_equals_truth(&stack, org, p, &truth.daily).await;

    // SendGrid: X-RateLimit-* with the reset as an epoch; account-level numbers only.
    let truth = stack.sendgrid.ground_truth();
    let p = "sendgrid";
    let cases: Vec<(&str, Fault)> = vec![
        (
            "429 storm (X-RateLimit-Reset epoch +1 s)",
            Fault::new(FaultKind::RateLimitStorm).after(1).count(3),
        ),
        (
            "5xx burst",
            Fault::new(FaultKind::ServerErrors).after(1).count(3),
        ),
        (
            "slow pages",
            Fault::new(FaultKind::SlowPages).count(2).delay_ms(1_000),
        ),
        (
            "truncated JSON",
            Fault::new(FaultKind::MalformedJson).after(2).count(2),
        ),
    ];
    for (i, (label, fault)) in cases.into_iter().enumerate() {
        let org = format!("mail-fault-{i}");
        let resp = http()
            .post(format!(
                "{}/api/connections/sendgrid/api-key",
                stack.api_url()
            ))
            .bearer_auth(stack.token(&org, &format!("admin@{org}.example")))
            .json(&serde_json::json!({ "api_key": SendGridSandboxKey::full().key }))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        let runs = sync_under(&stack, &org, p, label, fault, 1).await;
        assert_eq!(runs, 1, "{label}");

        let first = truth.daily.first().unwrap().date.clone();
        let last = truth.daily.last().unwrap().date.clone();
        let (status, detail) = get_json(
            &stack,
            &org,
            &format!("/api/apps/sendgrid?from={first}&to={last}"),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{detail}");
        let daily = detail["daily"].as_array().unwrap();
        assert_eq!(daily.len(), truth.daily.len(), "{label}");
        for (point, want) in daily.iter().zip(&truth.daily) {
            assert_eq!(point["date"], want.date.as_str());
            assert_eq!(
                (
                    point["account"]["emails_requested"].as_u64().unwrap_or(0),
                    point["account"]["emails_delivered"].as_u64().unwrap_or(0)
                ),
                (want.metrics.requests, want.metrics.delivered),
                "{label} {}",
                want.date
            );
        }
        assert_eq!(detail["plan"]["used"].as_u64(), Some(truth.credits.used));
        let (_, seats) = get_json(&stack, &org, "/api/apps/sendgrid/seats")
            .await
            .unwrap();
        assert_eq!(
            seats["seats"].as_array().unwrap().len(),
            truth.seats.len(),
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_at_120_a_minute_syncs_three_windows_of_requests_near_the_bound_without_429s() {
    let limit = 120;
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 25,
            days: 30,
            events_per_day: 420,
            rate_limit_per_minute: limit,
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "budget";
    let truth = stack.sandbox.ground_truth();
    connect_to(&stack, org, "pagerduty").await.expect("connect");

    let before = counters(&stack, "pagerduty");
    let started = Instant::now();
    let report = stack.tick().await.expect("tick");
    let wall = started.elapsed();
    assert_eq!(report["synced"], 1, "{report}");
    let after = counters(&stack, "pagerduty");
    let requests = after.requests - before.requests;
    let bound = Duration::from_secs_f64(requests as f64 * 60.0 / f64::from(limit));
    eprintln!(
        "pagerduty budget: {requests} requests at {limit}/min (fixed 60 s windows): {} 429s, \
         wall {:.1} s, bound (requests ÷ rate) {:.1} s, ratio {:.2}",
        after.rate_limited - before.rate_limited,
        wall.as_secs_f64(),
        bound.as_secs_f64(),
        wall.as_secs_f64() / bound.as_secs_f64()
    );
    assert!(
        requests >= 2 * u64::from(limit),
        "the data set must need several windows ({requests} requests)"
    );
    // Windows are fetched SYNC_PARALLEL_WINDOWS (3) at once: when a vendor window
    // runs out, the other requests already in flight can still draw a 429 each
    // (honored and retried), so a few per exhausted window are expected.
    let windows = requests.div_ceil(u64::from(limit));
    let allowed = 2 + 2 * windows;
    assert!(
        after.rate_limited - before.rate_limited <= allowed,
        "the budget and the headers keep the sync nearly free of 429s (at most {allowed})"
    );
    assert_equals_truth(&stack, org, "pagerduty", &truth.daily).await;
}

/// PandaDoc sends no rate-limit header: only the client's own pacing keeps it under a
/// sliding window. The catalog's budgets are scaled down to the sandbox's limits here
/// (list 60/min, details 120/min), as a vendor's real numbers would be set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pandadoc_paced_by_its_class_budgets_stays_under_a_sliding_window_without_429s() {
    let (list, details) = (60u32, 120u32);
    let sandbox = PandaDocSandbox::start(
        PandaDocConfig {
            users: 8,
            days: 24,
            events_per_day: 10,
            api_key: Some("3039ba033eb1410caa0a2227158d63c9d6502cd8".into()),
            list_rate_per_minute: list,
            details_rate_per_minute: details,
            ..PandaDocConfig::default()
        },
        0,
    )
    .await
    .expect("the sandbox starts");
    let base = sandbox.base_url();
    let catalog = Catalog::load(|k| (k == "PANDADOC_API_BASE").then(|| base.clone())).unwrap();
    let mut provider = catalog.get("pandadoc").unwrap().clone();
    provider.rate_limit_per_minute = list;
    for class in &mut provider.rate_classes {
        class.per_minute = details;
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let connector = connectors::for_provider(
        &provider,
        &client,
        &Credentials::ApiKey(
            "3039ba033eb1410caa0a2227158d63c9d6502cd8"
                .to_string()
                .into(),
        ),
    )
    .unwrap();

    let truth = sandbox.ground_truth();
    // The window a first sync reads: 90 days of history up to now.
    let until = seatscope_sandbox::clock::now();
    let since = (until - time::Duration::days(90)).replace_time(time::Time::MIDNIGHT);
    let started = Instant::now();
    let mut counts: Counts = BTreeMap::new();
    connector
        .activity((since, until), &mut |e| {
            *counts
                .entry((
                    e.seat_id,
                    seatscope_core::domain::day(e.at.date()),
                    e.feature.to_string(),
                ))
                .or_default() += 1;
        })
        .await
        .expect("the activity walk finishes");
    let wall = started.elapsed();
    let stats = sandbox.stats();
    let http = connector.http().stats();
    let bound = Duration::from_secs_f64(
        stats.api_requests_list as f64 * 60.0 / f64::from(list)
            + stats.api_requests_details as f64 * 60.0 / f64::from(details),
    );
    eprintln!(
        "pandadoc budget: {} list requests at {list}/min + {} details at {details}/min \
         (sliding 60 s windows, no headers): {} 429s, {} retries, wall {:.1} s, bound {:.1} s, \
         ratio {:.2}",
        stats.api_requests_list,
        stats.api_requests_details,
        stats.rate_limited,
        http.retries,
        wall.as_secs_f64(),
        bound.as_secs_f64(),
        wall.as_secs_f64() / bound.as_secs_f64()
    );
    assert!(
        stats.api_requests_details >= u64::from(2 * details),
        "the data set must cross several windows ({} details)",
        stats.api_requests_details
    );
    assert_eq!(stats.rate_limited, 0, "pacing alone keeps under the window");
    let want = truth_counts(&truth.daily);
    let lost: Vec<_> = want
        .iter()
        .filter(|(k, v)| counts.get(*k) != Some(*v))
        .collect();
    let extra: Vec<_> = counts
        .iter()
        .filter(|(k, _)| !want.contains_key(*k))
        .collect();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "lost or wrong: {lost:?}; not in the truth: {extra:?}"
    );
}
