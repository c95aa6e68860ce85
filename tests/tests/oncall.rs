//! The on-call guardrail end to end, against DynamoDB Local, moto and the PagerDuty
//! sandbox over real HTTP: a sync reads `/oncalls`; every seat on call (now, or on a
//! schedule or escalation policy in the window) carries where, is never inactive, and
//! is "on call, quiet" exactly when it has no activity in the threshold; the inactive
//! list, both CSVs, the summary's inactive count and the potential savings leave them
//! out. The sandbox builds the premise in (responders on its rotations who never act),
//! so it holds at any date: the test re-runs itself at the pinned days.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::PagerDutyConfig;
use serde_json::{json, Value};
use time::{Date, Duration};

fn day(s: &str) -> Date {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).expect("a date")
}

/// Problems of `instance` against openapi.json's component schema `name`.
fn problems(name: &str, instance: &Value) -> Vec<String> {
    let doc: Value = serde_json::from_str(dashboard_api::OPENAPI_JSON).expect("openapi.json");
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "$ref": format!("#/components/schemas/{name}"),
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .expect("the schema compiles");
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

async fn text(stack: &Stack, org: &str, path: &str) -> (u16, String) {
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

fn csv_rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let head: Vec<String> = r
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_string)
        .collect();
    r.records()
        .map(|rec| {
            head.iter()
                .cloned()
                .zip(rec.expect("a record").iter().map(str::to_string))
                .collect()
        })
        .collect()
}

#[test]
fn the_guardrail_holds_at_a_month_end_a_leap_day_and_new_year() {
    rerun_at_days(
        &["seats_on_call_are_never_reclaimable_and_quiet_ones_say_so"],
        &PINNED_DAYS,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_on_call_are_never_reclaimable_and_quiet_ones_say_so() {
    let today = seatscope_sandbox::clock::today();
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 30,
            days: 60,
            events_per_day: 30,
            end_date: today.previous_day().unwrap(),
            // A seat idle for 40 days, off call: it stays reclaimable.
            went_quiet_days_ago: vec![40],
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "oncall";
    let truth = stack.sandbox.ground_truth();
    connect(&stack, org).await.expect("connect");
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");

    // The truth: who is on call and where, who is idle for the 30-day threshold.
    let on_call: BTreeMap<&str, (Option<&str>, &str)> = truth
        .on_call
        .iter()
        .map(|o| {
            (
                o.user_id.as_str(),
                (o.schedule.as_deref(), o.escalation_policy.as_str()),
            )
        })
        .collect();
    let mut last_active: BTreeMap<&str, Date> = BTreeMap::new();
    for d in truth.daily.iter().filter(|d| d.count > 0) {
        let e = last_active
            .entry(d.user_id.as_str())
            .or_insert(day(&d.date));
        *e = (*e).max(day(&d.date));
    }
    let idle = |id: &str, n: i64| {
        last_active
            .get(id)
            .is_none_or(|d| *d <= today - Duration::days(n))
    };
    let quiet_on_call: BTreeSet<&str> = on_call.keys().copied().filter(|id| idle(id, 30)).collect();
    let reclaimable: BTreeSet<&str> = truth
        .seats
        .iter()
        .map(|s| s.id.as_str())
        .filter(|id| idle(id, 30) && !on_call.contains_key(id))
        .collect();
    assert!(
        !quiet_on_call.is_empty() && !reclaimable.is_empty(),
        "the data set must have quiet seats on call and idle seats off call ({} / {})",
        quiet_on_call.len(),
        reclaimable.len()
    );

    // The seat list: on call exactly where the truth says, with the schedule's name
    // (or the escalation policy's for a direct target); never inactive; quiet = idle.
    let (status, seats) = get_json(&stack, org, "/api/apps/pagerduty/seats")
        .await
        .unwrap();
    assert_eq!(status, 200, "{seats}");
    let p = problems("SeatsList", &seats);
    assert!(
        p.is_empty(),
        "SeatsList does not match openapi.json: {p:#?}"
    );
    let mut shown_quiet = BTreeSet::new();
    let mut now = 0;
    for s in seats["seats"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        match on_call.get(id) {
            None => assert!(s["on_call"].is_null(), "{id} is not on call: {s}"),
            Some((schedule, policy)) => {
                let o = &s["on_call"];
                assert_eq!(o["schedule"].as_str(), *schedule, "{id}");
                assert_eq!(o["escalation_policy"], *policy, "{id}");
                assert_eq!(s["inactive"], false, "{id} is on call: never reclaimable");
                if o["quiet"] == true {
                    shown_quiet.insert(id.to_string());
                }
                if o["now"] == true {
                    now += 1;
                }
            }
        }
        assert_eq!(s["inactive"], reclaimable.contains(id), "{id}");
    }
    let want_quiet: BTreeSet<String> = quiet_on_call.iter().map(|s| s.to_string()).collect();
    assert_eq!(shown_quiet, want_quiet, "on call, quiet = the truth's");
    // At any instant one member of each staffed rotation is on call, and the direct target.
    let rotations: BTreeSet<&str> = on_call.values().filter_map(|(s, _)| *s).collect();
    assert_eq!(now, rotations.len() + 1, "on call now");
    assert_eq!(seats["inactive"], reclaimable.len());

    // The inactive list and its CSV: exactly the reclaimable seats, no seat on call.
    let (_, inactive) = get_json(&stack, org, "/api/apps/pagerduty/seats?only=inactive")
        .await
        .unwrap();
    let listed: BTreeSet<&str> = inactive["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, reclaimable);
    let email_of: BTreeMap<&str, &str> = truth
        .seats
        .iter()
        .map(|s| (s.id.as_str(), s.email.as_str()))
        .collect();
    let (status, body) = text(&stack, org, "/api/apps/pagerduty/export/inactive-seats.csv").await;
    assert_eq!(status, 200, "{body}");
    let rows: BTreeSet<String> = csv_rows(&body)
        .into_iter()
        .map(|r| r["email"].clone())
        .collect();
    let want: BTreeSet<String> = reclaimable
        .iter()
        .map(|id| email_of[id].to_string())
        .collect();
    assert_eq!(rows, want);

    // The seats CSV says "on call, quiet" and names the schedule.
    let (_, body) = text(&stack, org, "/api/apps/pagerduty/export/seats.csv").await;
    for r in csv_rows(&body) {
        let id = truth
            .seats
            .iter()
            .find(|s| s.email == r["email"])
            .map(|s| s.id.as_str())
            .expect("a seat of the truth");
        let (label, schedule) = match on_call.get(id) {
            None => ("", ""),
            Some((schedule, policy)) => (
                if quiet_on_call.contains(id) {
                    "on call, quiet"
                } else {
                    "on call"
                },
                schedule.unwrap_or(policy),
            ),
        };
        assert_eq!(
            (r["on_call"].as_str(), r["on_call_schedule"].as_str()),
            (label, schedule),
            "{id}"
        );
    }

    // The summary: the inactive count and the potential savings leave them out.
    let settings =
        json!({"inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": 20});
    let resp = http()
        .put(format!("{}/api/apps/pagerduty/settings", stack.api_url()))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")))
        .json(&settings)
        .send()
        .await
        .expect("the local API answers");
    assert_eq!(resp.status().as_u16(), 200);
    let (_, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    let pd = card(&overview, "pagerduty");
    assert_eq!(pd["inactive_seats"], reclaimable.len(), "{pd}");
    assert_eq!(
        pd["potential_savings"].as_f64(),
        Some(20.0 * reclaimable.len() as f64)
    );
    assert_eq!(overview["totals"]["inactive_seats"], reclaimable.len());
}
