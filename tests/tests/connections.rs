//! Connection management end to end, against DynamoDB Local, moto and the vendor
//! sandboxes over real HTTP through the local gateway: API-key connect, invite
//! links (OAuth and API-key form), Reconnect and Disconnect (with purge).
//!
//! Keys and tokens in these tests are the sandboxes' fakes, but they are treated
//! as secrets all the same: no assertion message prints a body or a dump that is
//! checked for a key.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use seatscope_core::domain::{Invite, OrgId, SeatDay};
use seatscope_core::store::SyncOutcome;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::{PagerDutyConfig, SendGridSandboxKey};
use serde_json::{json, Value};
use sha2::Digest;

const PD_ACCOUNT_TOKEN: &str = "y_NbAkKc66ryYTWUXYEu";

async fn stack() -> Stack {
    Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 8,
            days: 10,
            events_per_day: 40,
            api_token: Some(PD_ACCOUNT_TOKEN.to_string()),
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts")
}

fn user(org: &str) -> String {
    format!("admin@{org}.example")
}

fn sha256_hex(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A request to the local API as `who` in `org`; the raw body text comes back
/// (never printed by the callers that check it for a key).
async fn call(
    stack: &Stack,
    org: &str,
    who: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = http()
        .request(method, format!("{}{path}", stack.api_url()))
        .bearer_auth(stack.token(org, who));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("the local API answers");
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn api_key(stack: &Stack, org: &str, provider: &str, key: &str) -> (u16, String) {
    call(
        stack,
        org,
        &user(org),
        reqwest::Method::POST,
        &format!("/api/connections/{provider}/api-key"),
        Some(json!({ "api_key": key })),
    )
    .await
}

async fn connection(stack: &Stack, org: &str, provider: &str) -> Option<Value> {
    items_with_prefix(stack, &format!("ORG#{org}"), &format!("CONN#{provider}"))
        .await
        .unwrap()
        .into_iter()
        .next()
}

async fn secret(stack: &Stack, org: &str, provider: &str) -> Option<Value> {
    let out = stack
        .secrets
        .get_secret_value()
        .secret_id(format!("seatscope/dev/{org}/{provider}"))
        .send()
        .await
        .ok()?;
    Some(serde_json::from_str(out.secret_string()?).unwrap())
}

async fn overview_status(stack: &Stack, org: &str, provider: &str) -> String {
    let (status, overview) = get_json(stack, org, "/api/overview").await.unwrap();
    assert_eq!(status, 200);
    overview["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["provider"] == provider)
        .map(|a| a["connection"]["status"].as_str().unwrap().to_string())
        .unwrap()
}

fn table_dump_contains(items: &[Value], needle: &str) -> bool {
    serde_json::to_string(items).unwrap().contains(needle)
}

async fn create_invite(stack: &Stack, org: &str, who: &str, provider: &str) -> (String, Value) {
    let (status, body) = call(
        stack,
        org,
        who,
        reqwest::Method::POST,
        &format!("/api/connections/{provider}/invites"),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    (body["url"].as_str().unwrap().to_string(), body)
}

fn token_of(invite_url: &str) -> String {
    invite_url.rsplit('/').next().unwrap().to_string()
}

/// The sandbox's consent page at `authorize_url`, a button pressed: our callback URL.
async fn decide(authorize_url: &str, decision: &str) -> String {
    let page = http().get(authorize_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let form = parse_consent(&page.text().await.unwrap()).unwrap();
    let action = url::Url::parse(authorize_url)
        .unwrap()
        .join(&form.action)
        .unwrap();
    let mut fields = form.fields.clone();
    fields.retain(|(k, _)| k != "decision");
    fields.push(("decision".into(), decision.into()));
    let decided = http().post(action).form(&fields).send().await.unwrap();
    assert!(decided.status().is_redirection());
    location(&decided).unwrap()
}

async fn post_form(url: &str, key: &str) -> (u16, String) {
    let resp = http()
        .post(url)
        .form(&[("api_key", key)])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_connect_keeps_the_key_only_in_secrets_manager_and_refuses_bad_keys() {
    let stack = stack().await;
    let org = "initech";

    // Malformed keys: 400 saying what is wrong, never repeating the key; nothing stored.
    for (body, says) in [
        (json!({ "api_key": "" }), "empty"),
        (json!({ "api_key": "zz-secret-value with-space" }), "spaces"),
        (json!({ "api_key": "zz-secret-value\n" }), "spaces"),
        (json!({ "api_key": "z".repeat(513) }), "512"),
        (
            json!({ "api_key": "zz-secret-value", "extra": 1 }),
            "no other fields",
        ),
        (json!({ "key": "zz-secret-value" }), "no other fields"),
        (json!("zz-secret-value"), "no other fields"),
    ] {
        let (status, text) = call(
            &stack,
            org,
            &user(org),
            reqwest::Method::POST,
            "/api/connections/pagerduty/api-key",
            Some(body),
        )
        .await;
        assert_eq!(status, 400, "{says}");
        let err: Value = serde_json::from_str(&text).unwrap();
        assert!(
            err["error"]["message"].as_str().unwrap().contains(says),
            "{says}: {}",
            err["error"]["code"]
        );
        assert!(
            !text.contains("zz-secret-value"),
            "a malformed key was echoed"
        );
    }
    // An unknown provider is a 404, not a 500.
    let (status, _) = api_key(&stack, org, "nope", "abc").await;
    assert_eq!(status, 404);

    // A key PagerDuty refuses: 422 with the vendor's reason, nothing stored.
    let calls_before = stack.sandbox.api_requests();
    let (status, text) = api_key(&stack, org, "pagerduty", "wrong-pd-token-123").await;
    assert_eq!(status, 422);
    assert!(
        !text.contains("wrong-pd-token-123"),
        "the refused key was echoed"
    );
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"]["code"], "credentials_refused");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("PagerDuty"), "{message}");
    assert!(
        stack.sandbox.api_requests() > calls_before,
        "the key was checked with the vendor"
    );
    assert!(secret(&stack, org, "pagerduty").await.is_none());
    assert!(connection(&stack, org, "pagerduty").await.is_none());
    assert!(secret_names(&stack)
        .await
        .unwrap()
        .iter()
        .all(|s| !s.contains(&format!("/{org}/"))));

    // PagerDuty's account token: connected.
    let (status, text) = api_key(&stack, org, "pagerduty", PD_ACCOUNT_TOKEN).await;
    assert_eq!(status, 200);
    assert!(
        !text.contains(PD_ACCOUNT_TOKEN),
        "the response echoed the key"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["provider"], "pagerduty");
    assert_eq!(body["status"], "connected");
    assert!(body.get("vendor_account").is_some());
    // The secret holds the key; no DynamoDB item does.
    let stored = secret(&stack, org, "pagerduty").await.expect("the secret");
    assert_eq!(stored["kind"], "api_key");
    assert!(
        stored["api_key"].as_str() == Some(PD_ACCOUNT_TOKEN),
        "the secret holds the key"
    );
    let items = all_items(&stack).await.unwrap();
    assert!(
        !table_dump_contains(&items, PD_ACCOUNT_TOKEN),
        "the key leaked into DynamoDB"
    );
    let conn = connection(&stack, org, "pagerduty").await.unwrap();
    assert_eq!(conn["status"], "connected");
    assert_eq!(conn["auth_mode"], "api_key");
    assert_eq!(conn["connected_by"], user(org));
    assert!(conn.get("invited_by").is_none());
    assert_eq!(overview_status(&stack, org, "pagerduty").await, "connected");

    // The key works for syncing.
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    let seats = items_with_prefix(&stack, &format!("ORG#{org}#APP#pagerduty"), "SEAT#")
        .await
        .unwrap();
    assert_eq!(seats.len(), stack.sandbox.ground_truth().seats.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_link_connects_through_the_vendors_consent_once_and_records_who() {
    let stack = stack().await;
    let org = "umbrella";
    let requester = "requester@umbrella.example";

    let (url, body) = create_invite(&stack, org, requester, "pagerduty").await;
    let prefix = format!("{}/connect/invite/", stack.api_url());
    assert!(url.starts_with(&prefix), "{url}");
    let token = token_of(&url);
    assert_eq!(token.len(), 43, "32 random bytes, base64url");
    let expires = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let in_days = (expires - stack.now()).whole_hours();
    assert!(
        (167..=168).contains(&in_days),
        "expires in 7 days ({in_days} h)"
    );
    // Stored only as its hash, with the org, provider and creator.
    let items = all_items(&stack).await.unwrap();
    assert!(
        !table_dump_contains(&items, &token),
        "the invite token is stored in clear"
    );
    let invite = items
        .iter()
        .find(|i| i["pk"] == format!("INVITE#{}", sha256_hex(&token)))
        .expect("the invite item, keyed by the token's SHA-256");
    assert_eq!(invite["org_id"], org);
    assert_eq!(invite["provider"], "pagerduty");
    assert_eq!(invite["created_by"], requester);
    assert_eq!(
        invite["expires_at"].as_i64().unwrap(),
        expires.unix_timestamp()
    );

    // Opened without any sign-in: a page with one button. Opening (as a chat
    // app's link preview would) uses nothing up.
    for _ in 0..2 {
        let opened = http().get(&url).send().await.unwrap();
        assert_eq!(opened.status(), 200);
        let csp = opened.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains(&format!("form-action 'self' {}", stack.sandbox.base_url())),
            "{csp}"
        );
        let page = opened.text().await.unwrap();
        assert!(page.contains("Continue to PagerDuty"), "{page}");
    }
    assert!(all_items(&stack)
        .await
        .unwrap()
        .iter()
        .any(|i| i["pk"].as_str().unwrap().starts_with("INVITE#")));
    // "Continue" → 302 to the vendor's consent page.
    let continued = http()
        .post(&url)
        .form(&[("continue", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(continued.status(), 302);
    let cookie = binding_cookie(&continued).expect("Continue binds the connect to this browser");
    let authorize_url = location(&continued).unwrap();
    assert!(
        authorize_url.starts_with(&stack.sandbox.base_url()),
        "{authorize_url}"
    );
    assert!(authorize_url.contains("code_challenge_method=S256"));
    // The invite is used up by "Continue".
    let items = all_items(&stack).await.unwrap();
    assert!(!items
        .iter()
        .any(|i| i["pk"].as_str().unwrap().starts_with("INVITE#")));

    // The admin approves; the callback ends on a page, not the dashboard.
    let callback = decide(&authorize_url, "approve").await;
    let done = callback_from(&callback, Some(&cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let page = done.text().await.unwrap();
    assert!(page.contains("PagerDuty is connected"), "{page}");
    assert!(page.contains("close this tab"), "{page}");

    let conn = connection(&stack, org, "pagerduty").await.unwrap();
    assert_eq!(conn["status"], "connected");
    assert_eq!(conn["auth_mode"], "oauth2");
    assert_eq!(conn["invited_by"], requester);
    let account = conn["vendor_account"]
        .as_str()
        .expect("the consenting account");
    assert_eq!(
        conn["connected_by"], account,
        "connected by the admin who consented"
    );
    assert!(stack
        .sandbox
        .ground_truth()
        .seats
        .iter()
        .any(|s| s.email == account));
    assert!(secret(&stack, org, "pagerduty").await.is_some());
    assert_eq!(overview_status(&stack, org, "pagerduty").await, "connected");

    // The same link again (opened or continued): a clear refusal, nothing changes.
    let items_before = all_items(&stack).await.unwrap();
    let again = http().get(&url).send().await.unwrap();
    assert_eq!(again.status(), 410);
    let page = again.text().await.unwrap();
    assert!(
        page.contains("cannot be used") && page.contains("new link"),
        "{page}"
    );
    let replayed = http()
        .post(&url)
        .form(&[("continue", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 410);
    let items_after = all_items(&stack).await.unwrap();
    assert_eq!(items_after, items_before);

    // A denied consent through another invite: a page saying so, nothing connected.
    let other = "umbrella-eu";
    let (url, _) = create_invite(&stack, other, requester, "pagerduty").await;
    let continued = http()
        .post(&url)
        .form(&[("continue", "1")])
        .send()
        .await
        .unwrap();
    let cookie = binding_cookie(&continued).unwrap();
    let callback = decide(&location(&continued).unwrap(), "deny").await;
    let denied = callback_from(&callback, Some(&cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 400);
    let page = denied.text().await.unwrap();
    assert!(
        page.contains("was not connected") && page.contains("denied"),
        "{page}"
    );
    assert!(connection(&stack, other, "pagerduty").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_unknown_and_malformed_invites_are_refused_and_change_nothing() {
    let stack = stack().await;
    let org = "hooli";
    // An invite whose 7 days have passed (DynamoDB's TTL deletion lags; the expiry is checked).
    let token = "c".repeat(43);
    let now = stack.now();
    for provider in ["pagerduty", "sendgrid"] {
        let token = format!("{}{provider}", &token[..43 - provider.len()]);
        stack
            .deps
            .store
            .create_invite(
                &Invite {
                    org_id: OrgId::parse(org).unwrap(),
                    provider: provider.into(),
                    created_by: user(org),
                    created_at: seatscope_core::domain::rfc3339(now - time::Duration::days(8)),
                    expires_at: (now - time::Duration::days(1)).unix_timestamp(),
                },
                &sha256_hex(&token),
                &tool_entry(&stack, org, Action::InviteCreated),
            )
            .await
            .unwrap();
        let url = format!("{}/connect/invite/{token}", stack.api_url());
        let items_before = all_items(&stack).await.unwrap();
        let opened = http().get(&url).send().await.unwrap();
        assert_eq!(opened.status(), 410, "{provider}");
        let page = opened.text().await.unwrap();
        assert!(page.contains("expired"), "{page}");
        let (status, page) = post_form(&url, "SG.some-key").await;
        assert_eq!(status, 410, "{provider}");
        assert!(page.contains("cannot be used"));
        // No state, no connection, no secret; the expired item is left to the TTL.
        assert_eq!(all_items(&stack).await.unwrap(), items_before);
        assert!(connection(&stack, org, provider).await.is_none());
        assert!(secret(&stack, org, provider).await.is_none());
    }
    assert_eq!(stack.sandbox.token_requests(), 0);
    assert_eq!(
        stack.sendgrid.api_requests(),
        0,
        "an expired invite never calls the vendor"
    );

    // Unknown and malformed tokens get the same page.
    for token in [
        "A".repeat(43),
        "short".into(),
        "x".repeat(300),
        "%3Cscript%3E".into(),
    ] {
        let resp = http()
            .get(format!("{}/connect/invite/{token}", stack.api_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 410);
        let page = resp.text().await.unwrap();
        assert!(!page.contains("<script>"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_stops_syncing_and_keeps_data_then_purge_removes_it_all() {
    let stack = stack().await;
    let org = "acme";
    let provider_pk = format!("ORG#{org}#APP#pagerduty");
    connect(&stack, org).await.expect("OAuth connect");
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    let data_before = partition(&stack, &provider_pk).await.unwrap();
    assert!(data_before.len() > 10, "seats, days, rollups and a run");
    // A run holds the lease while the admin disconnects.
    let now = stack.now();
    let deps = &stack.deps;
    assert!(deps
        .store
        .take_lock(
            seatscope_core::store::ConnectionLock::Lease,
            (&OrgId::parse(org).unwrap(), "pagerduty"),
            "run-in-flight",
            now,
            time::Duration::minutes(15)
        )
        .await
        .unwrap());

    // Another org cannot disconnect it; a bad purge value is a 400.
    let (status, _) = call(
        &stack,
        "other-org",
        &user("other-org"),
        reqwest::Method::DELETE,
        "/api/connections/pagerduty",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = call(
        &stack,
        org,
        &user(org),
        reqwest::Method::DELETE,
        "/api/connections/pagerduty?purge=yes",
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        connection(&stack, org, "pagerduty").await.unwrap()["status"],
        "connected"
    );

    // Disconnect.
    let (status, body) = call(
        &stack,
        org,
        &user(org),
        reqwest::Method::DELETE,
        "/api/connections/pagerduty",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        json!({"provider": "pagerduty", "status": "disconnected", "purged_items": 0})
    );
    // The secret is unreadable (scheduled for deletion, recoverable for 7 days).
    assert!(secret(&stack, org, "pagerduty").await.is_none());
    let described = stack
        .secrets
        .describe_secret()
        .secret_id(format!("seatscope/dev/{org}/pagerduty"))
        .send()
        .await
        .unwrap();
    assert!(described.deleted_date().is_some());
    // Disconnected, unscheduled, lease dropped.
    let conn = connection(&stack, org, "pagerduty").await.unwrap();
    assert_eq!(conn["status"], "disconnected");
    for gone in ["due_shard", "lease_owner", "lease_expires_at"] {
        assert!(conn.get(gone).is_none(), "{gone} still set");
    }
    assert_eq!(
        overview_status(&stack, org, "pagerduty").await,
        "disconnected"
    );
    // Out of the DueIndex even when its time comes, and "sync now" cannot put it back.
    let later = now + time::Duration::days(30);
    let due = deps.store.due_connections(later).await.unwrap();
    assert!(!due.iter().any(|(o, _)| o == org), "{due:?}");
    let (status, _) = post_json(&stack, org, "/api/connections/pagerduty/sync")
        .await
        .unwrap();
    assert_eq!(status, 404);
    // The run that was in flight finishes: it cannot write on the connection.
    let outcome = SyncOutcome {
        status: seatscope_core::domain::ConnectionStatus::Connected,
        status_reason: None,
        summary: None,
        finished_at: now,
        next_sync_at: now,
        consecutive_failures: 0,
    };
    assert!(!deps
        .store
        .finish_run(
            &OrgId::parse(org).unwrap(),
            "pagerduty",
            "run-in-flight",
            &outcome,
        )
        .await
        .unwrap());
    assert_eq!(
        connection(&stack, org, "pagerduty").await.unwrap()["status"],
        "disconnected"
    );
    // A tick makes no vendor call.
    let (api_before, tokens_before) =
        (stack.sandbox.api_requests(), stack.sandbox.token_requests());
    let stats_before: Value = http()
        .get(format!("{}/_sandbox/stats", stack.sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let report = stack.tick().await.unwrap();
    assert_eq!(report["due"], 0, "{report}");
    assert_eq!(stack.sandbox.api_requests(), api_before);
    assert_eq!(stack.sandbox.token_requests(), tokens_before);
    let stats_after: Value = http()
        .get(format!("{}/_sandbox/stats", stack.sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats_after, stats_before);
    // The data is kept.
    assert_eq!(partition(&stack, &provider_pk).await.unwrap(), data_before);
    let (status, seats) = get_json(&stack, org, "/api/apps/pagerduty/seats")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        seats["seats"].as_array().unwrap().len(),
        stack.sandbox.ground_truth().seats.len()
    );

    // Disconnect again (idempotent), this time purging: the partition and the
    // connection item go, the overview says not_connected.
    let (status, body) = call(
        &stack,
        org,
        &user(org),
        reqwest::Method::DELETE,
        "/api/connections/pagerduty?purge=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "not_connected");
    assert_eq!(
        body["purged_items"].as_u64().unwrap() as usize,
        data_before.len() + 1
    );
    assert!(partition(&stack, &provider_pk).await.unwrap().is_empty());
    assert!(connection(&stack, org, "pagerduty").await.is_none());
    assert_eq!(
        overview_status(&stack, org, "pagerduty").await,
        "not_connected"
    );
    let leftovers: Vec<Value> = all_items(&stack)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i["pk"].as_str().unwrap().starts_with(&format!("ORG#{org}")))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Nothing left to disconnect.
    let (status, _) = call(
        &stack,
        org,
        &user(org),
        reqwest::Method::DELETE,
        "/api/connections/pagerduty",
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_deletes_partitions_larger_than_one_batch_and_one_page() {
    let stack = stack().await;
    let org = "massive";
    let (status, _) = api_key(&stack, org, "pagerduty", PD_ACCOUNT_TOKEN).await;
    assert_eq!(status, 200);
    // 1 200 items of ~1 KB (one seat's counts on each of 1 200 days): many
    // BatchWriteItem calls and more than one Query page.
    let pk = format!("ORG#{org}#APP#pagerduty");
    let filler = "f".repeat(1000);
    let first = time::macros::date!(2023 - 01 - 01);
    let days: Vec<time::Date> = (0..1200).map(|i| first + time::Duration::days(i)).collect();
    let items: Vec<SeatDay> = days
        .iter()
        .map(|d| SeatDay {
            date: seatscope_core::domain::time::day(*d),
            seat_id: "PSEAT01".into(),
            features: [(filler.clone(), 1)].into(),
            total: 1,
        })
        .collect();
    stack
        .deps
        .store
        .app_data(&OrgId::parse(org).unwrap(), "pagerduty")
        .put_seat_days(&days, &items, "test")
        .await
        .unwrap();
    let (status, body) = call(
        &stack,
        org,
        &user(org),
        reqwest::Method::DELETE,
        "/api/connections/pagerduty?purge=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["purged_items"], 1201);
    assert!(partition(&stack, &pk).await.unwrap().is_empty());
    assert!(connection(&stack, org, "pagerduty").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_replaces_credentials_in_place_and_keeps_the_history() {
    let stack = stack().await;
    let org = "globex";
    let provider_pk = format!("ORG#{org}#APP#pagerduty");
    connect(&stack, org).await.expect("OAuth connect");
    assert_eq!(stack.tick().await.unwrap()["synced"], 1);
    let synced = connection(&stack, org, "pagerduty").await.unwrap();
    let checkpoint = synced["activity_synced_until"].clone();
    assert!(checkpoint.is_string());
    let data = partition(&stack, &provider_pk).await.unwrap();

    // Access was revoked: the connection needs a reconnect (as a sync would record it).
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table_name)
        .key("pk", AttributeValue::S(format!("ORG#{org}")))
        .key("sk", AttributeValue::S("CONN#pagerduty".into()))
        .update_expression(
            "SET #st = :st, status_reason = :r, consecutive_failures = :f REMOVE due_shard",
        )
        .expression_attribute_names("#st", "status")
        .expression_attribute_values(":st", AttributeValue::S("needs_reconnect".into()))
        .expression_attribute_values(":r", AttributeValue::S("access was revoked".into()))
        .expression_attribute_values(":f", AttributeValue::N("3".into()))
        .send()
        .await
        .unwrap();
    // Reconnect with OAuth: connected, reason cleared, scheduled again, history kept.
    connect(&stack, org).await.expect("OAuth reconnect");
    let conn = connection(&stack, org, "pagerduty").await.unwrap();
    assert_eq!(conn["status"], "connected");
    assert!(conn.get("status_reason").is_none());
    assert!(conn["due_shard"].is_string());
    assert_eq!(conn["consecutive_failures"], 0);
    assert_eq!(conn["activity_synced_until"], checkpoint);
    assert_eq!(conn["last_sync_at"], synced["last_sync_at"]);
    assert_eq!(partition(&stack, &provider_pk).await.unwrap(), data);

    // Disconnect (data kept, secret scheduled for deletion), then Reconnect with
    // the account's API key: the secret is restored with the key in it.
    let (status, _) = call(
        &stack,
        org,
        &user(org),
        reqwest::Method::DELETE,
        "/api/connections/pagerduty",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(secret(&stack, org, "pagerduty").await.is_none());
    let (status, _) = api_key(&stack, org, "pagerduty", PD_ACCOUNT_TOKEN).await;
    assert_eq!(status, 200);
    let stored = secret(&stack, org, "pagerduty")
        .await
        .expect("the secret is restored");
    assert_eq!(stored["kind"], "api_key");
    assert!(
        stored.get("refresh_token").is_none(),
        "the OAuth token set is replaced"
    );
    let conn = connection(&stack, org, "pagerduty").await.unwrap();
    assert_eq!(conn["status"], "connected");
    assert_eq!(conn["auth_mode"], "api_key");
    assert!(conn.get("disconnected_at").is_none());
    assert_eq!(conn["activity_synced_until"], checkpoint);
    assert_eq!(partition(&stack, &provider_pk).await.unwrap(), data);
    assert_eq!(overview_status(&stack, org, "pagerduty").await, "connected");
    // Due at once, and the next sync works with the key.
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    assert_eq!(
        items_with_prefix(&stack, &provider_pk, "SEAT#")
            .await
            .unwrap()
            .len(),
        stack.sandbox.ground_truth().seats.len()
    );

    // Disconnect again and Reconnect through OAuth: the secret is restored again.
    let (status, _) = call(
        &stack,
        org,
        &user(org),
        reqwest::Method::DELETE,
        "/api/connections/pagerduty",
        None,
    )
    .await;
    assert_eq!(status, 200);
    connect(&stack, org)
        .await
        .expect("OAuth reconnect after a disconnect");
    let stored = secret(&stack, org, "pagerduty").await.expect("restored");
    assert_eq!(stored["kind"], "oauth2");
    assert_eq!(
        connection(&stack, org, "pagerduty").await.unwrap()["auth_mode"],
        "oauth2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sendgrid_keys_are_checked_for_scopes_and_the_invite_form_connects_once() {
    let stack = stack().await;
    let org = "wayne";
    let full = SendGridSandboxKey::full().key;
    let limited = SendGridSandboxKey::without_stats().key;

    // Dashboard connect with a key missing scopes: 422 naming them, nothing stored.
    let (status, text) = api_key(&stack, org, "sendgrid", &limited).await;
    assert_eq!(status, 422);
    assert!(!text.contains(&limited), "the key was echoed");
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"]["code"], "missing_scopes");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stats.read"));
    assert!(secret(&stack, org, "sendgrid").await.is_none());
    assert!(connection(&stack, org, "sendgrid").await.is_none());
    // SendGrid has no OAuth.
    let (status, _) = call(
        &stack,
        org,
        &user(org),
        reqwest::Method::POST,
        "/api/connections/sendgrid/connect",
        None,
    )
    .await;
    assert_eq!(status, 400);

    // The invite: an accessible form listing the required scopes.
    let requester = "it@wayne.example";
    let (url, _) = create_invite(&stack, org, requester, "sendgrid").await;
    let token = token_of(&url);
    let opened = http().get(&url).send().await.unwrap();
    assert_eq!(opened.status(), 200);
    assert_eq!(opened.headers()["referrer-policy"], "no-referrer");
    let page = opened.text().await.unwrap();
    assert!(
        page.contains("<label for=\"api_key\">SendGrid API key</label>"),
        "{page}"
    );
    assert!(page.contains("type=\"password\""), "{page}");
    assert!(page.contains("<form method=\"post\">"), "{page}");
    for scope in ["teammates.read", "stats.read", "user.credits.read"] {
        assert!(page.contains(scope), "{scope}");
    }
    assert!(!page.contains(&token), "the page repeats the token");
    // Opening it again still works: an API-key invite is used by the key, not the visit.
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200);

    // A malformed key and a refused key: the form again with the reason; the
    // invite is not used up and nothing is stored.
    let (status, page) = post_form(&url, "SG.has a space").await;
    assert_eq!(status, 400);
    assert!(
        page.contains("spaces") && page.contains("role=\"alert\""),
        "{page}"
    );
    let (status, page) = post_form(&url, &limited).await;
    assert_eq!(status, 422);
    assert!(!page.contains(&limited), "the refused key was echoed");
    assert!(page.contains("stats.read") && page.contains("not accepted"));
    assert!(page.contains("aria-invalid=\"true\""));
    assert!(secret(&stack, org, "sendgrid").await.is_none());
    assert!(connection(&stack, org, "sendgrid").await.is_none());
    assert!(all_items(&stack)
        .await
        .unwrap()
        .iter()
        .any(|i| i["pk"] == format!("INVITE#{}", sha256_hex(&token))));

    // The right key: connected, a page to close.
    let (status, page) = post_form(&url, &full).await;
    assert_eq!(status, 200);
    assert!(!page.contains(&full), "the page echoed the key");
    assert!(page.contains("SendGrid is connected") && page.contains("close this tab"));
    let stored = secret(&stack, org, "sendgrid").await.expect("the secret");
    assert!(
        stored["api_key"].as_str() == Some(full.as_str()),
        "the secret holds the key"
    );
    let items = all_items(&stack).await.unwrap();
    assert!(
        !table_dump_contains(&items, &full),
        "the key leaked into DynamoDB"
    );
    assert!(!items
        .iter()
        .any(|i| i["pk"].as_str().unwrap().starts_with("INVITE#")));
    let conn = connection(&stack, org, "sendgrid").await.unwrap();
    assert_eq!(conn["status"], "connected");
    assert_eq!(conn["auth_mode"], "api_key");
    assert_eq!(conn["invited_by"], requester);
    let by = conn["connected_by"].as_str().unwrap();
    match conn["vendor_account"].as_str() {
        Some(account) => assert_eq!(by, account),
        None => assert_eq!(by, "invited admin"),
    }
    assert_eq!(overview_status(&stack, org, "sendgrid").await, "connected");

    // Used: the link is refused, with a GET or a POST, and nothing changes.
    let (status, page) = post_form(&url, &full).await;
    assert_eq!(status, 410);
    assert!(page.contains("cannot be used"));
    assert_eq!(http().get(&url).send().await.unwrap().status(), 410);
    assert_eq!(all_items(&stack).await.unwrap(), items);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_routes_need_a_token_and_invite_links_do_not() {
    let stack = stack().await;
    let client = http();
    let base = stack.api_url();
    for (method, path) in [
        (reqwest::Method::POST, "/api/connections/pagerduty/api-key"),
        (reqwest::Method::POST, "/api/connections/pagerduty/invites"),
        (reqwest::Method::DELETE, "/api/connections/pagerduty"),
    ] {
        let resp = client
            .request(method.clone(), format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{method} {path}");
    }
    let token = "b".repeat(43);
    let resp = client
        .get(format!("{base}/connect/invite/{token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 410, "reaches the function without a token");
    let resp = client
        .post(format!("{base}/connect/invite/{token}"))
        .form(&[("api_key", "k")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 410);
}
