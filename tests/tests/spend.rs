//! Spend per license type and renewals end to end (issue 15, part 3), against DynamoDB
//! Local, moto and the PandaDoc and PagerDuty sandboxes over real HTTP: an admin sets a
//! price per license type, the billing period, a renewal date and the currency; the
//! app's summary prices each seat by its license (the licenses are the sandbox's ground
//! truth), the overview lists the renewal in the next 90 days with what reclaiming the
//! inactive seats before it saves, the totals leave out an app priced in another
//! currency (and say so), and the renewals CSV equals the JSON. The renewal date is set
//! relative to the stack's today, so the test holds at any date (it re-runs itself at
//! the pinned days).

mod common;

use std::collections::BTreeMap;

use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::pandadoc::PandaDocConfig;
use serde_json::{json, Value};
use time::Duration;

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

fn cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[test]
fn spend_and_renewals_hold_at_a_month_end_a_leap_day_and_new_year() {
    rerun_at_days(
        &["license_prices_price_each_seat_and_the_overview_lists_the_renewal_and_its_saving"],
        &PINNED_DAYS,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn license_prices_price_each_seat_and_the_overview_lists_the_renewal_and_its_saving() {
    let today = seatscope_sandbox::clock::today();
    let stack = Stack::start(StackOptions {
        pandadoc: PandaDocConfig {
            users: 16,
            days: 45,
            events_per_day: 6,
            ..PandaDocConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "spend";
    connect_to(&stack, org, "pandadoc")
        .await
        .expect("connect PandaDoc");
    connect(&stack, org).await.expect("connect PagerDuty");
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 2, "{report}");

    // Settings: a price per license type (Guest left to the seat price), billed
    // annually, renewing 30 days from today (entered as last year's date), in euros.
    let renews = today + Duration::days(30);
    let entered = renews
        .replace_year(renews.year() - 1)
        .unwrap_or(renews - Duration::days(365));
    let prices = json!({"Full": 49.0, "Creator": 35.0, "eSignature": 19.0, "Read-only": 0.0});
    let settings = json!({
        "inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": 5.0,
        "license_prices": prices, "billing_period": "annual",
        "renewal_date": entered.to_string(), "currency": "EUR"
    });
    let (status, body) = send_as_admin(
        &stack,
        org,
        reqwest::Method::PUT,
        "/api/apps/pandadoc/settings",
        Some(settings.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), settings);
    // PagerDuty: one price for every seat, in dollars.
    let usd =
        json!({"inactive_days": 30, "grace_days": 14, "exempt_seats": [], "seat_price": 10.0});
    let (status, body) = send_as_admin(
        &stack,
        org,
        reqwest::Method::PUT,
        "/api/apps/pagerduty/settings",
        Some(usd),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The truth: each seat's license from the sandbox, its inactivity from the seat list
    // (proven equal to the sandbox's activity by the providers and dashboard tests).
    let truth = stack.pandadoc.ground_truth();
    let (status, seats) = get_json(&stack, org, "/api/apps/pandadoc/seats")
        .await
        .unwrap();
    assert_eq!(status, 200, "{seats}");
    let seats = seats["seats"].as_array().unwrap().clone();
    assert_eq!(seats.len(), truth.seats.len());
    let price_of = |license: &str| prices[license].as_f64().unwrap_or(5.0);
    // license → (seats, active in 30 days, inactive)
    let mut want: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for seat in &seats {
        let id = seat["id"].as_str().unwrap();
        let license = truth
            .seats
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.license.clone())
            .expect("a seat of the truth");
        assert_eq!(seat["license"], json!(license), "{seat}");
        let active = seat["last_activity_on"]
            .as_str()
            .is_some_and(|d| d > (today - Duration::days(30)).to_string().as_str());
        let e = want.entry(license).or_default();
        e.0 += 1;
        e.1 += u64::from(active);
        e.2 += u64::from(seat["inactive"] == json!(true));
    }
    assert!(want.len() >= 3, "several license types: {want:?}");
    assert!(
        want.values().any(|w| w.2 > 0),
        "the data set must have an inactive seat: {want:?}"
    );

    // The app page: the costs per license type and their sums.
    let (status, detail) = get_json(&stack, org, "/api/apps/pandadoc").await.unwrap();
    assert_eq!(status, 200, "{detail}");
    assert!(
        problems("AppDetail", &detail).is_empty(),
        "{:?}",
        problems("AppDetail", &detail)
    );
    let summary = &detail["summary"];
    let by_license = summary["by_license"].as_array().unwrap();
    let got: BTreeMap<String, (u64, u64, u64)> = by_license
        .iter()
        .map(|l| {
            (
                l["license"].as_str().unwrap().to_string(),
                (
                    l["seats"].as_u64().unwrap(),
                    l["active_30d"].as_u64().unwrap(),
                    l["inactive_seats"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(got, want);
    let mut monthly = 0.0;
    let mut savings = 0.0;
    for l in by_license {
        let license = l["license"].as_str().unwrap();
        let (n, active, inactive) = want[license];
        let price = price_of(license);
        assert_eq!(l["price"].as_f64(), Some(price), "{l}");
        assert_eq!(
            l["monthly_cost"].as_f64(),
            Some(cents(price * n as f64)),
            "{l}"
        );
        assert_eq!(
            l["potential_savings"].as_f64(),
            Some(cents(price * inactive as f64)),
            "{l}"
        );
        let per_active = (active > 0).then(|| cents(price * n as f64 / active as f64));
        assert_eq!(l["cost_per_active_user"].as_f64(), per_active, "{l}");
        monthly += price * n as f64;
        savings += price * inactive as f64;
    }
    assert_eq!(summary["monthly_cost"].as_f64(), Some(cents(monthly)));
    assert_eq!(summary["potential_savings"].as_f64(), Some(cents(savings)));
    assert_eq!(summary["currency"], "EUR");

    // The overview: the renewal in 30 days, a year of the inactive seats saved; the
    // totals in euros (PandaDoc's alone: PagerDuty's dollars are left out, and named).
    let (status, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    assert_eq!(status, 200, "{overview}");
    assert!(
        problems("Overview", &overview).is_empty(),
        "{:?}",
        problems("Overview", &overview)
    );
    let renewals = overview["renewals"].as_array().unwrap();
    assert_eq!(renewals.len(), 1, "{renewals:?}");
    let r = &renewals[0];
    assert_eq!(r["provider"], "pandadoc");
    assert_eq!(r["date"], renews.to_string());
    assert_eq!(r["days_until"], 30);
    assert_eq!(r["billing_period"], "annual");
    assert_eq!(r["currency"], "EUR");
    assert_eq!(
        r["saving_if_reclaimed"].as_f64(),
        Some(cents(cents(savings) * 12.0))
    );
    let inactive: u64 = want.values().map(|w| w.2).sum();
    assert_eq!(r["inactive_seats"], inactive);
    // A tie (one app in each currency) goes to the first in alphabetical order.
    assert_eq!(overview["currency"], "EUR");
    assert_eq!(
        overview["totals"]["monthly_cost"].as_f64(),
        Some(cents(monthly))
    );
    assert_eq!(
        overview["totals"]["apps_in_other_currencies"],
        json!(["pagerduty"])
    );
    assert_eq!(card(&overview, "pagerduty")["currency"], "USD");

    // The renewals CSV: the same rows.
    let (status, csv) = send_as_admin(
        &stack,
        org,
        reqwest::Method::GET,
        "/api/renewals/export.csv",
        None,
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        seatscope_core::ops::export::RENEWAL_COLUMNS
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "PandaDoc");
    assert_eq!(rows[0][1], renews.to_string());
    assert_eq!(rows[0][2], "30");
    assert_eq!(rows[0][3], "annual");
    assert_eq!(
        rows[0][7].parse::<f64>().ok(),
        r["saving_if_reclaimed"].as_f64()
    );
    assert_eq!(rows[0][8], "EUR");

    // A renewal more than 90 days away is not listed; bad values are refused.
    let later = today + Duration::days(120);
    let mut far = settings.clone();
    far["renewal_date"] = json!(later.to_string());
    let (status, body) = send_as_admin(
        &stack,
        org,
        reqwest::Method::PUT,
        "/api/apps/pandadoc/settings",
        Some(far),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    assert_eq!(overview["renewals"], json!([]));
    assert_eq!(
        card(&overview, "pandadoc")["renewal"]["date"],
        later.to_string()
    );
    for (field, value, code) in [
        ("currency", json!("euro"), "invalid_currency"),
        ("renewal_date", json!("2026-02-30"), "invalid_renewal_date"),
        (
            "license_prices",
            json!({"Creator": -1}),
            "invalid_license_prices",
        ),
    ] {
        let mut bad = settings.clone();
        bad[field] = value;
        let (status, body) = send_as_admin(
            &stack,
            org,
            reqwest::Method::PUT,
            "/api/apps/pandadoc/settings",
            Some(bad),
        )
        .await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(body.contains(code), "{field}: {body}");
    }
}

/// SendGrid's credits at the last 30 complete days' pace: the day they run out before
/// the reset, or the share left unused at it, from the sandbox's own stats and balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sendgrid_credits_are_projected_from_the_last_thirty_days_pace() {
    let today = seatscope_sandbox::clock::today();
    for (monthly_credits, emails_per_day) in [(1_000_000, 300), (20_000, 3_000)] {
        let stack = Stack::start(StackOptions {
            sendgrid: seatscope_sandbox::sendgrid::SendGridConfig {
                teammates: 3,
                pending_invites: 0,
                days: 40,
                emails_per_day,
                monthly_credits,
                ..Default::default()
            },
            ..StackOptions::default()
        })
        .await
        .expect("the local stack starts");
        let org = "credits";
        let key = seatscope_sandbox::sendgrid::SandboxKey::full().key;
        let (status, body) = send_as_admin(
            &stack,
            org,
            reqwest::Method::POST,
            "/api/connections/sendgrid/api-key",
            Some(json!({ "api_key": key })),
        )
        .await;
        assert!((200..300).contains(&status), "{status}: {body}");
        let report = stack.tick().await.unwrap();
        assert_eq!(report["synced"], 1, "{report}");

        // The truth: requests per complete day (the days before today), the last 30.
        let truth = stack.sendgrid.ground_truth();
        let mut days: Vec<(String, u64)> = truth
            .daily
            .iter()
            .filter(|d| d.date < today.to_string())
            .map(|d| (d.date.clone(), d.metrics.requests))
            .collect();
        days.sort();
        let last: Vec<u64> = days.iter().rev().take(30).map(|d| d.1).collect();
        let pace = last.iter().sum::<u64>() as f64 / last.len() as f64;
        let credits = &truth.credits;
        let reset = time::Date::parse(
            &credits.next_reset,
            &time::macros::format_description!("[year]-[month]-[day]"),
        )
        .unwrap();
        let days_left = (reset - today).whole_days() as f64;
        let lasts = credits.remain as f64 / pace;

        let (status, detail) = get_json(&stack, org, "/api/apps/sendgrid").await.unwrap();
        assert_eq!(status, 200, "{detail}");
        assert!(
            problems("AppDetail", &detail).is_empty(),
            "{:?}",
            problems("AppDetail", &detail)
        );
        let p = &detail["plan"]["projection"];
        assert_eq!(p["days_measured"], last.len(), "{p}");
        assert_eq!(
            p["pace_per_day"].as_f64(),
            Some((pace * 10.0).round() / 10.0),
            "{p}"
        );
        if lasts < days_left {
            let out = today + Duration::days(lasts.floor() as i64);
            assert_eq!(p["runs_out_on"], json!(out.to_string()), "{p}");
            assert_eq!(p["unused_at_reset_percent"], Value::Null, "{p}");
        } else {
            let unused = (credits.remain as f64 - pace * days_left).max(0.0);
            let share = (unused * 1000.0 / credits.total as f64).round() / 10.0;
            assert_eq!(p["runs_out_on"], Value::Null, "{p}");
            assert_eq!(p["unused_at_reset_percent"].as_f64(), Some(share), "{p}");
        }
        eprintln!("{monthly_credits} credits, {emails_per_day} a day: {p}");
    }
}
