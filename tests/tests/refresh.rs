//! Token refresh against the PagerDuty sandbox (which rotates refresh tokens, as
//! PagerDuty does): proactive before expiry, once on a 401, exactly once under
//! concurrency, and a revoked grant turning into `needs_reconnect` → Reconnect.

mod common;

use std::sync::Arc;

use common::*;
use seatscope_core::connectors;
use seatscope_core::ops::credentials;
use seatscope_core::ops::sync::{self, RunResult};
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::PagerDutyConfig;
use serde_json::Value;

async fn stack(sandbox: PagerDutyConfig) -> Stack {
    Stack::start(StackOptions {
        sandbox,
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts")
}

async fn stored_secret(stack: &Stack, org: &str) -> Value {
    let out = stack
        .secrets
        .get_secret_value()
        .secret_id(format!("seatscope/dev/{org}/pagerduty"))
        .send()
        .await
        .expect("the connection's secret exists");
    serde_json::from_str(out.secret_string().unwrap()).unwrap()
}

/// Makes the stored access token one that is due for a refresh: obtained an hour
/// ago, expiring within the 5-minute margin. (A token just obtained is not due
/// before half its life, however short-lived the sandbox's tokens are.)
async fn age_stored_token(stack: &Stack, org: &str) {
    let mut secret = stored_secret(stack, org).await;
    let now = stack.now().unix_timestamp();
    secret["obtained_at"] = serde_json::json!(now - 3_600);
    secret["expires_at"] = serde_json::json!(now + 60);
    stack
        .secrets
        .put_secret_value()
        .secret_id(format!("seatscope/dev/{org}/pagerduty"))
        .secret_string(secret.to_string())
        .send()
        .await
        .expect("the connection's secret is updated");
}

async fn connection(stack: &Stack, org: &str) -> seatscope_core::domain::Connection {
    stack
        .deps
        .store
        .connection(&org_id(org), "pagerduty")
        .await
        .unwrap()
        .expect("connection record")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_users_of_an_expiring_token_refresh_it_exactly_once() {
    // The stored token is due for a refresh, so every user of the connection wants
    // one; the new token (2 minutes of life) is not due again at once.
    let stack = stack(PagerDutyConfig {
        users: 8,
        days: 3,
        events_per_day: 10,
        access_token_ttl_secs: 120,
        ..PagerDutyConfig::default()
    })
    .await;
    let org = "fifty";
    connect(&stack, org).await.expect("connect");
    age_stored_token(&stack, org).await;
    let before = stored_secret(&stack, org).await;
    let tokens_before = stack.sandbox.token_requests();
    assert_eq!(tokens_before, 1, "the code exchange");

    let deps = stack.deps.clone();
    let conn = Arc::new(connection(&stack, org).await);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (deps, conn) = (deps.clone(), conn.clone());
        tasks.push(tokio::spawn(async move {
            let provider = deps.config.catalog.get("pagerduty")?;
            let credentials = credentials::usable_credentials(&deps, provider, &conn, None).await?;
            // What a sync does next: a real API call with those credentials.
            connectors::for_provider(provider, deps.http()?, &credentials)?
                .seats()
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let seats = t
            .await
            .unwrap()
            .expect("every user gets working credentials");
        assert_eq!(seats.len(), 8);
        ok += 1;
    }
    assert_eq!(ok, 50);
    assert_eq!(
        stack.sandbox.token_requests() - tokens_before,
        1,
        "exactly one refresh for fifty concurrent users"
    );
    // The rotated set is what is stored, and the lock is released.
    let after = stored_secret(&stack, org).await;
    assert_ne!(after["refresh_token"], before["refresh_token"]);
    assert_ne!(after["access_token"], before["access_token"]);
    let conn = connection(&stack, org).await;
    assert!(conn.refresh_lock_until.is_none(), "refresh lock released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_sync_runs_of_one_connection_run_once_and_refresh_once() {
    let stack = stack(PagerDutyConfig {
        users: 6,
        days: 3,
        events_per_day: 12,
        access_token_ttl_secs: 120,
        ..PagerDutyConfig::default()
    })
    .await;
    let org = "runs";
    connect(&stack, org).await.expect("connect");
    age_stored_token(&stack, org).await;
    let tokens_before = stack.sandbox.token_requests();
    let now = stack.now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let deps = stack.deps.clone();
        tasks.push(tokio::spawn(async move {
            sync::sync_connection(&deps, &org_id("runs"), "pagerduty", now).await
        }));
    }
    let (mut synced, mut skipped) = (0, 0);
    for t in tasks {
        match t.await.unwrap().expect("no run errors") {
            RunResult::Synced(_) => synced += 1,
            RunResult::Skipped => skipped += 1,
            RunResult::Failed { code, message } => panic!("a run failed: {code}: {message}"),
            RunResult::Paused(_) => panic!("a run without a deadline paused"),
        }
    }
    assert_eq!((synced, skipped), (1, 49), "the lease lets exactly one run");
    assert_eq!(stack.sandbox.token_requests() - tokens_before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_mid_life_refreshes_once_and_the_sync_succeeds() {
    let stack = stack(PagerDutyConfig {
        users: 5,
        days: 3,
        events_per_day: 10,
        ..PagerDutyConfig::default()
    })
    .await;
    let org = "expired";
    connect(&stack, org).await.expect("connect");
    // The vendor now refuses the access token although its stored expiry is 30 days out.
    stack.sandbox.expire_access_tokens();
    let tokens_before = stack.sandbox.token_requests();
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    assert_eq!(stack.sandbox.token_requests() - tokens_before, 1);
    let conn = connection(&stack, org).await;
    assert_eq!(
        serde_json::to_value(conn.status).unwrap(),
        "connected",
        "{:?}",
        conn.status_reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_needs_reconnect_and_reconnect_keeps_the_history() {
    let stack = stack(PagerDutyConfig {
        users: 7,
        days: 5,
        events_per_day: 20,
        ..PagerDutyConfig::default()
    })
    .await;
    let org = "revoked";
    connect(&stack, org).await.expect("connect");
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    let pk = format!("ORG#{org}#APP#pagerduty");
    let history = items_with_prefix(&stack, &pk, DAY_ITEMS).await.unwrap();
    assert!(!history.is_empty());

    // The admin revoked the app at PagerDuty: the access token is refused and the
    // refresh token is gone.
    stack.sandbox.revoke_refresh_tokens();
    stack.sandbox.expire_access_tokens();
    let (status, _) = post_json(&stack, org, "/api/connections/pagerduty/sync")
        .await
        .unwrap();
    assert_eq!(status, 202);
    let report = stack.tick().await.unwrap();
    assert_eq!(report["failed"], 1, "{report}");

    let (_, overview) = get_json(&stack, org, "/api/overview").await.unwrap();
    let card = overview["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["provider"] == "pagerduty")
        .unwrap()
        .clone();
    assert_eq!(card["connection"]["status"], "needs_reconnect", "{card}");
    let reason = card["connection"]["status_reason"].as_str().unwrap();
    assert!(reason.contains("invalid_grant"), "{reason}");
    // Not scheduled any more: a tick does not call the vendor.
    let calls = stack.sandbox.api_requests();
    let report = stack.tick().await.unwrap();
    assert_eq!(report["due"], 0, "{report}");
    assert_eq!(stack.sandbox.api_requests(), calls);

    // Reconnect: the same card, new credentials, the history is still there.
    connect(&stack, org).await.expect("reconnect");
    let conn = connection(&stack, org).await;
    assert_eq!(serde_json::to_value(conn.status).unwrap(), "connected");
    assert!(conn.status_reason.is_none());
    assert!(conn.last_sync_summary.is_some(), "sync history kept");
    assert_eq!(
        items_with_prefix(&stack, &pk, DAY_ITEMS)
            .await
            .unwrap()
            .len(),
        history.len()
    );
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_outage_keeps_the_connection_connected_and_a_later_run_recovers() {
    let stack = stack(PagerDutyConfig {
        users: 4,
        days: 2,
        events_per_day: 6,
        access_token_ttl_secs: 120,
        ..PagerDutyConfig::default()
    })
    .await;
    let org = "outage";
    connect(&stack, org).await.expect("connect");
    age_stored_token(&stack, org).await;
    let before = stored_secret(&stack, org).await;

    // The same system, but the vendor's token endpoint cannot be reached.
    let mut env = stack.env.clone();
    env.insert(
        "PAGERDUTY_TOKEN_URL".into(),
        "http://127.0.0.1:9/oauth/token".into(),
    );
    let config = seatscope_core::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let cut_off =
        seatscope_core::Deps::from_clients(config, stack.dynamodb.clone(), stack.secrets.clone())
            .unwrap();
    let now = cut_off.config.clock.now();
    match sync::sync_connection(&cut_off, &org_id(org), "pagerduty", now)
        .await
        .unwrap()
    {
        RunResult::Failed { code, .. } => assert_eq!(code, "vendor_error"),
        other => panic!("expected a failed run, got {other:?}"),
    }
    let conn = connection(&stack, org).await;
    assert_eq!(serde_json::to_value(conn.status).unwrap(), "connected");
    assert!(
        conn.status_reason.is_some(),
        "the card says what went wrong"
    );
    assert!(conn.due_shard.is_some(), "still scheduled");
    assert!(conn.next_sync_at > now.unix_timestamp(), "retried later");
    assert!(conn.refresh_lock_until.is_none(), "refresh lock released");
    // Nothing was lost: the stored token set is untouched.
    assert_eq!(stored_secret(&stack, org).await, before);

    // The endpoint is back: the next run refreshes and syncs.
    stack
        .deps
        .store
        .make_due(
            &org_id(org),
            "pagerduty",
            stack.now(),
            &tool_entry(&stack, org, Action::SyncNow),
        )
        .await
        .unwrap();
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    let conn = connection(&stack, org).await;
    assert!(conn.status_reason.is_none());
}
