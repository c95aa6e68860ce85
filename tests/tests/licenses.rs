//! PagerDuty license types end to end, against DynamoDB Local, moto and the PagerDuty
//! sandbox over real HTTP: a sync reads `/license_allocations` (paged: the account has
//! more users than a page holds) and every seat carries its user's license — in
//! `GET /api/apps/pagerduty/seats` and in `seats.csv` — exactly as the sandbox's ground
//! truth says, with both license types present. A token that may not read licenses
//! (403) still syncs every seat, without a license.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::PagerDutyConfig;

async fn synced(config: PagerDutyConfig, org: &str) -> Stack {
    let stack = Stack::start(StackOptions {
        sandbox: config,
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    connect(&stack, org).await.expect("connect");
    let report = stack.tick().await.expect("a tick");
    assert_eq!(report["synced"], 1, "{report}");
    stack
}

fn config() -> PagerDutyConfig {
    PagerDutyConfig {
        // More than one page of 100 allocations.
        users: 130,
        days: 7,
        events_per_day: 20,
        end_date: seatscope_sandbox::clock::yesterday(),
        ..PagerDutyConfig::default()
    }
}

/// Seat id → license, as the seats API shows them.
async fn shown_licenses(stack: &Stack, org: &str) -> BTreeMap<String, Option<String>> {
    let (status, seats) = get_json(stack, org, "/api/apps/pagerduty/seats")
        .await
        .expect("the seats");
    assert_eq!(status, 200, "{seats}");
    seats["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().expect("an id").to_string(),
                s["license"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Email → license, as `seats.csv` shows them (an empty cell is no license).
async fn exported_licenses(stack: &Stack, org: &str) -> BTreeMap<String, Option<String>> {
    let resp = http()
        .get(format!(
            "{}/api/apps/pagerduty/export/seats.csv",
            stack.api_url()
        ))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")))
        .send()
        .await
        .expect("the local API answers");
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().await.expect("a body");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let head = reader.headers().expect("a header").clone();
    let column = |name: &str| {
        head.iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("a {name} column in {head:?}"))
    };
    let (email, license) = (column("email"), column("license"));
    reader
        .records()
        .map(|r| {
            let r = r.expect("a record");
            let cell = r[license].to_string();
            (r[email].to_string(), Some(cell).filter(|c| !c.is_empty()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seat_carries_its_users_license_in_the_list_and_the_csv() {
    let org = "licenses";
    let stack = synced(config(), org).await;
    let truth = stack.sandbox.ground_truth();

    let want: BTreeMap<String, Option<String>> = truth
        .seats
        .iter()
        .map(|s| (s.id.clone(), s.license.clone()))
        .collect();
    let kinds: BTreeSet<&str> = want.values().flatten().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["Business (Full User)", "Business (Stakeholder)"]),
        "the sandbox account holds both license types"
    );
    assert!(
        want.values().all(Option::is_some),
        "every user has a license"
    );
    assert_eq!(shown_licenses(&stack, org).await, want);

    let want_csv: BTreeMap<String, Option<String>> = truth
        .seats
        .iter()
        .map(|s| (s.email.clone(), s.license.clone()))
        .collect();
    assert_eq!(exported_licenses(&stack, org).await, want_csv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_may_not_read_licenses_still_syncs_every_seat_without_one() {
    let org = "nolicenses";
    let stack = synced(
        PagerDutyConfig {
            licenses_readable: false,
            ..config()
        },
        org,
    )
    .await;
    let truth = stack.sandbox.ground_truth();
    let shown = shown_licenses(&stack, org).await;
    let ids: BTreeSet<&str> = shown.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = truth.seats.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, want, "every seat is synced");
    assert!(
        shown.values().all(Option::is_none),
        "no license where none could be read"
    );
    let (_, overview) = get_json(&stack, org, "/api/overview")
        .await
        .expect("overview");
    assert_eq!(
        card(&overview, "pagerduty")["connection"]["status"],
        "connected"
    );
}
