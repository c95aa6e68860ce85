//! Roles on every route, over real HTTP against the local stack with
//! `ROLE_CLAIM=groups` and `ADMIN_VALUES=seatscope-admins`: a viewer (the dev
//! issuer's `groups: ["staff"]`, passed on as API Gateway does, `[staff]`) and a
//! token without the claim are refused every write with 403 `admin_role_required`
//! and change nothing (every item and every secret equal before and after); every
//! read answers them as it answers an admin; an admin still changes things.
//! The route table is template.yaml's and openapi.json's (see `walk`): a route added
//! to either is walked here, and one this test cannot classify fails it.

mod common;
mod walk;

use std::collections::BTreeMap;

use common::*;
use seatscope_local::dev_issuer::{ADMIN_GROUP, ROLE_CLAIM};
use seatscope_local::stack::Stack;
use seatscope_sandbox::SendGridSandboxKey;
use serde_json::{json, Value};
use walk::{fill_all, route_table, RouteSpec};

const ORG: &str = "roles-org-4d1";

/// The routes without the JWT authorizer: no caller, so no role. Out of scope here
/// (the invite link is its own capability; the catch-all answers 404/405 only).
const UNAUTHENTICATED: &[&str] = &[
    "GET /",
    "GET /connections",
    "GET /apps/{provider}",
    "GET /activity",
    "GET /signin/callback",
    "GET /assets/{file}",
    "GET /api/config",
    "GET /api/openapi.json",
    "GET /oauth/callback",
    "GET /connect/invite/{token}",
    "POST /connect/invite/{token}",
    "GET /api/{proxy+}",
    "POST /api/{proxy+}",
    "PUT /api/{proxy+}",
    "PATCH /api/{proxy+}",
    "DELETE /api/{proxy+}",
];

/// Reads only an admin may make: who changed what (the audit trail).
const ADMIN_READS: &[&str] = &["GET /api/audit", "GET /api/audit/export.csv"];

#[derive(Debug, PartialEq)]
enum Class {
    Read,
    AdminRead,
    Write,
}

fn classify(route: &RouteSpec) -> Class {
    match route.method.as_str() {
        "GET" if ADMIN_READS.contains(&route.key().as_str()) => Class::AdminRead,
        "GET" => Class::Read,
        "POST" | "PUT" | "PATCH" | "DELETE" => Class::Write,
        other => panic!(
            "{}: method {other} is neither a read nor a write",
            route.key()
        ),
    }
}

/// Every item in the table and every secret with its value.
async fn world(stack: &Stack) -> (Vec<String>, BTreeMap<String, String>) {
    let mut items: Vec<String> = all_items(stack)
        .await
        .expect("Scan")
        .iter()
        .map(|i| i.to_string())
        .collect();
    items.sort();
    let mut secrets = BTreeMap::new();
    for name in secret_names(stack).await.expect("ListSecrets") {
        let value = stack
            .secrets
            .get_secret_value()
            .secret_id(&name)
            .send()
            .await
            .expect("GetSecretValue")
            .secret_string()
            .unwrap_or_default()
            .to_string();
        secrets.insert(name, value);
    }
    (items, secrets)
}

fn without_answer_time(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(mut map)) => {
            map.remove("generated_at");
            Value::Object(map).to_string()
        }
        _ => body.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_read_everything_and_change_nothing_on_every_route() {
    let stack = stack_with_roles().await;
    let routes = route_table(&stack);
    let admin = stack.token(ORG, "admin@roles.example");
    let viewer = stack.auth.viewer_token(ORG, "viewer@roles.example", 1);
    let unclaimed = {
        let mut claims = stack.auth.claims(ORG, "nobody@roles.example", 3600);
        assert!(claims.remove(ROLE_CLAIM).is_some());
        stack.auth.sign(&Value::Object(claims))
    };
    let sendgrid_key = SendGridSandboxKey::full().key;

    // The admin's world: PagerDuty (OAuth) and SendGrid (key), synced, settings, an invite.
    connect_to(&stack, ORG, "pagerduty")
        .await
        .expect("the admin connects PagerDuty");
    let key_body = json!({ "api_key": sendgrid_key });
    let (status, body) = send_as(
        &stack,
        "POST",
        "/api/connections/sendgrid/api-key",
        &admin,
        Some(&key_body),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let report = stack.tick().await.expect("tick");
    assert_eq!(report["synced"], 2, "{report}");
    let settings =
        json!({"inactive_days": 45, "grace_days": 7, "exempt_seats": [], "seat_price": 12.5});
    let (status, body) = send_as(
        &stack,
        "PUT",
        "/api/apps/pagerduty/settings",
        &admin,
        Some(&settings),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send_as(
        &stack,
        "POST",
        "/api/connections/pandadoc/invites",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let invite_id = {
        let (_, list) = send_as(
            &stack,
            "GET",
            "/api/connections/pandadoc/invites",
            &admin,
            None,
        )
        .await;
        let list: Value = serde_json::from_str(&list).expect("invites JSON");
        list["invites"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a pending invite: {list}"))
            .to_string()
    };

    // Who the page is told they are.
    for (token, role) in [
        (&admin, "admin"),
        (&viewer, "viewer"),
        (&unclaimed, "viewer"),
    ] {
        let (status, body) = send_as(&stack, "GET", "/api/me", token, None).await;
        assert_eq!(status, 200, "{body}");
        let me: Value = serde_json::from_str(&body).expect("me JSON");
        assert_eq!(me["role"], role, "{me}");
        assert_eq!(me["role_claim"], ROLE_CLAIM);
        assert_eq!(me["org"], ORG);
    }

    // Every route is classified; the unauthenticated ones are exactly the listed.
    let unauth: Vec<String> = routes
        .iter()
        .filter(|r| !r.authorized)
        .map(|r| r.key())
        .collect();
    let mut listed: Vec<String> = UNAUTHENTICATED.iter().map(|s| s.to_string()).collect();
    let mut got = unauth.clone();
    listed.sort();
    got.sort();
    assert_eq!(got, listed, "the unauthenticated routes changed");
    let in_scope: Vec<&RouteSpec> = routes.iter().filter(|r| r.authorized).collect();
    let reads: Vec<&RouteSpec> = in_scope
        .iter()
        .copied()
        .filter(|r| classify(r) == Class::Read)
        .collect();
    let writes: Vec<&RouteSpec> = in_scope
        .iter()
        .copied()
        .filter(|r| classify(r) == Class::Write)
        .collect();
    assert!(reads.len() >= 7 && writes.len() >= 7, "{routes:?}");

    let candidates = |route: &RouteSpec, name: &str| -> Vec<String> {
        match name {
            "provider" => vec!["pagerduty".into(), "sendgrid".into(), "pandadoc".into()],
            "file" => vec![
                "seats.csv".into(),
                "inactive-seats.csv".into(),
                "trends.csv".into(),
            ],
            "id" => vec![invite_id.clone()],
            other => panic!("{}: no values for {{{other}}}", route.key()),
        }
    };
    let payload = |route: &RouteSpec| -> Option<Value> {
        match route.path.as_str() {
            p if p.ends_with("/settings") => Some(settings.clone()),
            p if p.ends_with("/api-key") => Some(key_body.clone()),
            p if p.ends_with("/connect") => Some(json!({"return_to": "/connections"})),
            _ => None,
        }
    };

    // Writes: refused for the viewer and the token without the claim; nothing changes.
    let before = world(&stack).await;
    assert!(before.1.len() >= 2, "{:?}", before.1.keys());
    let entries_before = audit_items(&stack).await.expect("Scan").len();
    let mut attempts = 0;
    let mut wrong = Vec::new();
    for route in &writes {
        for path in fill_all(route, |n| candidates(route, n)) {
            let path = if route.method == "DELETE" && !path.contains("/invites/") {
                format!("{path}?purge=true")
            } else {
                path
            };
            for (who, token) in [("viewer", &viewer), ("no claim", &unclaimed)] {
                attempts += 1;
                let (status, body) =
                    send_as(&stack, &route.method, &path, token, payload(route).as_ref()).await;
                let e: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let message = e["error"]["message"].as_str().unwrap_or_default();
                if status != 403
                    || e["error"]["code"] != "admin_role_required"
                    || !message.contains(ROLE_CLAIM)
                    || !message.contains(ADMIN_GROUP)
                {
                    wrong.push(format!("{} {path} as {who}: {status} {body}", route.method));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "writes not refused:\n{}",
        wrong.join("\n")
    );
    let after = world(&stack).await;
    assert_eq!(before.1, after.1, "a refused write changed a secret");
    assert_eq!(before.0, after.0, "a refused write changed an item");
    // Each refused attempt is one audit entry: refused, admin_role_required, a viewer.
    let entries = audit_items(&stack).await.expect("Scan");
    let refused = &entries[..entries.len() - entries_before];
    assert_eq!(refused.len(), attempts, "one entry per refused write");
    for e in refused {
        assert_eq!(
            (&e["outcome"], &e["error_code"], &e["actor"]["role"]),
            (
                &json!("refused"),
                &json!("admin_role_required"),
                &json!("viewer")
            ),
            "{e:#}"
        );
    }

    // The audit trail: an admin reads it, a viewer is refused.
    let admin_reads: Vec<&RouteSpec> = in_scope
        .iter()
        .copied()
        .filter(|r| classify(r) == Class::AdminRead)
        .collect();
    assert_eq!(admin_reads.len(), ADMIN_READS.len(), "{routes:?}");
    for route in &admin_reads {
        let (status, body) = send_as(&stack, "GET", &route.path, &admin, None).await;
        assert_eq!(status, 200, "admin GET {}: {body}", route.path);
        for (who, token) in [("viewer", &viewer), ("no claim", &unclaimed)] {
            let (status, body) = send_as(&stack, "GET", &route.path, token, None).await;
            assert!(
                status == 403 && body.contains("admin_role_required"),
                "GET {} as {who}: {status} {body}",
                route.path
            );
        }
    }

    // Reads: the viewer gets what the admin gets.
    let mut differ = Vec::new();
    let mut ok_routes = std::collections::BTreeSet::new();
    for route in &reads {
        for path in fill_all(route, |n| candidates(route, n)) {
            let (a_status, a_body) = send_as(&stack, "GET", &path, &admin, None).await;
            for (who, token) in [("viewer", &viewer), ("no claim", &unclaimed)] {
                let (status, body) = send_as(&stack, "GET", &path, token, None).await;
                let same_body = route.path == "/api/me"
                    || without_answer_time(&body) == without_answer_time(&a_body);
                if status != a_status || !same_body {
                    differ.push(format!("GET {path} as {who}: {status} (admin {a_status})"));
                }
                if status == 200 {
                    ok_routes.insert(route.key());
                }
            }
        }
    }
    assert!(differ.is_empty(), "reads differ:\n{}", differ.join("\n"));
    let never_ok: Vec<String> = reads
        .iter()
        .map(|r| r.key())
        .filter(|k| !ok_routes.contains(k))
        .collect();
    assert!(never_ok.is_empty(), "reads never 200: {never_ok:?}");

    // The admin still changes things.
    for (method, path, body, want) in [
        ("POST", "/api/connections/pagerduty/sync", None, 202),
        ("PUT", "/api/apps/sendgrid/settings", Some(&settings), 200),
        ("POST", "/api/connections/pagerduty/connect", None, 200),
        ("POST", "/api/connections/pandadoc/invites", None, 201),
        (
            "DELETE",
            &format!("/api/connections/pandadoc/invites/{invite_id}") as &str,
            None,
            204,
        ),
        (
            "POST",
            "/api/connections/sendgrid/api-key",
            Some(&key_body),
            200,
        ),
        ("DELETE", "/api/connections/sendgrid?purge=true", None, 200),
    ] {
        let (status, text) = send_as(&stack, method, path, &admin, body).await;
        assert_eq!(status, want, "admin {method} {path}: {text}");
    }
}
