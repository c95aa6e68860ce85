//! PandaDoc and SendGrid end to end against their sandboxes over real HTTP:
//! connect (OAuth without PKCE; API key) → sync → the numbers equal the sandbox's
//! ground truth. (PagerDuty's end to end is in spine.rs.)

mod common;

use std::collections::BTreeMap;

use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::pandadoc::PandaDocConfig;
use seatscope_sandbox::sendgrid::SendGridConfig;
use seatscope_sandbox::SendGridSandboxKey;
use serde_json::Value;

#[test]
fn both_providers_equal_their_ground_truth_at_a_month_end_a_leap_day_and_new_year() {
    rerun_at_days(
        &[
            "pandadoc_oauth_connect_then_sync_equals_ground_truth",
            "sendgrid_api_key_connect_then_sync_equals_ground_truth_and_invents_no_activity",
        ],
        &PINNED_DAYS,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pandadoc_oauth_connect_then_sync_equals_ground_truth() {
    let stack = Stack::start(StackOptions {
        pandadoc: PandaDocConfig {
            users: 12,
            days: 20,
            events_per_day: 9,
            ..PandaDocConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "docs";
    let truth = stack.pandadoc.ground_truth();

    let consent = connect_to(&stack, org, "pandadoc").await.expect("connect");
    // PandaDoc documents no PKCE: none is sent.
    assert!(!consent.authorize_url.contains("code_challenge"));
    let secret = stack
        .secrets
        .get_secret_value()
        .secret_id(format!("seatscope/dev/{org}/pandadoc"))
        .send()
        .await
        .expect("secret");
    let secret: Value = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
    let access = secret["access_token"].as_str().unwrap().to_string();
    let dump = serde_json::to_string(&every_item(&stack).await.unwrap()).unwrap();
    assert!(!dump.contains(&access), "a token leaked into DynamoDB");

    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");

    // Seats: the users with a live membership, with license and workspace role.
    let (status, seats) = get_json(&stack, org, "/api/apps/pandadoc/seats")
        .await
        .unwrap();
    assert_eq!(status, 200, "{seats}");
    let got: BTreeMap<String, (String, String, String)> = seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                (
                    s["email"].as_str().unwrap().to_string(),
                    s["license"].as_str().unwrap_or_default().to_string(),
                    s["role"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let want: BTreeMap<String, (String, String, String)> = truth
        .seats
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                (s.email.clone(), s.license.clone(), s.role.clone()),
            )
        })
        .collect();
    assert_eq!(got, want);

    // Per seat, per day, per feature: exactly the ground truth.
    let pk = format!("ORG#{org}#APP#pandadoc");
    let days = items_with_prefix(&stack, &pk, DAY_ITEMS).await.unwrap();
    let want_counts = truth_counts(&truth.daily);
    assert!(!want_counts.is_empty());
    assert_eq!(stored_day_counts(&days), want_counts);

    // Feature totals over the range equal the truth's, per feature.
    let first = truth.daily.first().unwrap().date.clone();
    let last = truth.daily.last().unwrap().date.clone();
    let (_, detail) = get_json(
        &stack,
        org,
        &format!("/api/apps/pandadoc?from={first}&to={last}"),
    )
    .await
    .unwrap();
    let mut want_totals: BTreeMap<String, u64> = BTreeMap::new();
    for d in &truth.daily {
        *want_totals.entry(d.feature.clone()).or_default() += u64::from(d.count);
    }
    for f in detail["features"].as_array().unwrap() {
        let name = f["feature"].as_str().unwrap();
        assert_eq!(
            f["total"].as_u64().unwrap(),
            want_totals.get(name).copied().unwrap_or(0),
            "{name}"
        );
        assert!(f["source"].as_str().is_some(), "{name} names its source");
    }

    // A second sync changes nothing and duplicates nothing.
    let before = all_items(&stack).await.unwrap().len();
    post_json(&stack, org, "/api/connections/pandadoc/sync")
        .await
        .unwrap();
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    let days_again = items_with_prefix(&stack, &pk, DAY_ITEMS).await.unwrap();
    assert_eq!(stored_day_counts(&days_again), want_counts);
    // One more sync-run record, nothing else.
    assert_eq!(all_items(&stack).await.unwrap().len(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sendgrid_api_key_connect_then_sync_equals_ground_truth_and_invents_no_activity() {
    let stack = Stack::start(StackOptions {
        sendgrid: SendGridConfig {
            teammates: 9,
            pending_invites: 2,
            days: 25,
            ..SendGridConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "mail";
    let truth = stack.sendgrid.ground_truth();
    let key = SendGridSandboxKey::full().key;

    let resp = http()
        .post(format!(
            "{}/api/connections/sendgrid/api-key",
            stack.api_url()
        ))
        .bearer_auth(stack.token(org, "admin@mail.example"))
        .json(&serde_json::json!({ "api_key": key }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    assert!(!body.contains(&key), "the key is echoed back");
    let dump = serde_json::to_string(&every_item(&stack).await.unwrap()).unwrap();
    assert!(!dump.contains(&key), "the key leaked into DynamoDB");

    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");

    // Seats: teammates with their user_type, pending invitations as invited.
    let (_, seats) = get_json(&stack, org, "/api/apps/sendgrid/seats")
        .await
        .unwrap();
    let got: BTreeMap<String, (String, String, String)> = seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            // Nothing says a seat is active or inactive: SendGrid cannot tell.
            assert!(s["inactive"].is_null(), "{s}");
            (
                s["id"].as_str().unwrap().to_string(),
                (
                    s["email"].as_str().unwrap().to_string(),
                    s["role"].as_str().unwrap().to_string(),
                    s["status"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let want: BTreeMap<String, (String, String, String)> = truth
        .seats
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                (
                    s.email.clone(),
                    s.role.clone(),
                    if s.invited { "invited" } else { "active" }.to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(seats["inactive"], 0);

    // Account-level usage per day equals /v3/stats; no DAU/WAU/MAU is invented.
    let first = truth.daily.first().unwrap().date.clone();
    let last = truth.daily.last().unwrap().date.clone();
    let (status, detail) = get_json(
        &stack,
        org,
        &format!("/api/apps/sendgrid?from={first}&to={last}"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["per_seat_activity"], false);
    assert!(detail["activity_note"]
        .as_str()
        .unwrap()
        .contains("no per-seat activity"));
    let daily = detail["daily"].as_array().unwrap();
    assert_eq!(daily.len(), truth.daily.len());
    for (point, want) in daily.iter().zip(&truth.daily) {
        assert_eq!(point["date"], want.date.as_str());
        assert!(point["dau"].is_null() && point["mau"].is_null(), "{point}");
        assert_eq!(
            point["account"]["emails_requested"].as_u64().unwrap_or(0),
            want.metrics.requests,
            "{point}"
        );
        assert_eq!(
            point["account"]["emails_delivered"].as_u64().unwrap_or(0),
            want.metrics.delivered,
            "{point}"
        );
    }
    assert!(detail["summary"]["inactive_seats"].is_null(), "{detail}");
    let (_, seat_list) = get_json(&stack, org, "/api/apps/sendgrid/seats?only=inactive")
        .await
        .unwrap();
    assert_eq!(seat_list["inactive"], 0, "{seat_list}");
    assert!(seat_list["seats"].as_array().unwrap().is_empty());

    // Plan credits: used vs total.
    let plan = &detail["plan"];
    assert_eq!(plan["total"].as_u64().unwrap(), truth.credits.total);
    assert_eq!(plan["used"].as_u64().unwrap(), truth.credits.used);
    assert_eq!(plan["remain"].as_u64().unwrap(), truth.credits.remain);

    let (_, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    let sg = card(&overview, "sendgrid");
    assert_eq!(sg["connection"]["status"], "connected");
    assert!(
        sg["mau"].is_null() && sg["utilization_percent"].is_null(),
        "{sg}"
    );
    assert!(sg["activity_note"].is_string());
    let want_pct = (truth.credits.used as f64 * 1000.0 / truth.credits.total as f64).round() / 10.0;
    assert_eq!(sg["plan_utilization_percent"].as_f64().unwrap(), want_pct);
    assert_eq!(sg["seats"].as_u64().unwrap(), truth.seats.len() as u64);
}
