//! A Reconnect that lands on another vendor account (issue 15, part 6): it warns and
//! waits instead of replacing, and the history is never mixed — the admin keeps the old
//! account's data apart (an archive), purges it, or keeps the old account. End to end
//! against DynamoDB Local, moto and the PagerDuty sandbox over real HTTP: the "other
//! account" is a second sandbox (another seed, another subdomain) on the same vendor URL.

mod common;

use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::PagerDutyConfig;
use serde_json::{json, Value};

const ORG: &str = "initech";
const FIRST_ACCOUNT: &str = "seatscope-sandbox";
const OTHER_ACCOUNT: &str = "initech-eu";
/// A SendGrid seed whose account (owner username) is neither the default seed's nor seed 7's.
const THIRD_SENDGRID_SEED: u64 = 8;

fn first_account() -> PagerDutyConfig {
    PagerDutyConfig {
        users: 8,
        days: 10,
        events_per_day: 40,
        ..PagerDutyConfig::default()
    }
}

fn other_account() -> PagerDutyConfig {
    PagerDutyConfig {
        seed: 4242,
        users: 6,
        days: 10,
        events_per_day: 30,
        subdomain: OTHER_ACCOUNT.into(),
        ..PagerDutyConfig::default()
    }
}

async fn stack() -> Stack {
    Stack::start(StackOptions {
        sandbox: first_account(),
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts")
}

fn app_pk() -> String {
    format!("ORG#{ORG}#APP#pagerduty")
}

/// Every item of a partition (all pages), sorted by sort key.
async fn partition(stack: &Stack, pk: &str) -> Vec<Value> {
    common::partition(stack, pk).await.unwrap()
}

/// An admin's choice on the held account change of `provider`: `Some(old_data)` switches
/// (POST), `None` keeps the current account (DELETE). The status and the body.
async fn decide(stack: &Stack, provider: &str, old_data: Option<&str>) -> (u16, Value) {
    let path = format!("/api/connections/{provider}/account-change");
    let (status, body) = match old_data {
        Some(choice) => {
            send_as_admin(
                stack,
                ORG,
                reqwest::Method::POST,
                &path,
                Some(json!({ "old_data": choice })),
            )
            .await
        }
        None => send_as_admin(stack, ORG, reqwest::Method::DELETE, &path, None).await,
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The items without their partition key: what a move must keep unchanged.
fn without_pk(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .map(|i| {
            let mut i = i.clone();
            i.as_object_mut().unwrap().remove("pk");
            i
        })
        .collect()
}

async fn connection(stack: &Stack) -> Value {
    items_with_prefix(stack, &format!("ORG#{ORG}"), "CONN#pagerduty")
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("the connection item")
}

/// The secret's JSON, or None when it is absent or scheduled for deletion.
async fn secret(stack: &Stack, name: &str) -> Option<Value> {
    let out = stack
        .secrets
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .ok()?;
    Some(serde_json::from_str(out.secret_string()?).unwrap())
}

fn seat_ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| i["sk"].as_str()?.strip_prefix("SEAT#").map(str::to_string))
        .collect()
}

/// Connect the first account and sync it; then the vendor URL serves another account
/// and an admin reconnects through OAuth: the callback says what happened.
async fn connected_then_reconnected_to_another_account(stack: &mut Stack) -> String {
    connect(stack, ORG).await.expect("OAuth connect");
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    assert_eq!(connection(stack).await["vendor_account_id"], FIRST_ACCOUNT);
    stack
        .sandbox
        .restart_as(other_account())
        .await
        .expect("the other account's sandbox starts on the same URL");
    let consent = consent(stack, ORG, "approve").await.unwrap();
    let resp = consent.callback().send().await.unwrap();
    location(&resp).unwrap()
}

async fn connection_card(stack: &Stack) -> Value {
    let (status, overview) = get_json(stack, ORG, "/api/overview").await.unwrap();
    assert_eq!(status, 200, "{overview}");
    card(&overview, "pagerduty")["connection"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_to_another_account_waits_then_keeps_the_old_data_apart() {
    let mut stack = stack().await;
    let first_seats = stack.sandbox.ground_truth().seats;
    let secret_name = format!("seatscope/dev/{ORG}/pagerduty");
    connect(&stack, ORG).await.expect("OAuth connect");
    assert_eq!(stack.tick().await.unwrap()["synced"], 1);
    let first_data = partition(&stack, &app_pk()).await;
    let first_secret = secret(&stack, &secret_name)
        .await
        .expect("the first secret");
    let before = connection(&stack).await;
    assert_eq!(before["vendor_account_id"], FIRST_ACCOUNT);
    assert_eq!(seat_ids(&first_data).len(), first_seats.len());

    // The same vendor URL now serves another account; an admin reconnects.
    stack.sandbox.restart_as(other_account()).await.unwrap();
    let consent = consent(&stack, ORG, "approve").await.unwrap();
    let to = location(&consent.callback().send().await.unwrap()).unwrap();
    assert_eq!(
        query_value(&format!("http://x{to}"), "reason").as_deref(),
        Some("vendor_account_changed"),
        "{to}"
    );
    let message = query_value(&format!("http://x{to}"), "message").unwrap();
    assert!(
        message.contains(FIRST_ACCOUNT) && message.contains(OTHER_ACCOUNT),
        "{message}"
    );
    // Nothing was replaced: the connection, its secret and its data are the first
    // account's; the new grant waits in a secret of its own.
    let held = connection(&stack).await;
    assert_eq!(held["vendor_account_id"], FIRST_ACCOUNT);
    assert_eq!(held["secret_name"], before["secret_name"]);
    assert_eq!(
        held["activity_synced_until"],
        before["activity_synced_until"]
    );
    let pending = &held["pending_account_change"];
    assert_eq!(pending["vendor_account_id"], OTHER_ACCOUNT);
    let pending_secret = pending["secret_name"].as_str().unwrap().to_string();
    assert!(
        pending_secret.starts_with(&format!("{secret_name}/acct-")),
        "{pending_secret}"
    );
    assert_eq!(secret(&stack, &secret_name).await.unwrap(), first_secret);
    assert_eq!(
        secret(&stack, &pending_secret).await.unwrap()["kind"],
        "oauth2"
    );
    assert_eq!(partition(&stack, &app_pk()).await, first_data);
    // The card says so (and never where the credentials are).
    let view = connection_card(&stack).await;
    assert_eq!(
        view["pending_account_change"]["vendor_account_id"],
        OTHER_ACCOUNT
    );
    assert_eq!(
        view["pending_account_change"]["current_account_id"],
        FIRST_ACCOUNT
    );
    assert!(!view.to_string().contains("acct-"), "{view}");
    // The held reconnect is in the audit trail.
    let entries = audit_items(&stack).await.unwrap();
    let held_entry = entries
        .iter()
        .find(|e| e["action"] == "reconnect")
        .expect("a reconnect entry");
    assert_eq!(held_entry["details"]["account_change"], "held");
    assert_eq!(held_entry["outcome"], "done");

    // A choice that is neither is refused, and changes nothing.
    let (status, body) = decide(&stack, "pagerduty", Some("merge")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(partition(&stack, &app_pk()).await, first_data);

    // The org's people snapshot joined the first account's seats (names, emails).
    let org_pk = format!("ORG#{ORG}");
    let people = || items_with_prefix(&stack, &org_pk, "PEOPLE");
    assert!(!people().await.unwrap().is_empty(), "the sync stored one");
    // Keep the old account's data apart.
    let (status, body) = decide(&stack, "pagerduty", Some("keep_apart")).await;
    assert_eq!(status, 200, "{body}");
    let switched = body;
    assert_eq!(switched["old_data"], "keep_apart");
    assert_eq!(switched["vendor_account_id"], OTHER_ACCOUNT);
    assert_eq!(switched["previous_account_id"], FIRST_ACCOUNT);
    assert_eq!(switched["items"], first_data.len());
    let archive_id = switched["archive_id"].as_str().unwrap();
    // Every item moved unchanged into the archive; the live partition starts empty.
    let archive = partition(
        &stack,
        &format!("ORG#{ORG}#APP#pagerduty#ARCHIVE#{archive_id}"),
    )
    .await;
    assert_eq!(without_pk(&archive), without_pk(&first_data));
    assert_eq!(partition(&stack, &app_pk()).await, Vec::<Value>::new());
    assert!(
        people().await.unwrap().is_empty(),
        "no snapshot keeps the old account's people"
    );
    let switched_conn = connection(&stack).await;
    assert_eq!(switched_conn["vendor_account_id"], OTHER_ACCOUNT);
    assert_eq!(switched_conn["secret_name"], pending_secret.as_str());
    assert!(switched_conn.get("pending_account_change").is_none());
    for gone in [
        "activity_synced_until",
        "seats_synced_at",
        "last_sync_at",
        "last_sync_summary",
    ] {
        assert!(switched_conn.get(gone).is_none(), "{gone} is reset");
    }
    assert!(switched_conn["due_shard"].is_string(), "scheduled again");
    assert_eq!(switched_conn["archives"][0]["id"], archive_id);
    assert_eq!(
        switched_conn["archives"][0]["vendor_account_id"],
        FIRST_ACCOUNT
    );
    assert_eq!(switched_conn["archives"][0]["items"], first_data.len());
    assert!(
        secret(&stack, &secret_name).await.is_none(),
        "the first account's secret is scheduled for deletion"
    );
    // Deciding again finds nothing pending.
    let (status, body) = decide(&stack, "pagerduty", Some("purge")).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nothing to decide"));

    // The next sync reads the other account only: its seats, none of the first's.
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    let other_truth: Vec<String> = stack
        .sandbox
        .ground_truth()
        .seats
        .iter()
        .map(|s| s.id.clone())
        .collect();
    let mut live = seat_ids(&partition(&stack, &app_pk()).await);
    live.sort();
    let mut want = other_truth.clone();
    want.sort();
    assert_eq!(live, want);
    assert!(first_seats.iter().all(|s| !live.contains(&s.id)));
    let view = connection_card(&stack).await;
    assert_eq!(view["vendor_account_id"], OTHER_ACCOUNT);
    assert_eq!(view["archives"][0]["vendor_account_id"], FIRST_ACCOUNT);
    let entries = audit_items(&stack).await.unwrap();
    let decided = entries
        .iter()
        .find(|e| e["action"] == "account_change" && e["outcome"] == "done")
        .expect("the choice's entry");
    assert_eq!(decided["details"]["old_data"], "keep_apart");
    assert_eq!(decided["details"]["previous_account_id"], FIRST_ACCOUNT);

    // A purge on disconnect deletes the archive too.
    let (status, body) = send_as_admin(
        &stack,
        ORG,
        reqwest::Method::DELETE,
        "/api/connections/pagerduty?purge=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        partition(
            &stack,
            &format!("ORG#{ORG}#APP#pagerduty#ARCHIVE#{archive_id}")
        )
        .await,
        Vec::<Value>::new()
    );
    assert_eq!(partition(&stack, &app_pk()).await, Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_can_keep_the_old_account_or_purge_its_data_and_settings_stay() {
    let mut stack = stack().await;
    let secret_name = format!("seatscope/dev/{ORG}/pagerduty");
    let to = connected_then_reconnected_to_another_account(&mut stack).await;
    assert!(to.contains("reason=vendor_account_changed"), "{to}");
    let before = connection(&stack).await;
    let first_data = partition(&stack, &app_pk()).await;
    let pending_secret = before["pending_account_change"]["secret_name"]
        .as_str()
        .unwrap()
        .to_string();

    // Keep the old account: nothing of it changes, the held secret goes.
    let (status, body) = decide(&stack, "pagerduty", None).await;
    assert_eq!(status, 200, "{body}");
    let kept = connection(&stack).await;
    assert!(kept.get("pending_account_change").is_none());
    assert_eq!(kept["vendor_account_id"], FIRST_ACCOUNT);
    assert_eq!(kept["secret_name"], before["secret_name"]);
    assert!(kept["due_shard"].is_string());
    assert!(secret(&stack, &pending_secret).await.is_none());
    assert!(secret(&stack, &secret_name).await.is_some());
    assert_eq!(partition(&stack, &app_pk()).await, first_data);
    let (status, _) = decide(&stack, "pagerduty", None).await;
    assert_eq!(status, 409, "nothing pending any more");

    // The app's settings are the org's, not the account's: they stay.
    let (status, body) = send_as_admin(
        &stack,
        ORG,
        reqwest::Method::PUT,
        "/api/apps/pagerduty/settings",
        Some(json!({"inactive_days": 60, "grace_days": 7, "exempt_seats": [], "seat_price": 21.0})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let settings = items_with_prefix(&stack, &app_pk(), "SETTINGS")
        .await
        .unwrap();
    assert_eq!(settings.len(), 1);

    // Reconnect again (the held secret is restored), then purge the old data.
    let consent = consent(&stack, ORG, "approve").await.unwrap();
    let to = location(&consent.callback().send().await.unwrap()).unwrap();
    assert!(to.contains("reason=vendor_account_changed"), "{to}");
    assert!(secret(&stack, &pending_secret).await.is_some());
    let (status, body) = decide(&stack, "pagerduty", Some("purge")).await;
    assert_eq!(status, 200, "{body}");
    let switched = body;
    assert_eq!(switched["old_data"], "purge");
    assert_eq!(switched["archive_id"], Value::Null);
    let left = partition(&stack, &app_pk()).await;
    assert_eq!(
        left.iter().map(|i| i["sk"].clone()).collect::<Vec<_>>(),
        vec![json!("SETTINGS")]
    );
    assert_eq!(switched["items"], partition_len_before(&first_data));
    let conn = connection(&stack).await;
    assert_eq!(conn["vendor_account_id"], OTHER_ACCOUNT);
    assert!(conn.get("archives").is_none());
    let report = stack.tick().await.unwrap();
    assert_eq!(report["synced"], 1, "{report}");
    let (status, app) = get_json(&stack, ORG, "/api/apps/pagerduty").await.unwrap();
    assert_eq!(status, 200, "{app}");
    assert_eq!(
        app["settings"]["inactive_days"], 60,
        "the settings survived the purge"
    );
}

/// The items a purge deletes: everything the first account synced (the settings were
/// saved after it and stay).
fn partition_len_before(first_data: &[Value]) -> usize {
    first_data.iter().filter(|i| i["sk"] != "SETTINGS").count()
}

/// `POST /api/connections/sendgrid/api-key` with `key`, as the org's admin.
async fn sendgrid_key(stack: &Stack, key: &str) -> (u16, Value) {
    let (status, body) = send_as_admin(
        stack,
        ORG,
        reqwest::Method::POST,
        "/api/connections/sendgrid/api-key",
        Some(json!({ "api_key": key })),
    )
    .await;
    (status, serde_json::from_str(&body).unwrap())
}

async fn sendgrid_connection(stack: &Stack) -> Value {
    items_with_prefix(stack, &format!("ORG#{ORG}"), "CONN#sendgrid")
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("the SendGrid connection")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_or_an_invite_of_another_account_is_held_for_the_admin() {
    let mut stack = stack().await;
    let key = seatscope_sandbox::SendGridSandboxKey::full().key;
    let (status, body) = sendgrid_key(&stack, &key).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("connected")),
        "{body}"
    );
    let first = sendgrid_connection(&stack).await;
    let first_account = first["vendor_account_id"].as_str().unwrap().to_string();
    assert_eq!(body["vendor_account"], first_account.as_str());

    // The same key of another SendGrid account (seed 7: another company and owner).
    stack
        .sendgrid
        .restart_as(seatscope_sandbox::SendGridConfig {
            seed: 7,
            ..stack_sendgrid_config()
        })
        .await
        .unwrap();
    let (status, body) = sendgrid_key(&stack, &key).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "account_change_pending");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(&first_account), "{message}");
    assert!(!body.to_string().contains(&key), "the key is never echoed");
    let held = sendgrid_connection(&stack).await;
    assert_eq!(held["vendor_account_id"], first_account.as_str());
    let other_account = held["pending_account_change"]["vendor_account_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(other_account, first_account);
    assert!(message.contains(&other_account), "{message}");
    assert_eq!(held["secret_name"], first["secret_name"]);

    // A key of a third account replaces the hold; the replaced hold's secret goes.
    let replaced_secret = held["pending_account_change"]["secret_name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(secret(&stack, &replaced_secret).await.is_some());
    for seed in [THIRD_SENDGRID_SEED, 7] {
        stack
            .sendgrid
            .restart_as(seatscope_sandbox::SendGridConfig {
                seed,
                ..stack_sendgrid_config()
            })
            .await
            .unwrap();
        let (status, body) = sendgrid_key(&stack, &key).await;
        assert_eq!(status, 202, "{body}");
        let third = sendgrid_connection(&stack).await["pending_account_change"].clone();
        if seed == THIRD_SENDGRID_SEED {
            let id = third["vendor_account_id"].as_str().unwrap();
            assert!(id != other_account && id != first_account, "{id}");
            assert!(
                secret(&stack, &replaced_secret).await.is_none(),
                "the replaced hold's secret is scheduled for deletion"
            );
        } else {
            // Back to the other account for the rest (its secret restored).
            assert_eq!(third["vendor_account_id"], other_account.as_str());
            assert!(secret(&stack, &replaced_secret).await.is_some());
        }
    }

    // Kept; then the app's admin uses an invite link with the other account's key:
    // the invite is used, the key held, and the page says the org's admin decides.
    let (status, _) = decide(&stack, "sendgrid", None).await;
    assert_eq!(status, 200);
    let (status, body) = send_as_admin(
        &stack,
        ORG,
        reqwest::Method::POST,
        "/api/connections/sendgrid/invites",
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let url = serde_json::from_str::<Value>(&body).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = http()
        .post(&url)
        .form(&[("api_key", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("waiting for the organization"), "{page}");
    assert!(
        page.contains(&other_account) && !page.contains(&key),
        "{page}"
    );
    let held = sendgrid_connection(&stack).await;
    assert_eq!(held["vendor_account_id"], first_account.as_str());
    assert_eq!(
        held["pending_account_change"]["vendor_account_id"],
        other_account.as_str()
    );
    let entry = audit_items(&stack)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e["action"] == "invite_used")
        .expect("the invite's entry");
    assert_eq!(entry["details"]["account_change"], "held");
    // The switch works from an invite's hold as from the admin's own.
    let (status, body) = decide(&stack, "sendgrid", Some("purge")).await;
    assert_eq!(status, 200, "{body}");
    let conn = sendgrid_connection(&stack).await;
    assert_eq!(conn["vendor_account_id"], other_account.as_str());
    assert_eq!(conn["invited_by"], format!("admin@{ORG}.example"));
}

fn stack_sendgrid_config() -> seatscope_sandbox::SendGridConfig {
    StackOptions::default().sendgrid
}
