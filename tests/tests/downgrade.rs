//! The downgrade hint end to end (issue 15, part 2), against DynamoDB Local, moto and
//! the PagerDuty sandbox over real HTTP: a Full User seat that is active but took no
//! responder action (acknowledge, resolve, reassign, escalate) in the app's threshold,
//! and is on no schedule or escalation policy, "could be a Stakeholder seat", with the
//! difference of the two license prices. The sandbox's data set has such users built
//! in (`notes_only_full_users`); the expected seats are computed from its ground truth.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::PagerDutyConfig;
use serde_json::json;
use time::Duration;

const RESPONDER: [&str; 4] = ["acknowledge", "resolve", "reassign", "escalate"];

#[test]
fn the_downgrade_hint_holds_at_a_month_end_a_leap_day_and_new_year() {
    rerun_at_days(
        &["a_full_seat_that_only_writes_notes_and_is_on_no_schedule_could_be_a_stakeholder"],
        &PINNED_DAYS,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_seat_that_only_writes_notes_and_is_on_no_schedule_could_be_a_stakeholder() {
    let today = seatscope_sandbox::clock::today();
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 24,
            days: 45,
            events_per_day: 40,
            notes_only_full_users: 2,
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "downgrade";
    connect(&stack, org).await.expect("connect PagerDuty");
    assert_eq!(stack.tick().await.unwrap()["synced"], 1);
    let settings = json!({
        "inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": 20.0,
        "license_prices": {"Business (Full User)": 41.0, "Business (Stakeholder)": 10.0},
        "billing_period": "monthly",
        "renewal_date": (today + Duration::days(20)).to_string()
    });
    let resp = http()
        .put(format!("{}/api/apps/pagerduty/settings", stack.api_url()))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")))
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // The truth: each user's last responder action.
    let truth = stack.sandbox.ground_truth();
    let mut last_response: BTreeMap<String, String> = BTreeMap::new();
    for d in truth
        .daily
        .iter()
        .filter(|d| d.count > 0 && RESPONDER.contains(&d.feature.as_str()))
    {
        let e = last_response.entry(d.user_id.clone()).or_default();
        if *e < d.date {
            *e = d.date.clone();
        }
    }
    let threshold_start = (today - Duration::days(30)).to_string();
    let (status, list) = get_json(&stack, org, "/api/apps/pagerduty/seats")
        .await
        .unwrap();
    assert_eq!(status, 200, "{list}");
    let seats = list["seats"].as_array().unwrap();
    // Full, current, active in the threshold (so not reclaimable), not on call, not
    // exempt or in grace, and no responder action after the threshold's start.
    let want: BTreeSet<String> = seats
        .iter()
        .filter(|s| {
            s["license"]
                .as_str()
                .is_some_and(|l| l.contains("Full User"))
                && s["status"] == "active"
                && s["inactive"] == false
                && s["on_call"].is_null()
                && s["exempt"] == false
                && s["in_grace"] == false
                && last_response
                    .get(s["id"].as_str().unwrap())
                    .is_none_or(|d| *d <= threshold_start)
        })
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        want.len() >= 2,
        "the data set has its two notes-only full users: {want:?}"
    );
    let got: BTreeSet<String> = seats
        .iter()
        .filter(|s| !s["downgrade"].is_null())
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    for s in seats.iter().filter(|s| !s["downgrade"].is_null()) {
        assert_eq!(
            s["downgrade"],
            json!({"to": "Business (Stakeholder)", "monthly_saving": 31.0}),
            "{s}"
        );
    }
    // Seats on call are never hinted, whatever their activity.
    assert!(seats
        .iter()
        .filter(|s| !s["on_call"].is_null())
        .all(|s| s["downgrade"].is_null()));

    // The summary counts them, and the renewal says what moving them saves.
    let n = want.len() as u64;
    let (status, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    assert_eq!(status, 200, "{overview}");
    let app = overview["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["provider"] == "pagerduty")
        .unwrap();
    assert_eq!(app["downgradable_seats"].as_u64(), Some(n), "{app}");
    assert_eq!(app["downgrade_savings"].as_f64(), Some(31.0 * n as f64));
    let renewal = overview["renewals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["provider"] == "pagerduty")
        .expect("the renewal in 20 days is listed");
    assert_eq!(renewal["downgradable_seats"].as_u64(), Some(n));
    assert_eq!(
        renewal["saving_if_downgraded"].as_f64(),
        Some(31.0 * n as f64)
    );

    // The seats CSV carries the same hint.
    let csv = http()
        .get(format!(
            "{}/api/apps/pagerduty/export/seats.csv",
            stack.api_url()
        ))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (email, to, saving) = (
        column("email"),
        column("downgrade_to"),
        column("downgrade_monthly_saving"),
    );
    let hinted_emails: BTreeSet<String> = seats
        .iter()
        .filter(|s| !s["downgrade"].is_null())
        .map(|s| s["email"].as_str().unwrap().to_string())
        .collect();
    let mut in_csv = BTreeSet::new();
    for row in rows.records() {
        let row = row.unwrap();
        if !row[to].is_empty() {
            assert_eq!((&row[to], &row[saving]), ("Business (Stakeholder)", "31"));
            in_csv.insert(row[email].to_string());
        }
    }
    assert_eq!(in_csv, hinted_emails);
}
