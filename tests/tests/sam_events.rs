//! The sample events in tests/events/ (the files `sam local invoke -e` takes) fed
//! to each handler against the local stack: they parse, and each handler answers
//! them the way API Gateway / EventBridge would see it.

use std::path::PathBuf;

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
    let app = &stack.app;

    // connect-start: the claims name org-demo; the answer is the vendor's consent URL.
    let (status, body) = body_json(
        connect_start::handle(app, request("connect-start.json"))
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
    let resp = oauth_callback::handle(app, request("oauth-callback.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = oauth_callback::handle(app, request("oauth-callback-denied.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // dashboard-api: each route answers for org-demo (not connected yet).
    let (status, body) = body_json(
        dashboard_api::handle(app, request("dashboard-overview.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["org"], "org-demo");
    assert_eq!(body["apps"][0]["connection"]["status"], "not_connected");
    let (status, body) = body_json(
        dashboard_api::handle(app, request("dashboard-app.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "pagerduty");
    let (status, body) = body_json(
        dashboard_api::handle(app, request("dashboard-seats.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["inactive_days"], 30);
    // Sync now on a connection that does not exist: 404, not a 500.
    let (status, body) = body_json(
        dashboard_api::handle(app, request("dashboard-sync-now.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // No authorizer claims: 401 from the function itself.
    let (status, body) = body_json(
        dashboard_api::handle(app, request("dashboard-overview-no-claims.json"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");

    // scheduled-sync: the EventBridge event runs a tick (nothing is due).
    let payload: Value = serde_json::from_str(&event("scheduled-sync.json")).unwrap();
    assert_eq!(payload["detail-type"], "Scheduled Event");
    let report = scheduled_sync::handle(
        app,
        lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default()),
    )
    .await
    .expect("tick");
    assert_eq!(report.due, 0);

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
