//! PandaDoc at connect time, over real HTTP against the sandbox: a consenting user who
//! is not an organization admin (the member list is for admins), and a plan without API
//! access (PandaDoc's API is an Enterprise feature), are each refused at the callback
//! with a reason that says exactly that and what to do, instead of a connection whose
//! first sync fails. Nothing is stored; the audit trail records the refusal.

mod common;

use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::pandadoc::PandaDocConfig;

async fn stack(pandadoc: PandaDocConfig) -> Stack {
    Stack::start(StackOptions {
        pandadoc: PandaDocConfig {
            users: 12,
            days: 3,
            ..pandadoc
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts")
}

/// Approves PandaDoc's consent screen and follows the callback: where it sends the
/// browser.
async fn connect_pandadoc(stack: &Stack, org: &str) -> String {
    let consent = consent_to(stack, org, "pandadoc", "approve")
        .await
        .expect("the consent screen");
    let resp = consent.callback().send().await.expect("the callback");
    location(&resp).expect("the callback redirects")
}

async fn refused_with(stack: &Stack, org: &str, reason: &str, says: &str) {
    let to = connect_pandadoc(stack, org).await;
    assert_eq!(
        query_value(&format!("http://x{to}"), "result").as_deref(),
        Some("error"),
        "{to}"
    );
    assert_eq!(
        query_value(&format!("http://x{to}"), "reason").as_deref(),
        Some(reason),
        "{to}"
    );
    let message = query_value(&format!("http://x{to}"), "message").unwrap_or_default();
    assert!(message.contains(says), "{message}");
    // Nothing connected, no secret kept for the org.
    let (_, overview) = get_json(stack, org, "/api/overview")
        .await
        .expect("overview");
    assert_eq!(
        card(&overview, "pandadoc")["connection"]["status"],
        "not_connected",
        "{overview:#}"
    );
    assert!(secret_names(stack)
        .await
        .expect("ListSecrets")
        .iter()
        .all(|n| !n.contains(&format!("/{org}/"))));
    // The attempt is in the audit trail, refused with the reason.
    let entries = audit_items(stack).await.expect("Scan");
    assert_eq!(
        (
            &entries[0]["action"],
            &entries[0]["outcome"],
            &entries[0]["error_code"]
        ),
        (
            &serde_json::json!("connect"),
            &serde_json::json!("refused"),
            &serde_json::json!(reason)
        ),
        "{entries:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_admin_rights_is_told_to_connect_as_an_admin() {
    let stack = stack(PandaDocConfig {
        consent_as_admin: false,
        ..PandaDocConfig::default()
    })
    .await;
    refused_with(
        &stack,
        "pd-member-org",
        "admin_required",
        "is not an organization admin",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_without_api_access_is_told_so() {
    let stack = stack(PandaDocConfig {
        api_access: false,
        ..PandaDocConfig::default()
    })
    .await;
    refused_with(
        &stack,
        "pd-plan-org",
        "api_access_missing",
        "Enterprise plan",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_on_an_api_plan_connects() {
    let stack = stack(PandaDocConfig::default()).await;
    let to = connect_pandadoc(&stack, "pd-admin-org").await;
    assert!(to.contains("result=connected"), "{to}");
}
