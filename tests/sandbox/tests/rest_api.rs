//! The REST API over real HTTP: paging reproduces the ground truth, PagerDuty's limits and
//! errors are enforced.

mod support;

use std::collections::BTreeMap;

use reqwest::StatusCode;
use seatscope_sandbox::PagerDutyConfig;
use serde_json::Value;
use support::pagerduty::*;

const FEATURES: [(&str, &str); 5] = [
    ("acknowledge_log_entry", "acknowledge"),
    ("resolve_log_entry", "resolve"),
    ("annotate_log_entry", "note"),
    ("assign_log_entry", "reassign"),
    ("escalate_log_entry", "escalate"),
];

fn api_key_config() -> PagerDutyConfig {
    PagerDutyConfig {
        api_token: Some("sandbox-account-key".to_string()),
        ..config()
    }
}

const KEY: &str = "Token token=sandbox-account-key";

#[tokio::test]
async fn paging_log_entries_and_counting_user_actions_equals_the_ground_truth() {
    let sandbox = start(api_key_config()).await;
    let client = http();
    let truth = sandbox.ground_truth();
    // The whole range, [first day 00:00, day after the last 00:00).
    let query = "since=2026-03-02T00:00:00Z&until=2026-04-01T00:00:00Z";

    let (status, first) = json(
        api_get(
            &client,
            &sandbox,
            KEY,
            &format!("/log_entries?{query}&limit=100&total=true"),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let total = first["total"].as_u64().expect("total with total=true");
    assert!(total < 10_000, "this test pages one window ({total})");

    let mut counts: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    let mut seen = 0u64;
    let mut offset = 0u64;
    let mut noise_types = std::collections::BTreeSet::new();
    let mut previous: Option<String> = None;
    loop {
        let (status, page) = json(
            api_get(
                &client,
                &sandbox,
                KEY,
                &format!("/log_entries?{query}&limit=100&offset={offset}"),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["limit"], 100);
        assert_eq!(page["offset"], offset);
        assert!(page["total"].is_null(), "total is null unless asked for");
        let entries = page["log_entries"].as_array().expect("log_entries");
        for entry in entries {
            let created = entry["created_at"]
                .as_str()
                .expect("created_at")
                .to_string();
            assert!(created.ends_with('Z') && created.len() == 20, "{created}");
            if let Some(prev) = &previous {
                assert!(*prev >= created, "newest first");
            }
            previous = Some(created.clone());
            let kind = entry["type"].as_str().expect("type");
            let agent = &entry["agent"];
            let feature = FEATURES.iter().find(|(t, _)| *t == kind).map(|(_, f)| *f);
            match (feature, agent["type"].as_str()) {
                (Some(feature), Some("user_reference")) => {
                    let user = agent["id"].as_str().expect("agent id").to_string();
                    *counts
                        .entry((user, created[..10].to_string(), feature.to_string()))
                        .or_default() += 1;
                }
                _ => {
                    noise_types.insert(format!("{kind}/{}", agent["type"].as_str().unwrap_or("")));
                }
            }
        }
        seen += entries.len() as u64;
        if page["more"] != true {
            break;
        }
        offset += entries.len() as u64;
    }
    assert_eq!(seen, total);
    let want: BTreeMap<(String, String, String), u32> = truth
        .daily
        .iter()
        .map(|d| {
            (
                (d.user_id.clone(), d.date.clone(), d.feature.clone()),
                d.count,
            )
        })
        .collect();
    assert_eq!(counts, want);
    for noise in [
        "trigger_log_entry/service_reference",
        "trigger_log_entry/user_reference",
        "notify_log_entry/service_reference",
        "acknowledge_log_entry/service_reference",
        "assign_log_entry/service_reference",
    ] {
        assert!(noise_types.contains(noise), "no {noise} in {noise_types:?}");
    }
}

#[tokio::test]
async fn since_and_until_select_a_half_open_window() {
    let sandbox = start(api_key_config()).await;
    let client = http();
    let total = |query: String| {
        let client = client.clone();
        let url = format!("/log_entries?{query}&total=true&limit=1");
        let sandbox = &sandbox;
        async move {
            let (_, body) = json(api_get(&client, sandbox, KEY, &url).await).await;
            body["total"].as_u64().expect("total")
        }
    };
    let day1 = total("since=2026-03-30T00:00:00Z&until=2026-03-31T00:00:00Z".into()).await;
    let day2 = total("since=2026-03-31T00:00:00Z&until=2026-04-01T00:00:00Z".into()).await;
    let both = total("since=2026-03-30T00:00:00Z&until=2026-04-01T00:00:00Z".into()).await;
    assert!(day1 > 0 && day2 > 0);
    assert_eq!(day1 + day2, both);
    // Offsets and bare dates name the same instants.
    let shifted = total("since=2026-03-30T02:00:00%2B02:00&until=2026-03-31".into()).await;
    assert_eq!(shifted, day1);
    // Nothing outside the generated range.
    let after = total("since=2026-04-01T00:00:00Z&until=2026-05-01T00:00:00Z".into()).await;
    assert_eq!(after, 0);
}

#[tokio::test]
async fn users_paging_returns_every_seat_with_pagerduty_fields() {
    let sandbox = start(api_key_config()).await;
    let client = http();
    let truth = sandbox.ground_truth();
    let mut got = Vec::new();
    let mut offset = 0;
    loop {
        let (status, page) = json(
            api_get(
                &client,
                &sandbox,
                KEY,
                &format!("/users?limit=10&offset={offset}&total=true"),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["total"], 25);
        let users = page["users"].as_array().expect("users");
        for u in users {
            let id = u["id"].as_str().expect("id");
            assert!(id.len() == 7 && id.starts_with('P'), "{id}");
            assert_eq!(u["type"], "user");
            assert!(u["teams"].is_array() && u["contact_methods"].is_array());
            got.push((
                id.to_string(),
                u["email"].as_str().unwrap_or_default().to_string(),
                u["name"].as_str().unwrap_or_default().to_string(),
                u["role"].as_str().unwrap_or_default().to_string(),
            ));
        }
        if page["more"] != true {
            break;
        }
        offset += users.len();
    }
    let want: Vec<_> = truth
        .seats
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                s.email.clone(),
                s.name.clone(),
                s.role.clone(),
            )
        })
        .collect();
    assert_eq!(got, want);

    // Defaults and the cap on limit.
    let (_, page) = json(api_get(&client, &sandbox, KEY, "/users").await).await;
    assert_eq!(page["limit"], 25);
    assert_eq!(page["more"], false);
    let (_, page) = json(api_get(&client, &sandbox, KEY, "/users?limit=500").await).await;
    assert_eq!(page["limit"], 100);
    // query filters by name or email.
    let name = &truth.seats[3].name;
    let (_, page) = json(
        api_get(
            &client,
            &sandbox,
            KEY,
            &format!("/users?query={}", name.replace(' ', "%20")),
        )
        .await,
    )
    .await;
    assert!(page["users"]
        .as_array()
        .is_some_and(|u| u.iter().any(|u| u["name"] == name.as_str())));
}

#[tokio::test]
async fn offset_plus_limit_over_10000_is_400_with_pagerdutys_error() {
    let sandbox = start(api_key_config()).await;
    let client = http();
    let (status, body) =
        json(api_get(&client, &sandbox, KEY, "/log_entries?offset=9950&limit=100").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], 2001);
    assert_eq!(body["error"]["message"], "Invalid Input Provided");
    assert!(body["error"]["errors"][0]
        .as_str()
        .is_some_and(|e| e.contains("10000")));
    // Right at the limit is fine.
    let response = api_get(&client, &sandbox, KEY, "/log_entries?offset=9900&limit=100").await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = api_get(&client, &sandbox, KEY, "/users?offset=9999&limit=2").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn invalid_parameters_are_400() {
    let sandbox = start(api_key_config()).await;
    let client = http();
    for query in [
        "since=yesterday",
        "until=2026-13-01T00:00:00Z",
        "since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z",
        "limit=ten",
        "offset=-1",
        "total=yes",
        "is_overview=1",
        "include[]=everything",
        "time_zone=America/Lima",
    ] {
        let (status, body) =
            json(api_get(&client, &sandbox, KEY, &format!("/log_entries?{query}")).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"]["code"], 2001, "{query}");
    }
    let response = api_get(
        &client,
        &sandbox,
        KEY,
        "/log_entries?time_zone=UTC&is_overview=true",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_unknown_or_malformed_credentials_are_401() {
    let sandbox = start(api_key_config()).await;
    let client = http();
    let response = client
        .get(format!("{}/users", sandbox.base_url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    for auth in [
        "Bearer nope",
        "Token token=wrong",
        "sandbox-account-key",
        "Bearer sandbox-account-key",
    ] {
        let (status, body) = json(api_get(&client, &sandbox, auth, "/log_entries").await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth}");
        assert_eq!(body["error"]["code"], 2006);
    }
    assert_eq!(sandbox.api_requests(), 5, "401s are counted too");
}

#[tokio::test]
async fn users_me_is_the_owner_for_oauth_and_400_for_the_account_key() {
    let sandbox = start(api_key_config()).await;
    let client = http();
    let (status, body) = json(api_get(&client, &sandbox, KEY, "/users/me").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], 2001);
    let (access, _) = tokens(&client, &sandbox).await;
    let (status, body) =
        json(api_get(&client, &sandbox, &format!("Bearer {access}"), "/users/me").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["role"], "owner");
}

#[tokio::test]
async fn the_sixth_request_in_a_minute_is_429_when_the_limit_is_5() {
    let sandbox = start(PagerDutyConfig {
        rate_limit_per_minute: 5,
        ..api_key_config()
    })
    .await;
    let client = http();
    for i in 0..5u32 {
        let response = api_get(&client, &sandbox, KEY, "/users?limit=1").await;
        assert_eq!(response.status(), StatusCode::OK);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        assert_eq!(header("ratelimit-limit"), Some(5));
        assert_eq!(header("ratelimit-remaining"), Some(u64::from(4 - i)));
        assert!(header("ratelimit-reset").is_some_and(|r| (1..=60).contains(&r)));
        assert!(response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "application/json; charset=utf-8"));
    }
    let response = api_get(&client, &sandbox, KEY, "/log_entries").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("ratelimit-limit").and_then(|v| v.to_str().ok()),
        Some("5")
    );
    assert_eq!(
        headers
            .get("ratelimit-remaining")
            .and_then(|v| v.to_str().ok()),
        Some("0")
    );
    assert!(headers.get("ratelimit-reset").is_some());
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({"error": {"message": "Rate Limit Exceeded", "code": 2020}})
    );
    assert_eq!(sandbox.api_requests(), 6);
}

#[tokio::test]
async fn accept_headers_pagerduty_documents_are_accepted_and_others_refused() {
    let sandbox = start(api_key_config()).await;
    let client = http();
    for accept in [
        "application/vnd.pagerduty+json;version=2",
        "application/vnd.pagerduty+json;version=2, application/json",
        "application/json",
        "*/*",
    ] {
        let response = client
            .get(format!("{}/users?limit=1", sandbox.base_url()))
            .header("authorization", KEY)
            .header("accept", accept)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::OK, "{accept}");
    }
    let response = client
        .get(format!("{}/users", sandbox.base_url()))
        .header("authorization", KEY)
        .header("accept", "text/html")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn the_ground_truth_endpoint_serves_the_same_truth() {
    let sandbox = start(config()).await;
    let client = http();
    let served: seatscope_sandbox::GroundTruth = client
        .get(format!("{}/_sandbox/ground-truth", sandbox.base_url()))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(served, sandbox.ground_truth());
    let response = client
        .get(format!("{}/no/such/path", sandbox.base_url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn oncalls_page_filter_and_name_exactly_the_ground_truths_on_call_users() {
    let sandbox = start(api_key_config()).await;
    let client = http();
    let truth = sandbox.ground_truth();
    let range = "since=2026-03-01T00:00:00Z&until=2026-04-01T00:00:00Z";

    // Every page of a month, two at a time: `more` and `total` agree with what came.
    let mut entries: Vec<Value> = Vec::new();
    let mut total = None;
    loop {
        let page = body(
            api_get(
                &client,
                &sandbox,
                KEY,
                &format!(
                    "/oncalls?{range}&limit=2&offset={}&total=true",
                    entries.len()
                ),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        total = total.or(page["total"].as_u64());
        let got = page["oncalls"].as_array().expect("oncalls").clone();
        let more = page["more"] == true;
        entries.extend(got);
        if !more {
            break;
        }
    }
    assert_eq!(Some(entries.len() as u64), total);
    let name = |v: &Value| v["summary"].as_str().map(str::to_string);
    let mut seen: BTreeMap<String, (Option<String>, String)> = BTreeMap::new();
    for e in &entries {
        seen.insert(
            e["user"]["id"].as_str().unwrap().to_string(),
            (name(&e["schedule"]), name(&e["escalation_policy"]).unwrap()),
        );
    }
    let want: BTreeMap<String, (Option<String>, String)> = truth
        .on_call
        .iter()
        .map(|o| {
            (
                o.user_id.clone(),
                (o.schedule.clone(), o.escalation_policy.clone()),
            )
        })
        .collect();
    assert_eq!(seen, want, "a month holds every member's shift");
    assert!(entries
        .iter()
        .all(|e| e["schedule"].is_null() == e["start"].is_null()));

    // Now (the default): one user per schedule, and the permanent on-call.
    let now = body(
        api_get(&client, &sandbox, KEY, "/oncalls").await,
        StatusCode::OK,
    )
    .await;
    let now = now["oncalls"].as_array().unwrap();
    let schedules: std::collections::BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e["schedule"]["id"].as_str())
        .collect();
    assert_eq!(now.len(), schedules.len() + 1, "{now:?}");

    // Filters: one user; the permanent on-calls alone; earliest per user.
    let someone = &truth.on_call[0].user_id;
    let mine = body(
        api_get(
            &client,
            &sandbox,
            KEY,
            &format!("/oncalls?{range}&user_ids[]={someone}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let mine = mine["oncalls"].as_array().unwrap();
    assert!(!mine.is_empty() && mine.iter().all(|e| e["user"]["id"] == *someone));
    let permanent = body(
        api_get(&client, &sandbox, KEY, "/oncalls?schedule_ids[]=null").await,
        StatusCode::OK,
    )
    .await;
    let permanent = permanent["oncalls"].as_array().unwrap();
    assert_eq!(permanent.len(), 1);
    assert!(permanent[0]["start"].is_null() && permanent[0]["end"].is_null());
    let earliest = body(
        api_get(
            &client,
            &sandbox,
            KEY,
            &format!("/oncalls?{range}&earliest=true&limit=100"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(earliest["oncalls"].as_array().unwrap().len(), want.len());

    // Refusals: until before since, beyond 90 days ahead, a bad flag.
    for query in [
        "/oncalls?since=2026-04-01&until=2026-03-01",
        "/oncalls?until=2999-01-01T00:00:00Z",
        "/oncalls?earliest=yes",
        "/oncalls?include[]=teams",
    ] {
        let error = body(
            api_get(&client, &sandbox, KEY, query).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(error["error"]["code"], 2001, "{query}: {error}");
    }
}
