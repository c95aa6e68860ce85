//! The audit trail, over real HTTP against the local stack (DynamoDB Local, moto, the
//! sandboxes), with roles on (`ROLE_CLAIM=groups`): every change attempt (connect,
//! reconnect, API key, invite created/used/revoked, settings, sync now, disconnect,
//! purge; done, refused or failed) writes exactly one entry with who, role, what,
//! which app, the outcome and the request id, never a secret; `GET /api/audit` pages
//! it newest first and filters it, for admins only, and its CSV holds the same rows.
//! And a change whose entry cannot be written is not made: a fault injected into the
//! store's client fails every write that carries an audit entry, and each change
//! (settings, sync now, disconnect, invite, purge) is then refused with 500 and leaves
//! every item as it was — which holds only because the change and its entry are one
//! TransactWriteItems.

mod common;

use std::sync::Arc;

use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use seatscope_local::iam::OperationInput;
use seatscope_local::stack::Stack;
use seatscope_sandbox::SendGridSandboxKey;
use serde_json::{json, Value};

/// `method path` as `token`, answered `want`; the one audit entry it wrote.
async fn attempt(
    stack: &Stack,
    seen: &mut usize,
    (method, path, token): (&str, &str, &str),
    body: Option<Value>,
    want: u16,
) -> Value {
    let (status, text) = send_as(stack, method, path, token, body.as_ref()).await;
    assert_eq!(status, want, "{method} {path}: {text}");
    the_one_new_entry(stack, seen, &format!("{method} {path}")).await
}

/// [`send_as`] with an owned body.
async fn call(
    stack: &Stack,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, String) {
    send_as(stack, method, path, token, body.as_ref()).await
}

/// The entries written since `seen` were counted: exactly one, returned.
async fn the_one_new_entry(stack: &Stack, seen: &mut usize, what: &str) -> Value {
    let entries = audit_items(stack).await.expect("Scan");
    assert_eq!(
        entries.len(),
        *seen + 1,
        "{what}: exactly one new audit entry, got {}: {:#?}",
        entries.len() - *seen,
        &entries[..entries.len().saturating_sub(*seen)]
    );
    *seen += 1;
    entries[0].clone()
}

fn check(entry: &Value, action: &str, app: &str, outcome: &str, subject: &str, role: &str) {
    assert_eq!(entry["action"], action, "{entry:#}");
    assert_eq!(entry["provider"], app, "{entry:#}");
    assert_eq!(entry["outcome"], outcome, "{entry:#}");
    assert_eq!(entry["actor"]["subject"], subject, "{entry:#}");
    if !role.is_empty() {
        assert_eq!(entry["actor"]["kind"], "member", "{entry:#}");
        assert_eq!(entry["actor"]["email"], subject, "{entry:#}");
        assert_eq!(entry["actor"]["role"], role, "{entry:#}");
    }
    assert!(
        entry["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{entry:#}"
    );
    let at = time::OffsetDateTime::parse(
        entry["at"].as_str().expect("at"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("an RFC 3339 time");
    // Kept 400 days (DynamoDB TTL on expires_at).
    assert_eq!(
        entry["expires_at"].as_i64(),
        Some(at.unix_timestamp() + 400 * 86_400),
        "{entry:#}"
    );
    match outcome {
        "done" => assert!(entry.get("error_code").is_none(), "{entry:#}"),
        _ => assert!(entry["error_code"].is_string(), "{entry:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_attempt_writes_exactly_one_entry_and_admins_page_filter_and_export_them() {
    let stack = stack_with_roles().await;
    let org = "audit-org-7c2";
    let admin_user = format!("admin@{org}.example");
    let admin = stack.token(org, &admin_user);
    let viewer_user = "viewer@audit.example";
    let viewer = stack.auth.viewer_token(org, viewer_user, 1);
    let key = SendGridSandboxKey::full().key;
    let mut seen = 0;

    // Connect, then Reconnect, PagerDuty through its consent screen.
    connect_to(&stack, org, "pagerduty").await.expect("connect");
    let e = the_one_new_entry(&stack, &mut seen, "connect").await;
    check(&e, "connect", "pagerduty", "done", &admin_user, "admin");
    assert_eq!(e["details"]["auth_mode"], "oauth2", "{e:#}");
    connect_to(&stack, org, "pagerduty")
        .await
        .expect("reconnect");
    let e = the_one_new_entry(&stack, &mut seen, "reconnect").await;
    check(&e, "reconnect", "pagerduty", "done", &admin_user, "admin");
    // Denied at the consent screen: refused, with the vendor's reason.
    let denied = consent_to(&stack, org, "pagerduty", "deny")
        .await
        .expect("consent");
    denied.callback().send().await.expect("callback");
    let e = the_one_new_entry(&stack, &mut seen, "denied consent").await;
    check(
        &e,
        "reconnect",
        "pagerduty",
        "refused",
        &admin_user,
        "admin",
    );
    assert_eq!(e["error_code"], "access_denied");

    // An API key the vendor refuses, then one it accepts.
    let (status, body) = call(
        &stack,
        "POST",
        "/api/connections/sendgrid/api-key",
        &admin,
        Some(json!({"api_key": "SG.not-a-key-it-knows"})),
    )
    .await;
    assert!((400..500).contains(&status), "{status} {body}");
    let e = the_one_new_entry(&stack, &mut seen, "refused key").await;
    check(&e, "api_key", "sendgrid", "refused", &admin_user, "admin");
    let e = attempt(
        &stack,
        &mut seen,
        ("POST", "/api/connections/sendgrid/api-key", &admin),
        Some(json!({ "api_key": key })),
        200,
    )
    .await;
    check(&e, "api_key", "sendgrid", "done", &admin_user, "admin");
    assert_eq!(e["details"]["auth_mode"], "api_key");
    assert!(e["details"]["vendor_account"].is_string(), "{e:#}");
    // The card says what the connection holds: who connected it, the scopes checked.
    let (_, overview) = get_json(&stack, org, "/api/overview")
        .await
        .expect("overview");
    let sendgrid = &card(&overview, "sendgrid")["connection"];
    assert_eq!(sendgrid["connected_by"], admin_user, "{sendgrid:#}");
    assert_eq!(
        sendgrid["scopes"],
        json!(["teammates.read", "stats.read", "user.credits.read"]),
        "{sendgrid:#}"
    );
    let pagerduty = &card(&overview, "pagerduty")["connection"];
    assert!(
        pagerduty["scopes"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("read"))),
        "{pagerduty:#}"
    );

    // Settings: the old and the new values; an invalid value is refused.
    let settings = json!({
        "inactive_days": 45, "grace_days": 7, "exempt_seats": [], "seat_price": 12.5,
        "license_prices": {"Full User": 21.5}, "billing_period": "annual",
        "renewal_date": "2027-03-31", "currency": "EUR"
    });
    let e = attempt(
        &stack,
        &mut seen,
        ("PUT", "/api/apps/pagerduty/settings", &admin),
        Some(settings.clone()),
        200,
    )
    .await;
    check(&e, "settings", "pagerduty", "done", &admin_user, "admin");
    assert_eq!(e["details"]["old"]["inactive_days"], 30, "{e:#}");
    assert_eq!(e["details"]["new"], settings, "{e:#}");
    let e = attempt(
        &stack,
        &mut seen,
        ("PUT", "/api/apps/pagerduty/settings", &admin),
        Some(json!({"inactive_days": 0, "grace_days": 7, "exempt_seats": [], "seat_price": null})),
        400,
    )
    .await;
    check(&e, "settings", "pagerduty", "refused", &admin_user, "admin");

    // Sync now.
    let e = attempt(
        &stack,
        &mut seen,
        ("POST", "/api/connections/pagerduty/sync", &admin),
        None,
        202,
    )
    .await;
    check(&e, "sync_now", "pagerduty", "done", &admin_user, "admin");

    // Invites: created and revoked; created and used by the app's admin with a key.
    let (status, body) = call(
        &stack,
        "POST",
        "/api/connections/pandadoc/invites",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let created: Value = serde_json::from_str(&body).expect("JSON");
    let e = the_one_new_entry(&stack, &mut seen, "invite created").await;
    check(
        &e,
        "invite_created",
        "pandadoc",
        "done",
        &admin_user,
        "admin",
    );
    assert_eq!(e["details"]["invite_id"], created["id"], "{e:#}");
    let e = attempt(
        &stack,
        &mut seen,
        (
            "DELETE",
            &format!(
                "/api/connections/pandadoc/invites/{}",
                created["id"].as_str().expect("id")
            ),
            &admin,
        ),
        None,
        204,
    )
    .await;
    check(
        &e,
        "invite_revoked",
        "pandadoc",
        "done",
        &admin_user,
        "admin",
    );
    assert_eq!(e["details"]["invite_id"], created["id"], "{e:#}");
    let (status, body) = call(
        &stack,
        "POST",
        "/api/connections/sendgrid/invites",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let invite: Value = serde_json::from_str(&body).expect("JSON");
    the_one_new_entry(&stack, &mut seen, "invite created").await;
    let used = http()
        .post(invite["url"].as_str().expect("url"))
        .form(&[("api_key", key.as_str())])
        .send()
        .await
        .expect("an answer");
    assert_eq!(used.status(), 200);
    let e = the_one_new_entry(&stack, &mut seen, "invite used").await;
    let account = e["details"]["vendor_account"]
        .as_str()
        .expect("the vendor account");
    check(&e, "invite_used", "sendgrid", "done", account, "");
    assert_eq!(e["actor"]["kind"], "invitee", "{e:#}");
    assert!(e["actor"].get("role").is_none(), "{e:#}");
    assert_eq!(e["details"]["invited_by"], admin_user, "{e:#}");
    assert_eq!(e["details"]["invite_id"], invite["id"], "{e:#}");
    assert_eq!(e["details"]["reconnect"], true, "{e:#}");

    // A viewer's attempt: refused, recorded with the viewer's role.
    let e = attempt(
        &stack,
        &mut seen,
        ("DELETE", "/api/connections/pagerduty?purge=true", &viewer),
        None,
        403,
    )
    .await;
    check(&e, "purge", "pagerduty", "refused", viewer_user, "viewer");
    assert_eq!(e["error_code"], "admin_role_required");

    // Disconnect keeps the data; purge deletes it and counts what it deleted.
    let e = attempt(
        &stack,
        &mut seen,
        ("DELETE", "/api/connections/pagerduty", &admin),
        None,
        200,
    )
    .await;
    check(&e, "disconnect", "pagerduty", "done", &admin_user, "admin");
    assert_eq!(e["details"]["purge"], false);
    let report = stack.tick().await.expect("tick");
    assert_eq!(report["synced"], 1, "SendGrid syncs: {report}");
    let (status, body) = call(
        &stack,
        "DELETE",
        "/api/connections/sendgrid?purge=true",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let purged: Value = serde_json::from_str(&body).expect("JSON");
    let e = the_one_new_entry(&stack, &mut seen, "purge").await;
    check(&e, "purge", "sendgrid", "done", &admin_user, "admin");
    assert_eq!(
        e["details"]["purged_items"], purged["purged_items"],
        "{e:#}"
    );
    assert!(purged["purged_items"].as_u64().unwrap_or(0) > 1, "{purged}");
    // A disconnect of what is not connected: refused (404).
    let (status, _) = call(&stack, "DELETE", "/api/connections/pandadoc", &admin, None).await;
    assert_eq!(status, 404);
    let e = the_one_new_entry(&stack, &mut seen, "disconnect of nothing").await;
    check(
        &e,
        "disconnect",
        "pandadoc",
        "refused",
        &admin_user,
        "admin",
    );

    // Never a secret: no key, no token in any entry.
    let entries = audit_items(&stack).await.expect("Scan");
    let dump = serde_json::to_string(&entries).expect("JSON");
    assert!(!dump.contains(&key), "an API key in the audit trail");
    for secret in secret_names(&stack).await.expect("ListSecrets") {
        let value = stack
            .secrets
            .get_secret_value()
            .secret_id(&secret)
            .send()
            .await
            .ok()
            .and_then(|v| v.secret_string().map(str::to_string))
            .unwrap_or_default();
        if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&value) {
            for v in fields
                .values()
                .filter_map(Value::as_str)
                .filter(|v| v.len() >= 12)
            {
                assert!(!dump.contains(v), "a secret's value in the audit trail");
            }
        }
    }

    // GET /api/audit: newest first, paged with the cursor, the same entries.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/audit?limit=4&cursor={c}"),
            None => "/api/audit?limit=4".to_string(),
        };
        let (status, body) = call(&stack, "GET", &path, &admin, None).await;
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).expect("JSON");
        let got = page["entries"].as_array().expect("entries").clone();
        assert!(got.len() <= 4);
        paged.extend(got);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let want: Vec<(Value, Value, Value)> = entries
        .iter()
        .map(|e| (e["at"].clone(), e["action"].clone(), e["outcome"].clone()))
        .collect();
    let got: Vec<(Value, Value, Value)> = paged
        .iter()
        .map(|e| (e["at"].clone(), e["action"].clone(), e["outcome"].clone()))
        .collect();
    assert_eq!(got, want, "the pages are the stored entries, newest first");
    assert_eq!(got.len(), seen);
    // Filters.
    for (query, keep) in [
        ("app=pagerduty", ("app", "pagerduty")),
        ("action=settings", ("action", "settings")),
    ] {
        let (status, body) =
            call(&stack, "GET", &format!("/api/audit?{query}"), &admin, None).await;
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).expect("JSON");
        let got = page["entries"].as_array().expect("entries");
        let expected = paged.iter().filter(|e| e[keep.0] == keep.1).count();
        assert!(expected >= 2, "{query}");
        assert_eq!(got.len(), expected, "{query}: {page:#}");
        assert!(got.iter().all(|e| e[keep.0] == keep.1), "{query}");
    }
    for bad in [
        "app=jira",
        "action=",
        "limit=0",
        "cursor=%25%25",
        "cursor=00000",
    ] {
        let (status, body) = call(&stack, "GET", &format!("/api/audit?{bad}"), &admin, None).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // CSV: a header and one row per entry, newest first.
    let resp = http()
        .get(format!("{}/api/audit/export.csv", stack.api_url()))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("an answer");
    assert_eq!(resp.status(), 200);
    let csv = resp.text().await.expect("CSV");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    assert_eq!(rows.len(), seen, "{csv}");
    assert_eq!(&rows[0][1], "disconnect");
    assert_eq!(&rows[0][3], "refused");
    // The audit trail is for admins.
    for path in ["/api/audit", "/api/audit/export.csv"] {
        let (status, body) = call(&stack, "GET", path, &viewer, None).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("admin_role_required"), "{body}");
    }
    // Reading writes no entry.
    assert_eq!(audit_items(&stack).await.expect("Scan").len(), seen);
}

/// The item's partition key, where `input`'s operation writes an audit entry.
fn writes_an_audit_entry(input: &OperationInput) -> bool {
    let audit = |item: Option<&std::collections::HashMap<String, AttributeValue>>| {
        item.and_then(|i| i.get("pk"))
            .and_then(|v| v.as_s().ok())
            .is_some_and(|pk| pk.ends_with("#AUDIT"))
    };
    if let Some(t) = input.downcast_ref::<TransactWriteItemsInput>() {
        return t
            .transact_items()
            .iter()
            .any(|i| audit(i.put().map(|p| p.item())) || audit(i.update().map(|u| u.key())));
    }
    if let Some(p) = input.downcast_ref::<PutItemInput>() {
        return audit(p.item());
    }
    if let Some(u) = input.downcast_ref::<UpdateItemInput>() {
        return audit(u.key());
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_entry_cannot_be_written_is_not_made() {
    let stack = stack_with_roles().await;
    let org = "audit-fault-9e0";
    let admin = stack.token(org, &format!("admin@{org}.example"));
    let key = SendGridSandboxKey::full().key;

    // A connection, synced, with settings, and an invites index (created, revoked).
    let (status, body) = call(
        &stack,
        "POST",
        "/api/connections/sendgrid/api-key",
        &admin,
        Some(json!({ "api_key": key })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.tick().await.expect("tick")["synced"], 1);
    let old_settings =
        json!({"inactive_days": 45, "grace_days": 7, "exempt_seats": [], "seat_price": 12.5});
    let (status, _) = call(
        &stack,
        "PUT",
        "/api/apps/sendgrid/settings",
        &admin,
        Some(old_settings.clone()),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = call(
        &stack,
        "POST",
        "/api/connections/sendgrid/invites",
        &admin,
        None,
    )
    .await;
    let invite: Value = serde_json::from_str(&body).expect("JSON");
    let (status, _) = call(
        &stack,
        "DELETE",
        &format!(
            "/api/connections/sendgrid/invites/{}",
            invite["id"].as_str().expect("id")
        ),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let before = every_item(&stack).await.expect("Scan");
    let entries_before = audit_items(&stack).await.expect("Scan").len();
    assert_eq!(entries_before, 4);

    // The store cannot write an audit entry: every change is refused and none is made.
    stack
        .calls
        .inject_fault(Some(Arc::new(|_, input| writes_an_audit_entry(input))));
    let new_settings =
        json!({"inactive_days": 60, "grace_days": 0, "exempt_seats": [], "seat_price": 1});
    for (method, path, body) in [
        ("PUT", "/api/apps/sendgrid/settings", Some(new_settings)),
        ("POST", "/api/connections/sendgrid/sync", None),
        ("POST", "/api/connections/sendgrid/invites", None),
        ("DELETE", "/api/connections/sendgrid", None),
        ("DELETE", "/api/connections/sendgrid?purge=true", None),
    ] {
        let (status, text) = call(&stack, method, path, &admin, body).await;
        assert_eq!(status, 500, "{method} {path}: {text}");
        assert!(!text.contains("#AUDIT") && !text.contains(&key), "{text}");
    }
    assert_eq!(
        every_item(&stack).await.expect("Scan"),
        before,
        "a change was made without its audit entry"
    );
    let (status, body) = call(&stack, "GET", "/api/apps/sendgrid/settings", &admin, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON")["inactive_days"],
        45
    );
    let (_, body) = call(
        &stack,
        "GET",
        "/api/connections/sendgrid/invites",
        &admin,
        None,
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON")["invites"],
        json!([])
    );

    // The store mended: the same change is made, with its entry.
    stack.calls.inject_fault(None);
    let (status, body) = call(
        &stack,
        "POST",
        "/api/connections/sendgrid/sync",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let entries = audit_items(&stack).await.expect("Scan");
    assert_eq!(entries.len(), entries_before + 1);
    assert_eq!(
        (&entries[0]["action"], &entries[0]["outcome"]),
        (&json!("sync_now"), &json!("done"))
    );
}
