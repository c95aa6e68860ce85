//! The spine end to end, against DynamoDB Local, moto and the PagerDuty sandbox
//! over real HTTP: connect through the consent page, sync, read back.

mod common;

use std::collections::BTreeMap;

use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::PagerDutyConfig;
use serde_json::Value;
use sha2::Digest;

async fn stack(sandbox: PagerDutyConfig) -> Stack {
    Stack::start(StackOptions {
        sandbox,
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts")
}

fn without(mut v: Value, keys: &[&str]) -> Value {
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

#[test]
fn sync_equals_the_ground_truth_at_a_month_end_a_leap_day_and_new_year() {
    rerun_at_days(
        &["oauth_connect_then_sync_equals_ground_truth_and_a_second_sync_changes_nothing"],
        &PINNED_DAYS,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_connect_then_sync_equals_ground_truth_and_a_second_sync_changes_nothing() {
    // Enough entries that one window exceeds PagerDuty's 10 000 offset cap.
    let stack = stack(PagerDutyConfig {
        users: 30,
        days: 35,
        events_per_day: 330,
        ..PagerDutyConfig::default()
    })
    .await;
    let org = "acme";
    let truth = stack.sandbox.ground_truth();
    let total_events: u64 = truth.daily.iter().map(|d| u64::from(d.count)).sum();
    assert!(
        total_events > 10_000,
        "the data set must force a window split ({total_events})"
    );

    // Connect through the consent page.
    let consent = connect(&stack, org).await.expect("connect");
    assert!(consent.authorize_url.contains("code_challenge_method=S256"));
    let state = query_value(&consent.authorize_url, "state").expect("state in the authorize URL");
    assert!(state.len() >= 43, "state carries 256 bits: {state}");

    // The token set is in Secrets Manager…
    let secret_name = format!("seatscope/dev/{org}/pagerduty");
    let secret = stack
        .secrets
        .get_secret_value()
        .secret_id(&secret_name)
        .send()
        .await
        .expect("the connection's secret exists");
    let secret: Value = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
    let access = secret["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let refresh = secret["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    assert!(secret["expires_at"].as_i64().is_some());
    // …and in no DynamoDB item; nor is the OAuth state left behind.
    let items = all_items(&stack).await.unwrap();
    let dump = serde_json::to_string(&items).unwrap();
    assert!(
        !dump.contains(&access) && !dump.contains(&refresh),
        "a token leaked into DynamoDB"
    );
    assert!(!items
        .iter()
        .any(|i| i["pk"].as_str().unwrap_or("").starts_with("OAUTH_STATE#")));

    // Overview before the first sync: connected, no numbers yet.
    let (status, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    assert_eq!(status, 200);
    let pd = &overview["apps"][0];
    assert_eq!(pd["provider"], "pagerduty");
    assert_eq!(pd["connection"]["status"], "connected");
    assert!(pd["seats"].is_null());

    // The callback URL cannot be used twice.
    let replay = consent.callback().send().await.unwrap();
    assert_eq!(replay.status(), 400);

    // One sync (the connection is due at once after connecting).
    let before = stack.sandbox.api_requests();
    let report = stack.tick().await.expect("tick");
    assert_eq!(report["synced"], 1, "{report}");
    let pages = stack.sandbox.api_requests() - before;
    eprintln!("first sync: {report}, {pages} API requests, {total_events} events");

    // Seats equal the sandbox's users.
    let (status, seats) = get_json(&stack, org, "/api/apps/pagerduty/seats")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let mut got: Vec<(String, String, String)> = seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["email"].as_str().unwrap().to_string(),
                s["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut want: Vec<(String, String, String)> = truth
        .seats
        .iter()
        .map(|s| (s.id.clone(), s.email.clone(), s.role.clone()))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // Per-seat per-day feature counts equal the ground truth exactly.
    let app_pk = format!("ORG#{org}#APP#pagerduty");
    let day_items = items_with_prefix(&stack, &app_pk, DAY_ITEMS).await.unwrap();
    assert_eq!(stored_day_counts(&day_items), truth_counts(&truth.daily));

    // DAU/WAU/MAU per day equal the ones computed from the ground truth.
    let mut dates: Vec<String> = truth.daily.iter().map(|d| d.date.clone()).collect();
    dates.sort();
    dates.dedup();
    let (from, to) = (
        dates.first().unwrap().clone(),
        dates.last().unwrap().clone(),
    );
    let (status, detail) = get_json(
        &stack,
        org,
        &format!("/api/apps/pagerduty?from={from}&to={to}"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{detail}");
    let expected = expected_actives(&truth, &dates);
    let daily = detail["daily"].as_array().unwrap();
    assert_eq!(daily.len(), dates.len());
    for point in daily {
        let d = point["date"].as_str().unwrap();
        let (dau, wau, mau) = expected[d];
        assert_eq!(
            (
                point["dau"].as_u64().unwrap(),
                point["wau"].as_u64().unwrap(),
                point["mau"].as_u64().unwrap()
            ),
            (dau as u64, wau as u64, mau as u64),
            "day {d}"
        );
        assert_eq!(point["seats"].as_u64().unwrap(), truth.seats.len() as u64);
    }
    // Feature totals over the range equal the ground truth's.
    let mut want_features: BTreeMap<String, u64> = BTreeMap::new();
    for d in &truth.daily {
        *want_features.entry(d.feature.clone()).or_default() += u64::from(d.count);
    }
    for f in detail["features"].as_array().unwrap() {
        let name = f["feature"].as_str().unwrap();
        assert_eq!(
            f["total"].as_u64().unwrap(),
            want_features.get(name).copied().unwrap_or(0),
            "{name}"
        );
    }
    // Inactive seats: the users with no activity in the last 30 days, off call (a seat
    // on call is never reclaimable).
    let today = stack.today();
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let recent: std::collections::BTreeSet<&str> = truth
        .daily
        .iter()
        .filter(|d| {
            d.count > 0
                && time::Date::parse(&d.date, &fmt).unwrap() > today - time::Duration::days(30)
        })
        .map(|d| d.user_id.as_str())
        .collect();
    let (status, inactive_list) = get_json(&stack, org, "/api/apps/pagerduty/seats?only=inactive")
        .await
        .unwrap();
    assert_eq!(status, 200, "{inactive_list}");
    let mut inactive: Vec<&str> = inactive_list["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    inactive.sort();
    let mut want_inactive: Vec<&str> = truth
        .seats
        .iter()
        .map(|s| s.id.as_str())
        .filter(|id| !recent.contains(id))
        .filter(|id| !truth.on_call.iter().any(|o| o.user_id == *id))
        .collect();
    want_inactive.sort();
    assert_eq!(inactive, want_inactive);

    // Overview after the sync: seats, MAU and utilization of the latest day.
    let (_, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    let pd = &overview["apps"][0];
    assert_eq!(pd["seats"].as_u64().unwrap(), truth.seats.len() as u64);
    assert!(pd["connection"]["last_sync_at"].is_string());
    assert_eq!(
        pd["connection"]["last_sync"]["activity_events"]
            .as_u64()
            .unwrap(),
        total_events
    );

    // A second sync changes nothing and duplicates nothing.
    let rollups_before: Vec<Value> = items_with_prefix(&stack, &app_pk, "ROLLUP#")
        .await
        .unwrap()
        .into_iter()
        .map(|v| without(v, &["as_of"]))
        .collect();
    let items_before = all_items(&stack).await.unwrap().len();
    let (status, _) = post_json(&stack, org, "/api/connections/pagerduty/sync")
        .await
        .unwrap();
    assert_eq!(status, 202);
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    let day_items_after = items_with_prefix(&stack, &app_pk, DAY_ITEMS).await.unwrap();
    assert_eq!(day_items_after.len(), day_items.len());
    assert_eq!(
        stored_day_counts(&day_items_after),
        truth_counts(&truth.daily)
    );
    let rollups_after: Vec<Value> = items_with_prefix(&stack, &app_pk, "ROLLUP#")
        .await
        .unwrap()
        .into_iter()
        .map(|v| without(v, &["as_of"]))
        .collect();
    assert_eq!(rollups_after, rollups_before);
    let items_after = all_items(&stack).await.unwrap().len();
    // Only the second run's record is new.
    assert_eq!(items_after, items_before + 1);
    // Not due again until the interval has passed.
    let report = stack.tick().await.unwrap();
    assert_eq!(report["due"], 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_consent_and_unknown_expired_or_replayed_state_write_nothing() {
    let stack = stack(PagerDutyConfig::default()).await;
    let org = "globex";
    let items_at_start = all_items(&stack).await.unwrap().len();

    // Deny at the consent page → the callback reports access denied.
    let denied = consent(&stack, org, "deny").await.unwrap();
    assert_eq!(
        query_value(&denied.callback_url, "error").as_deref(),
        Some("access_denied")
    );
    let resp = denied.callback().send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let to = location(&resp).unwrap();
    assert!(to.starts_with("/connections?"), "{to}");
    assert!(
        to.contains("result=error") && to.contains("reason=access_denied"),
        "{to}"
    );
    // …and a replay of that callback is refused.
    let again = denied.callback().send().await.unwrap();
    assert_eq!(again.status(), 400);

    // Unknown state → 400 page.
    let unknown = http()
        .get(format!(
            "{}/oauth/callback?code=abc&state=not-a-state-we-issued",
            stack.api_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    assert!(unknown.text().await.unwrap().contains("cannot be used"));
    // No state at all → 400 page.
    let missing = http()
        .get(format!("{}/oauth/callback?code=abc", stack.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);

    // Expired state: approve at the vendor, then let the 10 minutes pass.
    let approved = consent(&stack, org, "approve").await.unwrap();
    let state = query_value(&approved.authorize_url, "state").unwrap();
    let hash: String = sha2::Sha256::digest(state.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table_name)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("OAUTH_STATE#{hash}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("OAUTH_STATE".into()),
        )
        .update_expression("SET expires_at = :past")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(
            ":past",
            aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
        )
        .send()
        .await
        .expect("the state item exists under the hash of the state");
    let expired = approved.callback().send().await.unwrap();
    assert_eq!(expired.status(), 400);

    // Nothing was written: no connection, no secret, no token request.
    let (_, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    assert_eq!(overview["apps"][0]["connection"]["status"], "not_connected");
    let secrets = secret_names(&stack).await.unwrap();
    assert!(
        secrets.iter().all(|s| !s.contains(&format!("/{org}/"))),
        "{secrets:?}"
    );
    assert_eq!(stack.sandbox.token_requests(), 0);
    let items = all_items(&stack).await.unwrap();
    let non_state: Vec<&Value> = items
        .iter()
        .filter(|i| !i["pk"].as_str().unwrap_or("").starts_with("OAUTH_STATE#"))
        .collect();
    assert_eq!(non_state.len(), items_at_start, "{non_state:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_verified_claims_get_401() {
    let stack = stack(PagerDutyConfig::default()).await;
    let client = http();
    for (method, path) in [
        ("GET", "/api/overview"),
        ("GET", "/api/apps/pagerduty"),
        ("GET", "/api/apps/pagerduty/seats"),
        ("POST", "/api/connections/pagerduty/connect"),
        ("POST", "/api/connections/pagerduty/sync"),
    ] {
        let url = format!("{}{path}", stack.api_url());
        let req = if method == "GET" {
            client.get(&url)
        } else {
            client.post(&url)
        };
        assert_eq!(
            req.send().await.unwrap().status(),
            401,
            "{method} {path} without a token"
        );
        let req = if method == "GET" {
            client.get(&url)
        } else {
            client.post(&url)
        };
        let forged = req
            .bearer_auth("eyJhbGciOiJIUzI1NiJ9.e30.x")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 401, "{method} {path} with a forged token");
    }
    // A token without the org claim reaches the function, which refuses it.
    let no_org = stack.auth.token("", "someone", 1);
    let resp = client
        .get(format!("{}/api/overview", stack.api_url()))
        .bearer_auth(no_org)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}
