//! Sync at scale: the tick's SQS fan-out, deadline continuations and a worker
//! killed mid-sync, against DynamoDB Local, moto's SQS and the PagerDuty sandbox.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use seatscope_core::domain::Caller;
use seatscope_core::ops::connect;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::PagerDutyConfig;
use serde_json::Value;

const API_TOKEN: &str = "pd-fanout-account-key";

async fn stack(sandbox: PagerDutyConfig, history_days: u32, extra_env: &[(&str, &str)]) -> Stack {
    Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            api_token: Some(API_TOKEN.into()),
            // All orgs share the sandbox's one account key (one rate-limit subject):
            // these tests are about fan-out, not the vendor's budget.
            rate_limit_per_minute: 1_000_000,
            ..sandbox
        },
        history_days,
        extra_env: extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts")
}

async fn connect_with_key(stack: &Stack, org: &str) {
    let caller = Caller::member(&org_id(org), &format!("admin@{org}.example"))
        .admin_for(seatscope_core::domain::audit::Action::ApiKey)
        .expect("roles are off");
    connect::connect_api_key(
        &stack.deps,
        &caller,
        "pagerduty",
        API_TOKEN.to_string().into(),
    )
    .await
    .unwrap_or_else(|e| panic!("connecting {org}: {e}"));
}

/// Seat id → (last active day, active days in 30), as stored.
async fn seat_activity(stack: &Stack, org: &str) -> BTreeMap<String, (Value, Value)> {
    items_with_prefix(stack, &app_pk(org), "SEAT#")
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s["seat_id"].as_str().unwrap().to_string(),
                (s["last_activity_on"].clone(), s["active_days_30"].clone()),
            )
        })
        .collect()
}

/// 8 users × 24 days in one-day windows, fetched one at a time, with no deadline
/// margin: a short deadline pauses the sync mid-way. `went_quiet_days_ago` as in
/// [`PagerDutyConfig`].
async fn one_day_windows(went_quiet_days_ago: Vec<u32>) -> Stack {
    stack(
        PagerDutyConfig {
            users: 8,
            days: 24,
            events_per_day: 80,
            went_quiet_days_ago,
            ..PagerDutyConfig::default()
        },
        30,
        &[
            ("SYNC_WINDOW_DAYS", "1"),
            ("SYNC_DEADLINE_MARGIN_SECONDS", "0"),
            // One window at a time: every invocation writes something before its
            // short deadline even on a loaded machine (a continuation that writes
            // nothing fails on purpose, so it cannot loop).
            ("SYNC_PARALLEL_WINDOWS", "1"),
        ],
    )
    .await
}

fn app_pk(org: &str) -> String {
    format!("ORG#{org}#APP#pagerduty")
}

async fn rollups(stack: &Stack, org: &str) -> Vec<Value> {
    items_with_prefix(stack, &app_pk(org), "ROLLUP#")
        .await
        .unwrap()
        .into_iter()
        .map(|mut v| {
            let o = v.as_object_mut().unwrap();
            o.remove("as_of");
            o.remove("pk");
            v
        })
        .collect()
}

async fn connection(stack: &Stack, org: &str) -> Value {
    let item = stack
        .dynamodb
        .get_item()
        .table_name(&stack.table_name)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("ORG#{org}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("CONN#pagerduty".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the connection exists");
    serde_dynamo::from_item(item).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_connections_in_one_tick_are_each_synced_once_even_with_more_ticks_in_flight() {
    let stack = stack(
        PagerDutyConfig {
            users: 3,
            days: 2,
            events_per_day: 8,
            ..PagerDutyConfig::default()
        },
        3,
        &[],
    )
    .await;
    let truth = truth_counts(&stack.sandbox.ground_truth().daily);
    let orgs: Vec<String> = (0..200).map(|i| format!("fan{i:03}")).collect();
    let started = Instant::now();
    let mut connecting = tokio::task::JoinSet::new();
    for chunk in orgs.chunks(25) {
        let chunk = chunk.to_vec();
        let deps = stack.deps.clone();
        connecting.spawn(async move {
            for org in chunk {
                let caller = Caller::member(&org_id(&org), &format!("admin@{org}.example"))
                    .admin_for(seatscope_core::domain::audit::Action::ApiKey)
                    .expect("roles are off");
                connect::connect_api_key(&deps, &caller, "pagerduty", API_TOKEN.to_string().into())
                    .await
                    .unwrap_or_else(|e| panic!("connecting {org}: {e}"));
            }
        });
    }
    while let Some(done) = connecting.join_next().await {
        done.unwrap();
    }
    eprintln!(
        "200 connections in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The tick claims and enqueues all 200; a second tick before any worker ran finds
    // nothing due (claimed), so nothing is sent twice.
    let first = stack.enqueue_tick().await.unwrap();
    assert_eq!(
        (first.due, first.enqueued, first.failed),
        (200, 200, 0),
        "{first:?}"
    );
    let second = stack.enqueue_tick().await.unwrap();
    assert_eq!(second.enqueued, 0, "{second:?}");
    assert_eq!(stack.worker.depth().await.unwrap().0, 200);

    // Drain, with another tick fired while messages are in flight.
    let requests_before = stack.sandbox.api_requests();
    let started = Instant::now();
    let (drained, during) = tokio::join!(stack.drain_queue(), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stack.enqueue_tick().await
    });
    let drained = drained.unwrap();
    let during = during.unwrap();
    eprintln!(
        "drained in {:.1} s: {drained:?}; tick in flight: {during:?}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(during.enqueued, 0, "{during:?}");
    assert_eq!(
        (drained.synced, drained.skipped, drained.failed),
        (200, 0, 0),
        "{drained:?}"
    );
    // Per sync: /users, /license_allocations and /oncalls (one page each) and one
    // /log_entries window (3 days of history fit one 7-day window and one page): nobody
    // fetched twice.
    assert_eq!(stack.sandbox.api_requests() - requests_before, 200 * 4);
    assert_eq!(
        stack.worker.depth().await.unwrap(),
        (0, 0),
        "queue and DLQ empty"
    );

    for org in &orgs {
        let runs = items_with_prefix(&stack, &app_pk(org), "RUN#")
            .await
            .unwrap();
        assert_eq!(runs.len(), 1, "{org}: exactly one sync run");
        assert_eq!(runs[0]["status"], "succeeded", "{org}");
        let days = items_with_prefix(&stack, &app_pk(org), DAY_ITEMS)
            .await
            .unwrap();
        assert_eq!(stored_day_counts(&days), truth, "{org}");
    }
    // Nothing is due again until the interval has passed.
    let report = stack.tick().await.unwrap();
    assert_eq!(report["due"], 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_mid_sync_re_enqueues_the_rest_and_the_continuations_end_at_the_ground_truth() {
    let stack = one_day_windows(Vec::new()).await;
    let truth = stack.sandbox.ground_truth();
    connect_with_key(&stack, "paused").await;
    let requests_before = stack.sandbox.api_requests();
    assert_eq!(stack.enqueue_tick().await.unwrap().enqueued, 1);
    // Each invocation has 700 ms: a few one-day windows, then a continuation (400 ms left
    // a continuation no time for one window when other builds share the 2 cores).
    let report = stack
        .worker
        .drain_with_deadline(&stack.deps, Duration::from_millis(700))
        .await
        .unwrap();
    eprintln!("with a 700 ms deadline: {report:?}");
    assert!(
        report.continued >= 1,
        "the deadline hit mid-sync: {report:?}"
    );
    assert_eq!((report.synced, report.failed), (1, 0), "{report:?}");
    assert_eq!(stack.worker.depth().await.unwrap(), (0, 0));

    let days = items_with_prefix(&stack, &app_pk("paused"), DAY_ITEMS)
        .await
        .unwrap();
    assert_eq!(stored_day_counts(&days), truth_counts(&truth.daily));
    let runs = items_with_prefix(&stack, &app_pk("paused"), "RUN#")
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "the paused parts make one recorded run");
    // That run is the whole of its parts: every invocation, every event, every request.
    let run = &runs[0];
    let events: u64 = truth_counts(&truth.daily).values().sum();
    assert_eq!(
        run["parts"].as_u64(),
        Some(report.continued as u64 + 1),
        "{run}"
    );
    assert_eq!(
        run["summary"]["activity_events"].as_u64(),
        Some(events),
        "{run}"
    );
    // Every request the sandbox answered is counted; a part the deadline cut may also
    // count one it sent and dropped before the sandbox read it.
    let answered = stack.sandbox.api_requests() - requests_before;
    let counted = run["requests"]["requests"].as_u64().unwrap_or(0);
    let parts = run["parts"].as_u64().unwrap_or(0);
    assert!(
        (answered..=answered + parts).contains(&counted),
        "{counted} counted, {answered} answered, {parts} parts: {run}"
    );
    let (status, history) = get_json(&stack, "paused", "/api/connections/pagerduty/runs")
        .await
        .unwrap();
    assert_eq!(status, 200, "{history}");
    let listed = &history["runs"][0];
    assert_eq!(
        history["runs"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
    assert_eq!(listed["parts"], run["parts"], "{history}");
    assert_eq!(
        listed["activity_events"].as_u64(),
        Some(events),
        "{history}"
    );
    assert_eq!(listed["requests"], run["requests"]["requests"], "{history}");
    assert_eq!(listed["outcome"], "succeeded");
    assert_eq!(listed["started_at"], run["started_at"]);
    assert!(history["next_cursor"].is_null(), "{history}");

    // The rollups equal those of one uninterrupted sync of the same account.
    connect_with_key(&stack, "whole").await;
    let whole = stack.tick().await.unwrap();
    assert_eq!(whole["synced"], 1, "{whole}");
    assert_eq!(whole["continued"], 0, "{whole}");
    let paused = rollups(&stack, "paused").await;
    assert!(!paused.is_empty());
    assert_eq!(paused, rollups(&stack, "whole").await);
    let dates: Vec<String> = paused
        .iter()
        .map(|r| r["date"].as_str().unwrap().to_string())
        .collect();
    let expected = expected_actives(&truth, &dates);
    for r in &paused {
        let (dau, wau, mau) = expected[r["date"].as_str().unwrap()];
        assert_eq!(
            (r["dau"].as_u64(), r["wau"].as_u64(), r["mau"].as_u64()),
            (Some(dau as u64), Some(wau as u64), Some(mau as u64)),
            "{r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seats_last_activity_counts_the_days_every_part_of_a_paused_sync_wrote() {
    // Two users went quiet 20 and 15 days ago: their last day is written by an early
    // part of the sync, and the seats are written once, by the last part.
    let stack = one_day_windows(vec![20, 15]).await;
    let truth = stack.sandbox.ground_truth();
    connect_with_key(&stack, "quiet").await;
    assert_eq!(stack.enqueue_tick().await.unwrap().enqueued, 1);
    let report = stack
        .worker
        .drain_with_deadline(&stack.deps, Duration::from_millis(700))
        .await
        .unwrap();
    assert!(
        report.continued >= 1,
        "the deadline hit mid-sync: {report:?}"
    );
    assert_eq!((report.synced, report.failed), (1, 0), "{report:?}");

    let mut last_day: BTreeMap<String, String> = BTreeMap::new();
    for d in truth.daily.iter().filter(|d| d.count > 0) {
        let e = last_day.entry(d.user_id.clone()).or_default();
        if *e < d.date {
            *e = d.date.clone();
        }
    }
    let newest = last_day.values().max().unwrap().clone();
    assert!(
        last_day.values().filter(|d| **d < newest).count() >= 2,
        "the data set has the two quiet users: {last_day:?}"
    );
    let stored_last: BTreeMap<String, String> = seat_activity(&stack, "quiet")
        .await
        .into_iter()
        .filter_map(|(seat, (last, _))| last.as_str().map(|l| (seat, l.to_string())))
        .collect();
    assert_eq!(stored_last, last_day);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_sync_is_taken_over_after_its_lease_and_resumes_from_the_checkpoint() {
    let stack = stack(
        PagerDutyConfig {
            users: 20,
            days: 60,
            events_per_day: 300,
            ..PagerDutyConfig::default()
        },
        61,
        &[("SYNC_WINDOW_DAYS", "1")],
    )
    .await;
    let truth = stack.sandbox.ground_truth();
    connect_with_key(&stack, "killed").await;

    // The worker in its own process, with a 2 s lease.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sync-one"))
        .args(["killed", "pagerduty"])
        .envs(&stack.env)
        .env("SYNC_LEASE_SECONDS", "2")
        .env("SEATSCOPE_LOCAL_DYNAMODB", &stack.aws.dynamodb.endpoint)
        .env("SEATSCOPE_LOCAL_MOTO", &stack.aws.moto.endpoint)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting sync-one");
    // SIGKILL once about 20 one-day activity windows are checkpointed.
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let mut first: Option<time::OffsetDateTime> = None;
    let checkpoint = loop {
        let conn = connection(&stack, "killed").await;
        if let Some(until) = conn["activity_synced_until"].as_str() {
            let at = time::OffsetDateTime::parse(until, rfc3339).unwrap();
            let first = *first.get_or_insert(at);
            if at - first >= time::Duration::days(20) {
                break until.to_string();
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("sync-one ended before its first checkpoint: {status}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "killed, not finished: {status}");
    let conn = connection(&stack, "killed").await;
    assert!(conn["last_sync_at"].is_null(), "the run did not finish");
    assert!(
        conn["lease_owner"].is_string(),
        "the dead run's lease is left behind"
    );
    eprintln!(
        "killed at checkpoint {checkpoint}, stored {}",
        conn["activity_synced_until"]
    );

    // While the lease holds, nobody takes over.
    let report = stack.tick().await.unwrap();
    assert_eq!(report["skipped"], 1, "{report}");
    // After it expires (whole epoch seconds: > 2 s), the next run resumes from the
    // checkpoint.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    stack
        .deps
        .store
        .make_due(
            &org_id("killed"),
            "pagerduty",
            stack.now(),
            &tool_entry(&stack, "killed", Action::SyncNow),
        )
        .await
        .unwrap();
    let before = stack.sandbox.api_requests();
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    let resumed_requests = stack.sandbox.api_requests() - before;

    // A whole sync of the same account, for comparison.
    connect_with_key(&stack, "whole").await;
    let before = stack.sandbox.api_requests();
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    let whole_requests = stack.sandbox.api_requests() - before;
    eprintln!("resumed run: {resumed_requests} API requests; whole sync: {whole_requests}");
    assert!(
        resumed_requests * 10 < whole_requests * 8,
        "the resumed run did not start from the horizon ({resumed_requests} vs {whole_requests})"
    );

    // 0 lost, 0 duplicated.
    let days = items_with_prefix(&stack, &app_pk("killed"), DAY_ITEMS)
        .await
        .unwrap();
    assert_eq!(stored_day_counts(&days), truth_counts(&truth.daily));
    assert_eq!(
        rollups(&stack, "killed").await,
        rollups(&stack, "whole").await
    );
    // The seats' last activity counts the days the killed run wrote too.
    assert_eq!(
        seat_activity(&stack, "killed").await,
        seat_activity(&stack, "whole").await
    );
    let runs = items_with_prefix(&stack, &app_pk("killed"), "RUN#")
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "only the run that finished is recorded");
}
