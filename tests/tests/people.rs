//! People across apps end to end (issue 15, part 4), against DynamoDB Local, moto and
//! the PagerDuty, PandaDoc and SendGrid sandboxes over real HTTP. The sandboxes give
//! some users the same address (`shared_emails`, in other letter cases too), so people
//! hold seats in two or three apps; after one sync `GET /api/people` and
//! `GET /api/people/export.csv` must equal what the sandboxes' ground truth implies:
//! who the people are (emails trimmed and lower-cased), the apps each holds, each seat's
//! license and last activity, the unmatched seats per app, both filters ("inactive in
//! every app they hold"; "holds N apps, active in none"), the search, and paging that
//! covers every row exactly once. Each seat's inactive flag is the seat list's own
//! (proven equal to the sandboxes' activity by the providers and dashboard tests). The
//! org's stored people snapshot: written by the sync and by each settings change, what
//! a fresh Lambda instance answers from (identically to a rebuild), never used once of
//! another version. The test holds at any date (it re-runs itself at the pinned days).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use seatscope_core::domain::{Caller, OrgId};
use seatscope_core::ops::queries::people::{
    forget_joined, people_with_source, PeopleFilter, PeopleQuery, Source,
};
use seatscope_core::store::PeopleSnapshot;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::pandadoc::PandaDocConfig;
use seatscope_sandbox::sendgrid::{SandboxKey, SendGridConfig};
use seatscope_sandbox::PagerDutyConfig;
use serde_json::{json, Value};

const APPS: [&str; 3] = ["pagerduty", "pandadoc", "sendgrid"];

/// The shared people: (PagerDuty index, PandaDoc index, SendGrid index, the address
/// each vendor reports). Index 0 is each account's owner.
#[allow(clippy::type_complexity)]
const SHARED: [(Option<u32>, Option<u32>, Option<u32>, [&str; 3]); 6] = [
    (
        Some(2),
        Some(2),
        Some(1),
        [
            "ada.shared@people.example",
            "Ada.Shared@People.example",
            "ADA.SHARED@PEOPLE.EXAMPLE",
        ],
    ),
    (
        Some(3),
        Some(3),
        None,
        ["bo.shared@people.example", "bo.shared@people.example", ""],
    ),
    (
        Some(4),
        None,
        Some(2),
        ["cy.shared@people.example", "", "Cy.Shared@people.example"],
    ),
    (
        None,
        Some(4),
        Some(3),
        ["", "di.shared@people.example", "di.shared@people.example"],
    ),
    (
        Some(5),
        Some(5),
        Some(4),
        [
            "ed.shared@people.example",
            "ed.shared@people.example",
            "ed.shared@people.example",
        ],
    ),
    (
        Some(20),
        Some(20),
        None,
        ["fay.shared@people.example", "FAY.shared@people.example", ""],
    ),
];

fn shared(app: usize) -> Vec<(u32, String)> {
    SHARED
        .iter()
        .filter_map(|s| {
            let i = [s.0, s.1, s.2][app]?;
            Some((i, s.3[app].to_string()))
        })
        .collect()
}

fn options() -> StackOptions {
    StackOptions {
        sandbox: PagerDutyConfig {
            users: 25,
            days: 45,
            events_per_day: 60,
            shared_emails: shared(0),
            ..PagerDutyConfig::default()
        },
        pandadoc: PandaDocConfig {
            users: 25,
            days: 45,
            events_per_day: 6,
            shared_emails: shared(1),
            ..PandaDocConfig::default()
        },
        sendgrid: SendGridConfig {
            teammates: 8,
            pending_invites: 1,
            days: 10,
            shared_emails: shared(2),
            ..SendGridConfig::default()
        },
        ..StackOptions::default()
    }
}

/// What one seat should show, from the seat list (inactive) and the settings (price).
#[derive(Debug, Clone, PartialEq)]
struct Want {
    provider: String,
    license: Option<String>,
    last: Option<String>,
    inactive: Option<bool>,
    active: Option<bool>,
    cost: Option<f64>,
}

/// Every person the pages of `query` list, following next_cursor; checks each page.
async fn all_pages(stack: &Stack, org: &str, query: &str, limit: usize) -> (Vec<Value>, Value) {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    let mut first = Value::Null;
    for _ in 0..1000 {
        let mut path = format!("/api/people?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get_json(stack, org, &path).await.expect("people");
        assert_eq!(status, 200, "{page}");
        let people = page["people"].as_array().expect("people").clone();
        assert!(people.len() <= limit);
        rows.extend(people);
        if first.is_null() {
            first = page.clone();
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (rows, first),
        }
    }
    panic!("paging did not end");
}

fn emails(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["email"].as_str().expect("email").to_string())
        .collect()
}

async fn csv_emails(
    stack: &Stack,
    org: &str,
    query: &str,
) -> (Vec<String>, Vec<csv::StringRecord>, csv::StringRecord) {
    let resp = http()
        .get(format!("{}/api/people/export.csv?{query}", stack.api_url()))
        .bearer_auth(stack.token(org, &format!("admin@{org}.example")))
        .send()
        .await
        .expect("the CSV");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let body = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header = reader.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    (
        records.iter().map(|r| r[0].to_string()).collect(),
        records,
        header,
    )
}

/// Everyone, as a fresh Lambda instance answers (the process's kept list forgotten
/// first): the list without `generated_at`, and where it came from.
async fn cold_people(stack: &Stack, org: &str) -> (Value, Source) {
    forget_joined();
    let caller = Caller::member(&OrgId::parse(org).unwrap(), &format!("admin@{org}.example"));
    let query = PeopleQuery::parse(PeopleFilter::default(), None, Some("500")).unwrap();
    let (list, source) = people_with_source(&stack.deps.store, &stack.deps.config, &caller, &query)
        .await
        .expect("the people list");
    let mut list = serde_json::to_value(list).unwrap();
    list.as_object_mut().unwrap().remove("generated_at");
    (list, source)
}

#[test]
fn people_hold_at_a_month_end_a_leap_day_and_new_year() {
    rerun_at_days(
        &["seats_join_by_email_across_three_apps_with_filters_paging_and_csv"],
        &PINNED_DAYS,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_join_by_email_across_three_apps_with_filters_paging_and_csv() {
    let stack = Stack::start(options())
        .await
        .expect("the local stack starts");
    let org = "people";
    connect(&stack, org).await.expect("connect PagerDuty");
    connect_to(&stack, org, "pandadoc")
        .await
        .expect("connect PandaDoc");
    let (status, body) = send_as_admin(
        &stack,
        org,
        reqwest::Method::POST,
        "/api/connections/sendgrid/api-key",
        Some(json!({ "api_key": SandboxKey::full().key })),
    )
    .await;
    assert!((200..300).contains(&status), "{status}: {body}");
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 3, "{report}");

    // Each app's summary refresh stored the people snapshot (three at once: the last
    // one stored is of the current version), and a fresh instance answers from it.
    let org_id = OrgId::parse(org).unwrap();
    let store = &stack.deps.store;
    let after_sync = store
        .people_snapshot(&org_id, 1)
        .await
        .unwrap()
        .expect("the sync stored a people snapshot");
    let (synced_list, source) = cold_people(&stack, org).await;
    assert_eq!(source, Source::Stored);
    assert!(
        synced_list["people_total"].as_u64().unwrap() > 10,
        "{synced_list}"
    );

    // Prices: PagerDuty one price; PandaDoc a price for Full, the seat price for the rest.
    let pd = json!({"inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": 10.0});
    let pandadoc = json!({"inactive_days": 60, "grace_days": 14, "exempt_seats": [], "seat_price": 5.0,
        "license_prices": {"Full": 49.0}});
    for (app, settings) in [("pagerduty", pd), ("pandadoc", pandadoc)] {
        let (status, body) = send_as_admin(
            &stack,
            org,
            reqwest::Method::PUT,
            &format!("/api/apps/{app}/settings"),
            Some(settings),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let price = |app: &str, license: Option<&str>| -> Option<f64> {
        match app {
            "pagerduty" => Some(10.0),
            "pandadoc" => Some(if license == Some("Full") { 49.0 } else { 5.0 }),
            _ => None,
        }
    };
    let threshold = |app: &str| if app == "pandadoc" { 60 } else { 30 };

    // Each settings change stored a new snapshot: a fresh instance answers from it,
    // exactly as a rebuild does, which is written back.
    let (stored, source) = cold_people(&stack, org).await;
    assert_eq!(
        source,
        Source::Stored,
        "the settings change stored the snapshot"
    );
    assert_ne!(
        stored, synced_list,
        "the premise: the prices change the list"
    );
    let current = store.people_snapshot(&org_id, 1).await.unwrap().unwrap();
    assert_ne!(current.version, after_sync.version);
    store.delete_people_snapshot(&org_id).await.unwrap();
    assert!(store.people_snapshot(&org_id, 4).await.unwrap().is_none());
    let (rebuilt, source) = cold_people(&stack, org).await;
    assert_eq!(source, Source::Rebuilt);
    assert_eq!(rebuilt, stored);
    let (again, source) = cold_people(&stack, org).await;
    assert_eq!((source, &again), (Source::Stored, &stored), "written back");
    // A snapshot of another version (the sync's, as if its write had landed last) is
    // not used: rebuilt, and the current one written back.
    let stale = PeopleSnapshot {
        version: after_sync.version.clone(),
        built_at: after_sync.built_at.clone(),
        bytes: after_sync.bytes().unwrap(),
    };
    store.put_people_snapshot(&org_id, &stale).await.unwrap();
    let (fresh, source) = cold_people(&stack, org).await;
    assert_eq!((source, &fresh), (Source::Rebuilt, &stored));
    let (again, source) = cold_people(&stack, org).await;
    assert_eq!((source, &again), (Source::Stored, &stored));

    let (_, config) = get_json(&stack, org, "/api/config").await.unwrap();
    let today = time::Date::parse(
        config["today"].as_str().unwrap(),
        &time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap();

    // The truth: every seat the sandboxes report, by normalized email.
    let truth_emails: Vec<Vec<String>> = vec![
        stack
            .sandbox
            .ground_truth()
            .seats
            .iter()
            .map(|s| s.email.clone())
            .collect(),
        stack
            .pandadoc
            .ground_truth()
            .seats
            .iter()
            .map(|s| s.email.clone())
            .collect(),
        stack
            .sendgrid
            .ground_truth()
            .seats
            .iter()
            .map(|s| s.email.clone())
            .collect(),
    ];
    let mut want: BTreeMap<String, Vec<Want>> = BTreeMap::new();
    let mut unmatched = [0usize; 3];
    for (a, app) in APPS.iter().enumerate() {
        let (status, list) = get_json(&stack, org, &format!("/api/apps/{app}/seats"))
            .await
            .unwrap();
        assert_eq!(status, 200, "{list}");
        let seats = list["seats"].as_array().unwrap();
        assert_eq!(seats.len(), truth_emails[a].len(), "{app}");
        let listed: BTreeSet<&str> = seats.iter().map(|s| s["email"].as_str().unwrap()).collect();
        let truth: BTreeSet<&str> = truth_emails[a].iter().map(String::as_str).collect();
        assert_eq!(listed, truth, "{app}");
        for s in seats {
            let email = s["email"].as_str().unwrap().trim().to_lowercase();
            if email.is_empty() {
                unmatched[a] += 1;
                continue;
            }
            let last = s["last_activity_on"].as_str().map(str::to_string);
            let per_seat = *app != "sendgrid";
            let active = per_seat.then(|| {
                last.as_deref().is_some_and(|d| {
                    let d = time::Date::parse(
                        d,
                        &time::macros::format_description!("[year]-[month]-[day]"),
                    )
                    .unwrap();
                    d > today - time::Duration::days(threshold(app))
                })
            });
            let license = s["license"].as_str().map(str::to_string);
            want.entry(email).or_default().push(Want {
                provider: app.to_string(),
                cost: price(app, license.as_deref()),
                license,
                last,
                inactive: s["inactive"].as_bool(),
                active,
            });
        }
    }
    // The premise: people in two and in three apps, whatever the letter case.
    let held = |w: &Vec<Want>| {
        w.iter()
            .map(|s| s.provider.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    };
    assert_eq!(
        want.values().filter(|w| held(w) == 3).count(),
        2,
        "ada and ed"
    );
    assert!(want.values().filter(|w| held(w) == 2).count() >= 4);

    // Every page, 7 at a time: each person exactly once, in email order.
    let (rows, first) = all_pages(&stack, org, "", 7).await;
    assert_eq!(emails(&rows), want.keys().cloned().collect::<Vec<_>>());
    assert_eq!(first["people_total"], want.len());
    assert_eq!(first["total"], want.len());
    assert!(first["as_of"].is_string());
    for def in [
        "person",
        "inactive_everywhere",
        "active_in_none",
        "monthly_cost",
        "unmatched_seats",
    ] {
        assert!(first["definitions"][def].is_string(), "{def}");
    }
    let apps = first["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 3);
    for (a, app) in APPS.iter().enumerate() {
        let view = apps.iter().find(|v| v["provider"] == *app).unwrap();
        assert_eq!(view["unmatched_seats"], unmatched[a], "{app}");
        assert_eq!(view["seats"], truth_emails[a].len(), "{app}");
        assert!(view["computed_at"].is_string());
    }
    for row in &rows {
        let email = row["email"].as_str().unwrap();
        let w = &want[email];
        assert_eq!(row["apps_held"], held(w), "{email}");
        let got: Vec<Want> = row["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Want {
                provider: s["provider"].as_str().unwrap().into(),
                license: s["license"].as_str().map(str::to_string),
                last: s["last_activity_on"].as_str().map(str::to_string),
                inactive: s["inactive"].as_bool(),
                active: s["active"].as_bool(),
                cost: s["monthly_cost"].as_f64(),
            })
            .collect();
        assert_eq!(&got, w, "{email}");
        let cost: Option<f64> = w.iter().filter_map(|s| s.cost).reduce(|a, b| a + b);
        assert_eq!(
            row["monthly_cost"].as_f64(),
            cost.map(|c| (c * 100.0).round() / 100.0),
            "{email}"
        );
    }

    // The filters, against the truth.
    let inactive_everywhere: Vec<String> = want
        .iter()
        .filter(|(_, w)| w.iter().all(|s| s.inactive == Some(true)))
        .map(|(e, _)| e.clone())
        .collect();
    let (rows, page) = all_pages(&stack, org, "&inactive_everywhere=true", 3).await;
    assert_eq!(emails(&rows), inactive_everywhere);
    assert_eq!(page["total"], inactive_everywhere.len());
    assert!(
        !inactive_everywhere.is_empty(),
        "the premise: someone idle everywhere"
    );
    let two_idle: Vec<String> = want
        .iter()
        .filter(|(_, w)| held(w) >= 2 && w.iter().all(|s| s.active == Some(false)))
        .map(|(e, _)| e.clone())
        .collect();
    let (rows, _) = all_pages(&stack, org, "&min_apps=2&active_in_none=true", 2).await;
    assert_eq!(emails(&rows), two_idle);
    let in_two: Vec<String> = want
        .iter()
        .filter(|(_, w)| held(w) >= 2)
        .map(|(e, _)| e.clone())
        .collect();
    let (rows, _) = all_pages(&stack, org, "&min_apps=2", 500).await;
    assert_eq!(emails(&rows), in_two);
    let (rows, _) = all_pages(&stack, org, "&q=SHARED%40people", 100).await;
    assert_eq!(
        emails(&rows),
        want.keys()
            .filter(|e| e.contains("shared@people"))
            .cloned()
            .collect::<Vec<_>>()
    );

    // The CSV: every row the filters keep, no paging, one column group per app.
    let (all, records, header) = csv_emails(&stack, org, "").await;
    assert_eq!(all, want.keys().cloned().collect::<Vec<_>>());
    assert_eq!(&header[0], "email");
    assert!(header.iter().any(|h| h == "pandadoc_license"));
    let ada = records
        .iter()
        .find(|r| &r[0] == "ada.shared@people.example")
        .unwrap();
    assert_eq!(&ada[2], "3");
    let (idle, ..) = csv_emails(&stack, org, "inactive_everywhere=true").await;
    assert_eq!(idle, inactive_everywhere);
    let (idle2, ..) = csv_emails(&stack, org, "min_apps=2&active_in_none=true").await;
    assert_eq!(idle2, two_idle);

    // Bad input is a 400 naming the parameter; another org sees nobody.
    for (query, code) in [
        ("inactive_everywhere=yes", "invalid_inactive_everywhere"),
        ("active_in_none=1", "invalid_active_in_none"),
        ("min_apps=0", "invalid_min_apps"),
        ("limit=501", "invalid_limit"),
        ("cursor=%25%25", "invalid_cursor"),
        ("q=%07", "invalid_q"),
    ] {
        let (status, body) = get_json(&stack, org, &format!("/api/people?{query}"))
            .await
            .unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}"
        );
    }
    let (status, other) = get_json(&stack, "other-org", "/api/people").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(other["people_total"], 0, "{other}");
    assert_eq!(other["apps"].as_array().unwrap().len(), 0);
}
