//! Tenant isolation on every route, over real HTTP against the local stack.
//!
//! Org A connects PagerDuty (OAuth through the sandbox's consent page) and SendGrid
//! (API key), syncs, saves settings and creates an invite. Then every route of the
//! union of template.yaml and openapi.json (see `walk`) is sent with org B's token
//! (and, for the routes without an authorizer, with no token), its path parameters
//! filled with A's real values and writes carrying the bodies A's admin would send.
//! B's answers must carry none of A's seats, and A's API answers, secrets and items
//! must be byte-identical afterwards.

mod common;
mod walk;

use std::collections::BTreeMap;

use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::{PagerDutyConfig, SendGridSandboxKey};
use serde_json::{json, Value};
use sha2::Digest;
use walk::{fill_all, route_table, RouteSpec};

const A: &str = "tenant-alpha-7f3";
const B: &str = "tenant-bravo-2c9";

fn admin(org: &str) -> String {
    format!("admin@{org}.example")
}

fn sha256_hex(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

enum Payload {
    None,
    Json(Value),
    Form(Vec<(&'static str, String)>),
}

async fn send(
    stack: &Stack,
    method: &str,
    path: &str,
    token: Option<&str>,
    payload: &Payload,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut req = http().request(method, format!("{}{path}", stack.api_url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req = match payload {
        Payload::None => req,
        Payload::Json(v) => req.json(v),
        Payload::Form(f) => req.form(f),
    };
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: no answer: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Everything of A's that B must neither read nor change.
#[derive(Debug, PartialEq)]
struct Snapshot {
    /// "GET /api/…" → status and body, as A's admin reads them.
    api: BTreeMap<String, (u16, String)>,
    /// Secret name → value, every secret under A's prefix.
    secrets: BTreeMap<String, String>,
    /// Every item of A's (pk `ORG#A…`, or an `org_id` of A), serialized.
    items: Vec<String>,
}

fn providers(stack: &Stack) -> Vec<String> {
    stack
        .deps
        .config
        .catalog
        .providers()
        .iter()
        .map(|p| p.id.clone())
        .collect()
}

const EXPORTS: [&str; 3] = ["seats.csv", "inactive-seats.csv", "trends.csv"];

/// The moment of the answer, not data: left out of the comparison.
fn without_answer_time(body: String) -> String {
    match serde_json::from_str::<Value>(&body) {
        Ok(Value::Object(mut map)) => {
            map.remove("generated_at");
            Value::Object(map).to_string()
        }
        _ => body,
    }
}

/// A's view through every GET route under /api/ behind the authorizer (from the
/// route table), filled with each provider and export.
async fn snapshot(stack: &Stack, routes: &[RouteSpec]) -> Snapshot {
    let token = stack.token(A, &admin(A));
    let provider_ids = providers(stack);
    let mut paths = Vec::new();
    for r in routes
        .iter()
        .filter(|r| r.method == "GET" && r.authorized && r.path.starts_with("/api/"))
    {
        paths.extend(fill_all(r, |name| match name {
            "provider" => provider_ids.clone(),
            "file" => EXPORTS.iter().map(|s| s.to_string()).collect(),
            other => vec![other.to_string()],
        }));
    }
    let mut api = BTreeMap::new();
    for path in paths {
        let (status, body) = send(stack, "GET", &path, Some(&token), &Payload::None).await;
        api.insert(format!("GET {path}"), (status, without_answer_time(body)));
    }
    let mut secrets = BTreeMap::new();
    let prefix = format!("seatscope/{}/{A}/", stack.deps.config.stage);
    for name in secret_names(stack).await.expect("ListSecrets") {
        if name.starts_with(&prefix) {
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
    }
    let org_pk = format!("ORG#{A}");
    let mut items: Vec<String> = all_items(stack)
        .await
        .expect("Scan")
        .into_iter()
        .filter(|i| i["pk"].as_str().is_some_and(|pk| pk.starts_with(&org_pk)) || i["org_id"] == A)
        .map(|i| serde_json::to_string(&i).expect("an item serializes"))
        .collect();
    items.sort();
    Snapshot {
        api,
        secrets,
        items,
    }
}

/// A's seat ids, emails and names from A's own seat lists, by provider.
fn seat_needles(snap: &Snapshot, provider: &str) -> Vec<String> {
    let (_, body) = &snap.api[&format!("GET /api/apps/{provider}/seats")];
    let seats: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut out = Vec::new();
    for seat in seats["seats"].as_array().into_iter().flatten() {
        for field in ["id", "seat_id", "email", "name"] {
            if let Some(v) = seat[field].as_str() {
                if v.len() >= 5 {
                    out.push(v.to_string());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// String values of at least 12 characters inside A's secrets (tokens, keys).
fn secret_needles(snap: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for value in snap.secrets.values() {
        match serde_json::from_str::<Value>(value) {
            Ok(Value::Object(map)) => {
                for v in map.values() {
                    if let Some(s) = v.as_str().filter(|s| s.len() >= 12) {
                        out.push(s.to_string());
                    }
                }
            }
            _ if value.len() >= 12 => out.push(value.clone()),
            _ => {}
        }
    }
    out
}

#[derive(Debug)]
struct Sent {
    phase: &'static str,
    route: String,
    request: String,
    who: &'static str,
    status: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_b_reads_nothing_and_changes_nothing_of_org_a_on_every_route() {
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 6,
            days: 10,
            events_per_day: 20,
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let routes = route_table(&stack);
    let a_token = stack.token(A, &admin(A));
    let b_token = stack.token(B, &admin(B));
    let sendgrid_key = SendGridSandboxKey::full().key;

    // A's world.
    connect_to(&stack, A, "pagerduty")
        .await
        .expect("A connects PagerDuty");
    let (status, body) = send(
        &stack,
        "POST",
        "/api/connections/sendgrid/api-key",
        Some(&a_token),
        &Payload::Json(json!({ "api_key": sendgrid_key })),
    )
    .await;
    assert_eq!(status, 200, "A connects SendGrid");
    drop(body);
    let report = stack.tick().await.expect("tick");
    assert_eq!(report["synced"], 2, "{report}");
    let (_, seats) = get_json(&stack, A, "/api/apps/pagerduty/seats")
        .await
        .expect("A's seats");
    let first_email = seats["seats"][0]["email"]
        .as_str()
        .expect("A has seats")
        .to_string();
    let settings = json!({
        "inactive_days": 45,
        "grace_days": 7,
        "exempt_seats": [first_email],
        "seat_price": 21.5,
    });
    let (status, body) = send(
        &stack,
        "PUT",
        "/api/apps/pagerduty/settings",
        Some(&a_token),
        &Payload::Json(settings.clone()),
    )
    .await;
    assert_eq!(status, 200, "A's settings: {body}");
    let (status, body) = send(
        &stack,
        "POST",
        "/api/connections/pandadoc/invites",
        Some(&a_token),
        &Payload::None,
    )
    .await;
    assert_eq!(status, 201, "A's invite: {body}");
    let invite: Value = serde_json::from_str(&body).expect("invite JSON");
    let invite_token = invite["url"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .expect("an invite url")
        .to_string();

    let before = snapshot(&stack, &routes).await;
    assert_eq!(before.secrets.len(), 2, "{:?}", before.secrets.keys());
    for (k, (status, _)) in &before.api {
        let expect_ok = !k.contains("/pandadoc") || k.ends_with("/settings");
        if expect_ok {
            assert_eq!(*status, 200, "A's own {k}");
        }
    }
    let pd_needles = seat_needles(&before, "pagerduty");
    let sg_needles = seat_needles(&before, "sendgrid");
    assert!(pd_needles.len() >= 6, "{pd_needles:?}");
    assert!(!sg_needles.is_empty());
    // What identifies A and is B's to know in no phase: PagerDuty's seats (B has no
    // PagerDuty grant), A's admin, A's tokens and the invite token.
    let mut always: Vec<String> = pd_needles.clone();
    always.push(admin(A));
    always.push(invite_token.clone());
    always.extend(
        secret_needles(&before)
            .into_iter()
            .filter(|s| *s != sendgrid_key),
    );
    // Until B sends the same SendGrid key itself, SendGrid's seats are A's alone too.
    let mut until_b_has_the_key = always.clone();
    until_b_has_the_key.extend(sg_needles.clone());
    // The page, its scripts and the API description are the same for everyone:
    // a needle found there is a common word, not A's data.
    let mut public = String::new();
    for path in ["/", "/api/openapi.json", "/assets/app.js", "/api/config"] {
        public.push_str(&send(&stack, "GET", path, None, &Payload::None).await.1);
    }
    // B's settings body exempts one of A's seats by email, as A's does: B reading
    // back what it wrote is not a leak.
    let b_sends = settings.to_string();
    let drop_public = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|n| !public.contains(n) && !b_sends.contains(n))
            .collect()
    };
    let always = drop_public(always);
    let until_b_has_the_key = drop_public(until_b_has_the_key);

    // Values of A's for each path parameter.
    let a_providers = providers(&stack);
    let invite_id = sha256_hex(&invite_token);
    let candidates = |route: &RouteSpec, name: &str| -> Vec<String> {
        match name {
            "provider" => a_providers.clone(),
            "file" if route.path.starts_with("/assets/") => vec!["app.js".into()],
            "file" => EXPORTS.iter().map(|s| s.to_string()).collect(),
            // B cannot know A's invite token (it is the capability, stored only as a
            // hash): what B could hold is the stored id, A's org id, or a guess. The
            // token itself is only opened with GET, which uses nothing up.
            "token" if route.method == "GET" => {
                vec![invite_id.clone(), A.to_string(), invite_token.clone()]
            }
            "token" => vec![invite_id.clone(), A.to_string()],
            "proxy+" => vec![format!("apps/pagerduty/{A}"), format!("orgs/{A}/secrets")],
            other => vec![format!("{A}-{other}")],
        }
    };
    let payloads = |route: &RouteSpec| -> Vec<Payload> {
        match (route.method.as_str(), route.path.as_str()) {
            ("PUT", p) if p.ends_with("/settings") => vec![Payload::Json(settings.clone())],
            ("POST", p) if p.ends_with("/api-key") => {
                vec![Payload::Json(json!({ "api_key": sendgrid_key }))]
            }
            ("POST", p) if p.ends_with("/connect") => {
                vec![Payload::Json(json!({ "return_to": "/connections" }))]
            }
            ("POST", p) if p.starts_with("/connect/invite/") => vec![
                Payload::Form(vec![("continue", "1".into())]),
                Payload::Form(vec![("api_key", sendgrid_key.clone())]),
            ],
            _ => vec![Payload::None],
        }
    };
    let query = |route: &RouteSpec| -> &'static str {
        match (route.method.as_str(), route.path.as_str()) {
            ("DELETE", _) => "?purge=true",
            ("GET", "/oauth/callback") => "?code=a-code-of-a&state=a-state-of-a",
            ("GET", p) if p.ends_with("/export/{file}") || p == "/api/apps/{provider}" => {
                "?from=2026-10-01&to=2026-11-23"
            }
            _ => "",
        }
    };

    // Reads first (nothing of B's exists yet), then the writes, deletions last, then
    // the reads again.
    let reads: Vec<&RouteSpec> = routes.iter().filter(|r| r.method == "GET").collect();
    let mut writes: Vec<&RouteSpec> = routes.iter().filter(|r| r.method != "GET").collect();
    writes.sort_by_key(|r| r.method == "DELETE");
    let mut sent: Vec<Sent> = Vec::new();
    let mut leaks: Vec<String> = Vec::new();
    let mut b_has_the_key = false;
    for (phase, list) in [("read", &reads), ("write", &writes), ("re-read", &reads)] {
        for route in list.iter() {
            let whos: Vec<(&'static str, Option<&str>)> = if route.authorized {
                vec![("B", Some(b_token.as_str()))]
            } else {
                vec![("B", Some(b_token.as_str())), ("none", None)]
            };
            for path in fill_all(route, |n| candidates(route, n)) {
                let path = format!("{path}{}", query(route));
                for payload in payloads(route) {
                    for (who, token) in &whos {
                        let (status, body) =
                            send(&stack, &route.method, &path, *token, &payload).await;
                        if route.path.ends_with("/api-key") && status == 200 {
                            b_has_the_key = true;
                        }
                        let needles = if b_has_the_key {
                            &always
                        } else {
                            &until_b_has_the_key
                        };
                        // The invite link is the capability: its page names who asked
                        // (A's admin), by design; nothing else of A's.
                        let holds_the_link = path.contains(&invite_token);
                        for n in needles {
                            if holds_the_link && *n == admin(A) {
                                continue;
                            }
                            if body.contains(n.as_str()) {
                                leaks.push(format!(
                                    "{} {path} as {who} ({status}): carries A's {:?}",
                                    route.method,
                                    if n.len() > 24 { &n[..8] } else { n.as_str() }
                                ));
                            }
                        }
                        assert!(
                            status < 500,
                            "{} {path} as {who}: {status} {body}",
                            route.method
                        );
                        sent.push(Sent {
                            phase,
                            route: route.key(),
                            request: format!("{} {path}", route.method),
                            who,
                            status,
                        });
                    }
                }
            }
        }
    }

    // The table of what B got.
    let mut table: BTreeMap<(String, &str), BTreeMap<u16, usize>> = BTreeMap::new();
    for s in &sent {
        *table
            .entry((s.route.clone(), s.who))
            .or_default()
            .entry(s.status)
            .or_default() += 1;
    }
    println!("{:<52} {:<5} statuses (count)", "route", "as");
    for ((route, who), statuses) in &table {
        let st: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        println!("{route:<52} {who:<5} {}", st.join(" "));
    }
    println!(
        "{} requests over {} routes ({} phases)",
        sent.len(),
        routes.len(),
        3
    );
    for s in sent.iter().filter(|s| s.phase == "write" && s.status < 300) {
        println!("accepted write (B's own org): {} as {}", s.request, s.who);
    }

    // Every route was walked.
    for r in &routes {
        assert!(
            sent.iter().any(|s| s.route == r.key()),
            "{} not walked",
            r.key()
        );
    }
    assert!(leaks.is_empty(), "B read A's data:\n{}", leaks.join("\n"));

    let after = snapshot(&stack, &routes).await;
    for (k, v) in &before.api {
        let now = after.api.get(k).expect("the same reads");
        if now != v {
            let at = now
                .1
                .bytes()
                .zip(v.1.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            let around = |s: &str| {
                s.get(at.saturating_sub(80)..(at + 80).min(s.len()))
                    .unwrap_or("")
                    .to_string()
            };
            panic!(
                "A's {k} changed ({} → {}): …{}… became …{}…",
                v.0,
                now.0,
                around(&v.1),
                around(&now.1)
            );
        }
    }
    assert_eq!(after.api.len(), before.api.len());
    assert_eq!(
        after.secrets.keys().collect::<Vec<_>>(),
        before.secrets.keys().collect::<Vec<_>>(),
        "A's secret names changed"
    );
    for (k, v) in &before.secrets {
        assert!(after.secrets.get(k) == Some(v), "A's secret {k} changed");
    }
    let gone: Vec<&String> = before
        .items
        .iter()
        .filter(|i| !after.items.contains(i))
        .collect();
    let new: Vec<&String> = after
        .items
        .iter()
        .filter(|i| !before.items.contains(i))
        .collect();
    assert!(
        gone.is_empty() && new.is_empty(),
        "A's items changed:\nbefore: {gone:#?}\nafter: {new:#?}"
    );
    assert_eq!(after, before);
    // B's own writes did land in B's org (the walk reached the functions).
    let b_items = all_items(&stack)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| {
            i["pk"]
                .as_str()
                .is_some_and(|pk| pk.starts_with(&format!("ORG#{B}")))
        })
        .count();
    assert!(b_items > 0, "none of B's writes reached the table");
    println!(
        "A: {} API answers, {} secrets, {} items byte-identical; {} of B's items",
        before.api.len(),
        before.secrets.len(),
        before.items.len(),
        b_items
    );
}
