//! The sample events in tests/events/ (the files `sam local invoke -e` takes) fed
//! to each handler against the local stack: they parse, and each handler answers
//! them the way API Gateway / EventBridge would see it.

use std::path::PathBuf;

use seatscope_core::domain::catalog::AuthMode;
use seatscope_core::domain::{rfc3339, Invite, OrgId};
use seatscope_core::ops::connect;
use seatscope_core::store::ConnectionGrant;
use seatscope_core::vault::Credentials;
use seatscope_local::stack::{Stack, StackOptions};
use serde_json::Value;

fn event(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn request(name: &str) -> lambda_http::Request {
    lambda_http::request::from_str(&event(name))
        .unwrap_or_else(|e| panic!("{name} is not an API Gateway v2 event: {e}"))
}

async fn body_json(resp: lambda_http::Response<lambda_http::Body>) -> (u16, Value) {
    let status = resp.status().as_u16();
    let bytes: &[u8] = resp.body().as_ref();
    (status, serde_json::from_slice(bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_event_is_handled_by_its_function() {
    let stack = Stack::start(StackOptions::default()).await.expect("stack");
    let deps = &stack.deps;
    let demo = OrgId::parse("org-demo").unwrap();

    // connect-start: the claims name org-demo; the answer is the vendor's consent URL.
    let (status, body) = body_json(
        connect_start::handle(deps, request("connect-start.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["authorize_url"]
        .as_str()
        .unwrap()
        .starts_with(&stack.sandbox.base_url()));

    // oauth-callback with a state we never issued: a 400 page, nothing written.
    let resp = oauth_callback::handle(deps, request("oauth-callback.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = oauth_callback::handle(deps, request("oauth-callback-denied.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // dashboard-api: each route answers for org-demo (not connected yet).
    let (status, body) = body_json(
        dashboard_api::handle(deps, request("dashboard-overview.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["org"], "org-demo");
    assert_eq!(body["apps"][0]["connection"]["status"], "not_connected");
    let (status, body) = body_json(
        dashboard_api::handle(deps, request("dashboard-app.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "pagerduty");
    let (status, body) = body_json(
        dashboard_api::handle(deps, request("dashboard-seats.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["inactive_days"], 30);
    // The sync history of a connection never synced: an empty page.
    let (status, body) = body_json(
        dashboard_api::handle(deps, request("dashboard-runs.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"provider": "pagerduty", "runs": [], "next_cursor": null})
    );
    // People across apps of an org with no connection: no one, and the filters echoed.
    let (status, body) = body_json(
        dashboard_api::handle(deps, request("dashboard-people.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["people"], serde_json::json!([]), "{body}");
    assert_eq!(body["total"], 0, "{body}");
    // Sync now on a connection that does not exist: 404, not a 500.
    let (status, body) = body_json(
        dashboard_api::handle(deps, request("dashboard-sync-now.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // No authorizer claims: 401 from the function itself.
    let (status, body) = body_json(
        dashboard_api::handle(deps, request("dashboard-overview-no-claims.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");

    // dashboard-api: the page, a file of it and the sign-in settings need no claims.
    let resp = dashboard_api::handle(deps, request("dashboard-page.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let resp = dashboard_api::handle(deps, request("dashboard-asset.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, body) = body_json(
        dashboard_api::handle(deps, request("dashboard-config.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["oidc"]["issuer"].is_string(), "{body}");
    // Settings are saved for org-demo and echoed.
    let (status, body) = body_json(
        dashboard_api::handle(deps, request("dashboard-settings-put.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["inactive_days"], 60);
    assert_eq!(body["exempt_seats"][0], "PABC123");
    // An export before any sync: the header row only.
    let resp = dashboard_api::handle(deps, request("dashboard-export.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csv = std::str::from_utf8(resp.body().as_ref())
        .unwrap()
        .to_string();
    assert_eq!(
        csv.trim_end(),
        seatscope_core::ops::export::SEAT_COLUMNS.join(",")
    );

    // scheduled-sync: the EventBridge event runs a tick (nothing is due).
    let payload: Value = serde_json::from_str(&event("scheduled-sync.json")).unwrap();
    assert_eq!(payload["detail-type"], "Scheduled Event");
    let report = scheduled_sync::handle(
        deps,
        lambda_runtime::LambdaEvent::new(
            serde_json::from_value(payload).unwrap(),
            lambda_runtime::Context::default(),
        ),
    )
    .await
    .expect("tick");
    let scheduled_sync::SyncResponse::Tick(report) = report else {
        panic!("the scheduled event was handled as an SQS batch");
    };
    assert_eq!(report.due, 0);

    // scheduled-sync: the SQS event (one sync request) is a worker batch; the org has
    // no connection, so nothing runs and no message is reported as failed.
    let payload: Value = serde_json::from_str(&event("scheduled-sync-sqs.json")).unwrap();
    let response = scheduled_sync::handle(
        deps,
        lambda_runtime::LambdaEvent::new(
            serde_json::from_value(payload).unwrap(),
            lambda_runtime::Context::default(),
        ),
    )
    .await
    .expect("sqs batch");
    let scheduled_sync::SyncResponse::Batch(batch) = &response else {
        panic!("the SQS event was handled as a tick");
    };
    assert_eq!(batch.report.skipped, 1, "{:?}", batch.report);
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": []}),
        "exactly the partial-batch response Lambda reads"
    );

    // connect-start, API key: the sandbox refuses the example key → 422 with the
    // vendor's reason, nothing stored, the key not echoed.
    let resp = connect_start::handle(deps, request("connect-api-key.json"))
        .await
        .unwrap();
    let (status, body) = body_json(resp).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "credentials_refused");
    assert!(!body.to_string().contains("u+EXAMPLE"));
    assert!(deps
        .store
        .connection(&demo, "pagerduty")
        .await
        .unwrap()
        .is_none());

    // connect-start, invite link: 201 with a link on the API's own origin.
    let (status, body) = body_json(
        connect_start::handle(deps, request("invite-create.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/connect/invite/", stack.api_url())));
    assert!(body["expires_at"].is_string());

    // The events' tokens are not ones we issued: store invites under their hashes.
    let now = stack.now();
    for (token, provider) in [
        ("sam-local-example-invite-oauth-0123456789ab", "pagerduty"),
        ("sam-local-example-invite-apikey-123456789ab", "sendgrid"),
    ] {
        deps.store
            .create_invite(
                &Invite {
                    org_id: demo.clone(),
                    provider: provider.into(),
                    created_by: "user-123".into(),
                    created_at: rfc3339(now),
                    expires_at: (now + time::Duration::days(7)).unix_timestamp(),
                },
                &connect::state_hash(token),
                &seatscope_core::domain::audit::AuditScope::tool(
                    &demo,
                    seatscope_core::domain::audit::Action::InviteCreated,
                    now,
                )
                .done(Default::default()),
            )
            .await
            .unwrap();
    }
    // invite-open (no authorizer): a page with a "Continue" button; opening uses
    // nothing up (link previews), invite-continue → 302 to the consent page; then used up.
    for _ in 0..2 {
        let resp = connect_start::handle(deps, request("invite-open.json"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let page = std::str::from_utf8(resp.body().as_ref())
            .unwrap()
            .to_string();
        assert!(page.contains("Continue to PagerDuty"), "{page}");
    }
    let resp = connect_start::handle(deps, request("invite-continue.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let to = resp.headers()["location"].to_str().unwrap();
    assert!(to.starts_with(&stack.sandbox.base_url()), "{to}");
    let resp = connect_start::handle(deps, request("invite-continue.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 410);
    // invite-submit-key (a base64 form body, as HTTP APIs send it): SendGrid refuses
    // the example key → the form again with the reason; the invite stays usable.
    let resp = connect_start::handle(deps, request("invite-submit-key.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = std::str::from_utf8(resp.body().as_ref())
        .unwrap()
        .to_string();
    assert!(
        page.contains("not accepted") && page.contains("SendGrid"),
        "{page}"
    );
    assert!(!page.contains("SG.example-key"));
    assert!(deps
        .store
        .invite(
            &connect::state_hash("sam-local-example-invite-apikey-123456789ab"),
            now
        )
        .await
        .unwrap()
        .is_some());

    // dashboard-disconnect (?purge=true) of a connection org-demo has: gone, with its item.
    let secret_name = deps.vault.secret_name("org-demo", "pagerduty");
    deps.vault
        .put(
            &secret_name,
            &Credentials::ApiKey("example-key".to_string().into()),
        )
        .await
        .unwrap();
    deps.store
        .save_connection(
            &ConnectionGrant {
                org: &demo,
                provider: "pagerduty",
                auth_mode: AuthMode::ApiKey,
                secret_name: &secret_name,
                connected_by: "user-123",
                invited_by: None,
                vendor_account: None,
                vendor_account_id: None,
                scopes: None,
                now,
            },
            &seatscope_core::domain::audit::AuditScope::tool(
                &demo,
                seatscope_core::domain::audit::Action::ApiKey,
                now,
            )
            .done(Default::default()),
        )
        .await
        .unwrap();
    // dashboard-account-change: no connect is waiting on another vendor account → 409,
    // nothing changed (tests/tests/account_change.rs plays the switch itself).
    let (status, body) = body_json(
        dashboard_api::handle(deps, request("dashboard-account-change.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no connect of PagerDuty is waiting"),
        "{body}"
    );
    let (status, body) = body_json(
        dashboard_api::handle(deps, request("dashboard-disconnect.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Purged: the connection item, plus the app's settings and summary saved above.
    assert_eq!(
        body,
        serde_json::json!({"provider": "pagerduty", "status": "not_connected", "purged_items": 3})
    );
    let (status, _) = body_json(
        dashboard_api::handle(deps, request("dashboard-disconnect.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    // The audit trail (an admin's read): newest first, the purge, then what came before.
    let (status, body) = body_json(
        dashboard_api::handle(deps, request("dashboard-audit.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let actions: Vec<(&str, &str)> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions[..2],
        [("purge", "refused"), ("purge", "done")],
        "{body}"
    );
    assert!(actions.contains(&("sync_now", "refused")), "{body}");
    assert_eq!(body["entries"][1]["actor"]["email"], "admin@example.com");

    // env.json names every function and the variables the config requires.
    let env: Value = serde_json::from_str(&event("env.json")).unwrap();
    for function in [
        "ConnectStartFunction",
        "OAuthCallbackFunction",
        "ScheduledSyncFunction",
        "DashboardApiFunction",
    ] {
        for var in [
            "TABLE_NAME",
            "STAGE",
            "SECRET_PREFIX",
            "ORG_CLAIM",
            "OAUTH_REDIRECT_URI",
        ] {
            assert!(env[function][var].is_string(), "env.json: {function}.{var}");
        }
    }
}
