//! The fault switches over real HTTP: `POST /_sandbox/faults` arms a fault on the vendor
//! API routes (never OAuth), it hits the chosen requests with the vendor's own error
//! shapes, counts them, and disarms itself; `DELETE` disarms it.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use seatscope_sandbox::pandadoc::PandaDocConfig;
use seatscope_sandbox::sendgrid::SendGridConfig;
use seatscope_sandbox::{Fault, FaultKind, PandaDocSandbox, SendGridSandbox, SendGridSandboxKey};
use serde_json::{json, Value};
use support::pagerduty::*;

const PD_KEY: &str = "Token token=sandbox-account-key";
const PANDADOC_KEY: &str = "API-Key 3039ba033eb1410caa0a2227158d63c9d6502cd8";

async fn pagerduty() -> seatscope_sandbox::PagerDutySandbox {
    start(seatscope_sandbox::PagerDutyConfig {
        api_token: Some("sandbox-account-key".into()),
        users: 5,
        days: 3,
        events_per_day: 20,
        ..config()
    })
    .await
}

async fn arm(client: &reqwest::Client, base: &str, fault: Value) -> StatusCode {
    client
        .post(format!("{base}/_sandbox/faults"))
        .json(&fault)
        .send()
        .await
        .expect("POST faults")
        .status()
}

async fn faults(client: &reqwest::Client, base: &str) -> Value {
    client
        .get(format!("{base}/_sandbox/faults"))
        .send()
        .await
        .expect("GET faults")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test]
async fn a_fault_hits_after_then_every_kth_request_count_times_and_disarms_itself() {
    let sandbox = pagerduty().await;
    let client = http();
    let base = sandbox.base_url();
    let fault = json!({"kind": "server_errors", "after": 1, "every": 2, "count": 3});
    assert_eq!(arm(&client, &base, fault).await, StatusCode::NO_CONTENT);
    assert_eq!(
        faults(&client, &base).await["active"]["kind"],
        "server_errors"
    );

    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = api_get(&client, &sandbox, PD_KEY, "/users?limit=2").await;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.text().await.expect("body");
        match status {
            // PagerDuty's own error body for the 500, a load balancer's page for 502/503.
            500 => assert_eq!(
                serde_json::from_str::<Value>(&body).expect("JSON")["error"]["code"],
                2000
            ),
            502 | 503 => assert!(content_type.starts_with("text/html") && body.contains("<h1>")),
            _ => {}
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 500, 200, 502, 200, 503, 200, 200]);

    let stats = faults(&client, &base).await;
    assert!(stats["active"].is_null(), "{stats}");
    assert_eq!(stats["injected"], 3);
    assert_eq!(stats["by_kind"]["server_errors"], 3);
    assert_eq!(
        sandbox.api_requests(),
        8,
        "fault answers count as API requests"
    );
    let counters: Value = client
        .get(format!("{base}/_sandbox/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["faults_injected"], 3);
}

#[tokio::test]
async fn a_pagerduty_storm_is_its_429_with_ratelimit_headers_or_bare_without_a_reset() {
    let sandbox = pagerduty().await;
    let client = http();
    sandbox
        .set_fault(Fault::new(FaultKind::RateLimitStorm).count(2).reset_secs(7))
        .unwrap();
    for _ in 0..2 {
        let response = api_get(&client, &sandbox, PD_KEY, "/log_entries").await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let header = |n: &str| {
            response
                .headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(header("ratelimit-remaining").as_deref(), Some("0"));
        assert_eq!(header("ratelimit-reset").as_deref(), Some("7"));
        assert_eq!(header("ratelimit-limit").as_deref(), Some("960"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": {"message": "Rate Limit Exceeded", "code": 2020}})
        );
    }
    let response = api_get(&client, &sandbox, PD_KEY, "/log_entries").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sandbox.rate_limited(), 2);

    sandbox
        .set_fault(Fault::new(FaultKind::RateLimitStorm).reset_secs(0))
        .unwrap();
    let response = api_get(&client, &sandbox, PD_KEY, "/log_entries").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("ratelimit-reset").is_none());
    assert!(response.bytes().await.unwrap().is_empty());
    assert_eq!(sandbox.fault_stats().injected, 3);
}

#[tokio::test]
async fn malformed_json_is_a_cut_200_and_slow_pages_come_late_but_whole() {
    let sandbox = pagerduty().await;
    let client = http();
    sandbox
        .set_fault(Fault::new(FaultKind::MalformedJson))
        .unwrap();
    let response = api_get(&client, &sandbox, PD_KEY, "/users").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let cut = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&cut).is_err(), "{cut}");
    let whole = api_get(&client, &sandbox, PD_KEY, "/users")
        .await
        .text()
        .await
        .unwrap();
    assert!(whole.starts_with(&cut) && whole.len() > cut.len());

    sandbox
        .set_fault(Fault::new(FaultKind::SlowPages).delay_ms(400))
        .unwrap();
    let started = Instant::now();
    let response = api_get(&client, &sandbox, PD_KEY, "/users").await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(response.text().await.unwrap(), whole);
    let started = Instant::now();
    api_get(&client, &sandbox, PD_KEY, "/users").await;
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "one hit only"
    );
}

#[tokio::test]
async fn unauthorized_mid_sync_stops_the_access_token_until_a_refresh_and_spares_oauth() {
    let sandbox = pagerduty().await;
    let client = http();
    let (access, refresh_token) = tokens(&client, &sandbox).await;
    let bearer = format!("Bearer {access}");
    sandbox
        .set_fault(Fault::new(FaultKind::Unauthorized).after(2))
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            api_get(&client, &sandbox, &bearer, "/users")
                .await
                .status()
                .as_u16(),
        );
    }
    // The hit request and every later one with the same token.
    assert_eq!(statuses, [200, 200, 401, 401]);
    assert_eq!(sandbox.fault_stats().injected, 1);

    // OAuth routes are never hit: a storm armed now leaves the refresh alone.
    sandbox
        .set_fault(Fault::new(FaultKind::RateLimitStorm).count(5))
        .unwrap();
    let (status, body) = refresh(&client, &sandbox, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sandbox.clear_faults();
    let fresh = format!("Bearer {}", body["access_token"].as_str().unwrap());
    assert_eq!(
        api_get(&client, &sandbox, &fresh, "/users").await.status(),
        StatusCode::OK
    );
    assert_eq!(sandbox.fault_stats().injected, 1);
}

#[tokio::test]
async fn delete_disarms_and_bad_faults_are_400() {
    let sandbox = pagerduty().await;
    let client = http();
    let base = sandbox.base_url();
    for bad in [
        json!({"kind": "meteor"}),
        json!({"kind": "slow_pages", "count": 0}),
        json!({"kind": "slow_pages", "evry": 2}),
        json!("rate_limit_storm"),
    ] {
        assert_eq!(
            arm(&client, &base, bad.clone()).await,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let storm = json!({"kind": "rate_limit_storm", "count": 100});
    assert_eq!(arm(&client, &base, storm).await, StatusCode::NO_CONTENT);
    let deleted = client
        .delete(format!("{base}/_sandbox/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        api_get(&client, &sandbox, PD_KEY, "/users").await.status(),
        StatusCode::OK
    );
    assert!(faults(&client, &base).await["active"].is_null());
}

#[tokio::test]
async fn pandadoc_storms_carry_no_header_and_the_body_hint_or_the_specs_bare_body() {
    let sandbox = PandaDocSandbox::start(
        PandaDocConfig {
            api_key: Some("3039ba033eb1410caa0a2227158d63c9d6502cd8".into()),
            users: 4,
            days: 3,
            events_per_day: 2,
            ..PandaDocConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let client = http();
    let get = |path: &str| {
        client
            .get(format!("{}{path}", sandbox.base_url()))
            .header("authorization", PANDADOC_KEY)
            .send()
    };
    sandbox
        .set_fault(Fault::new(FaultKind::RateLimitStorm).reset_secs(3))
        .unwrap();
    let response = get("/public/v1/documents").await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_none());
    assert!(!response
        .headers()
        .keys()
        .any(|k| k.as_str().contains("ratelimit")));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "request_error", "detail": "Request was throttled. Expected available in 3 seconds."})
    );

    sandbox
        .set_fault(Fault::new(FaultKind::RateLimitStorm).reset_secs(0))
        .unwrap();
    let body: Value = get("/public/v1/templates")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"type": "throttled", "detail": "Request was throttled."})
    );

    // Server errors: PandaDoc's body shape for the 500.
    sandbox
        .set_fault(Fault::new(FaultKind::ServerErrors))
        .unwrap();
    let response = get("/public/v1/users").await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = response.json().await.unwrap();
    assert!(body["type"].is_string() && body["detail"].is_string());

    let stats = sandbox.stats();
    assert_eq!((stats.faults_injected, stats.rate_limited), (3, 2));
    assert_eq!(stats.api_requests, 3);
}

#[tokio::test]
async fn sendgrid_storms_carry_an_epoch_reset_and_a_401_hit_leaves_the_key_working() {
    let sandbox = SendGridSandbox::start(SendGridConfig::default(), 0)
        .await
        .unwrap();
    let client = http();
    let key = format!("Bearer {}", SendGridSandboxKey::full().key);
    let get = |path: &str| {
        client
            .get(format!("{}{path}", sandbox.base_url()))
            .header("authorization", key.as_str())
            .send()
    };
    sandbox
        .set_fault(Fault::new(FaultKind::RateLimitStorm).reset_secs(5))
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let response = get("/v3/teammates").await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let header = |n: &str| -> i64 { response.headers()[n].to_str().unwrap().parse().unwrap() };
    assert_eq!(header("x-ratelimit-remaining"), 0);
    assert!((now + 5..=now + 7).contains(&header("x-ratelimit-reset")));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"errors": [{"field": null, "message": "too many requests"}]})
    );

    sandbox
        .set_fault(Fault::new(FaultKind::Unauthorized))
        .unwrap();
    let response = get("/v3/scopes").await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["message"], "authorization required");
    assert_eq!(get("/v3/scopes").await.unwrap().status(), StatusCode::OK);
    assert_eq!(sandbox.rate_limited(), 1);
    assert_eq!(sandbox.fault_stats().injected, 2);
}
